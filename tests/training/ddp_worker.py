"""Workers for the data-parallel tests: each process trains on its share of the global batch."""

from __future__ import annotations

import torch
from torch import nn

from deepgm.distributions import Deterministic, Empirical, Normal
from deepgm.losses import LogProb, NonSaturatingGAN
from deepgm.models import GAN, Model


class Regressor(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"loc": self.lin(x), "scale": torch.ones(x.shape[0], 2)}


def make_model(seed: int = 0) -> Model:
    torch.manual_seed(seed)
    p = Normal(var=["y"], cond_var=["x"], net=Regressor(), name="p")
    return Model(-LogProb(p).mean(), [p], optimizer=torch.optim.SGD, optimizer_params={"lr": 0.1})


def data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(42)
    return torch.randn(8, 3, generator=g), torch.randn(8, 2, generator=g)


def run(rank: int, world: int, init_file: str, out_file: str) -> None:
    import torch.distributed as dist

    from deepgm.training import distributed as ddp

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    model = make_model(seed=rank)  # different initial weights on purpose: broadcast must fix them
    ddp.broadcast_module(model)
    x, y = data()
    losses, grads = [], []
    for _ in range(3):
        shard = slice(rank, None, world)
        losses.append(model.train_step({"x": x[shard], "y": y[shard]}))
        grads.append(torch.cat([p.grad.reshape(-1) for p in model.parameters()]))
    if rank == 0:
        torch.save({"losses": losses, "grads": grads,
                    "params": [p.detach().clone() for p in model.parameters()]}, out_file)
    _leave()


def _leave() -> None:
    """Leave the group and end the process without the interpreter's teardown: gloo's threads being torn
    down at exit once aborted a worker (SIGABRT, "terminate called without an active exception") after
    its results were written; what the tests check is done by then."""
    import os
    import sys

    import torch.distributed as dist

    dist.barrier()
    dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


# -- a GAN: the generator's step and the discriminator's (an auxiliary objective) ---------------------------
class _Generator(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 2)

    def forward(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"loc": self.lin(z)}


def make_gan(seed: int = 0) -> GAN:
    """A tiny GAN whose noise ``z`` is part of the batch, so that the processes' shares of it are exactly
    the combined batch's (the test compares with one process on the combined batch)."""
    torch.manual_seed(seed)
    gen = Deterministic(var=["x"], cond_var=["z"], net=_Generator(), name="G")
    disc = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
    obj = NonSaturatingGAN(Empirical(var=["x"]), gen, disc)
    return GAN(obj.mean(), gen, d_steps=2, optimizer_params={"lr": 0.05}, d_optimizer_params={"lr": 0.05})


def gan_data() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    return {"x": torch.randn(8, 2, generator=g) + 2.0, "z": torch.randn(8, 3, generator=g)}


def gan_params(model: GAN) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


GAN_STEPS = 4


def run_gan(rank: int, world: int, init_file: str, out_prefix: str) -> None:
    import torch.distributed as dist

    from deepgm.training import distributed as ddp

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    model = make_gan(seed=rank)  # different initial weights on purpose: broadcast must fix them
    ddp.broadcast_module(model)
    data = gan_data()
    losses = [model.train_step({k: v[rank::world] for k, v in data.items()}) for _ in range(GAN_STEPS)]
    torch.save({"losses": losses, "params": gan_params(model)}, f"{out_prefix}.{rank}")
    _leave()
