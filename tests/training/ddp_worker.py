"""Worker for the data-parallel test: each process trains on its share of the global batch."""

from __future__ import annotations

import torch
from torch import nn

from deepgm.distributions import Normal
from deepgm.losses import LogProb
from deepgm.models import Model


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
    dist.barrier()
    dist.destroy_process_group()
