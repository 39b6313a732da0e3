"""Model: the seed's VAE against hand-written PyTorch, training, errors, checkpoints, compile."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from tiny_models import tiny_gan  # noqa: E402
from vae_example import build, hand_written_loss  # noqa: E402

from deepgm.distributions import Bernoulli, Normal
from deepgm.errors import NonFiniteLossError, ObjectiveError
from deepgm.losses import KL, E, LogProb, Parameter
from deepgm.models import ML, VAE, VI, Model


def _x(n: int = 32, d: int = 784) -> torch.Tensor:
    return torch.bernoulli(torch.rand(n, d))


def test_seed_vae_objective_and_gradients_equal_hand_written() -> None:
    q, p, prior, loss = build()
    x = _x()
    torch.manual_seed(7)
    ours = loss({"x": x})
    ours.backward()
    g_ours = [t.grad.clone() for t in list(q.parameters()) + list(p.parameters())]
    for t in list(q.parameters()) + list(p.parameters()):
        t.grad = None
    torch.manual_seed(7)
    ref = hand_written_loss(q, p, x)
    ref.backward()
    g_ref = [t.grad for t in list(q.parameters()) + list(p.parameters())]
    assert torch.allclose(ours, ref, rtol=1e-6, atol=1e-4)
    for a, b in zip(g_ours, g_ref):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6)


def test_train_step_returns_loss_and_learns() -> None:
    q, p, prior, loss = build(d=64, h=32, z=4)
    model = Model(loss, distributions=[p, q], optimizer=torch.optim.Adam, optimizer_params={"lr": 1e-2})
    x = (torch.rand(8, 64) < torch.linspace(0.05, 0.95, 64)).float()
    first = model.train_step({"x": x})
    for _ in range(100):
        last = model.train_step({"x": x})  # the same tensor object every step
    assert isinstance(first, float)
    assert last < first - 5
    ev = model.eval_step({"x": x})
    assert isinstance(ev, float) and math.isfinite(ev)
    assert model.training  # eval_step restores training mode


def test_training_twice_on_same_tensor_matches_fresh_tensors() -> None:
    results = []
    for reuse in (True, False):
        torch.manual_seed(0)
        q, p, prior, loss = build(d=20, h=16, z=3)
        model = Model(loss, distributions=[p, q], optimizer_params={"lr": 1e-2})
        x = _x(8, 20)
        torch.manual_seed(1)
        results.append([model.train_step({"x": x if reuse else x.clone()}) for _ in range(5)])
    assert results[0] == results[1]
    assert len(set(results[0])) == 5  # the loss moves: nothing is frozen by a stale cache


def test_nan_objective_raises_and_keeps_parameters() -> None:
    q, p, prior, loss = build(d=10, h=8, z=2)
    model = Model(loss, distributions=[p, q])
    x = _x(4, 10)
    model.train_step({"x": x})  # the first evaluation validates parameters (a NaN there is a ParameterError)
    before = [t.detach().clone() for t in model.parameters()]
    x[0, 0] = float("nan")
    with pytest.raises(NonFiniteLossError, match="nan"):
        model.train_step({"x": x})
    for a, b in zip(before, model.parameters()):
        assert torch.equal(a, b)
    skip = Model(loss, distributions=[p, q], on_nonfinite="skip")
    assert math.isnan(skip.train_step({"x": x})) and skip.skipped_steps == 1


def test_objective_of_wrong_kind() -> None:
    q, p, prior, loss = build(d=10, h=8, z=2)
    with pytest.raises(ObjectiveError, match="must be a scalar"):
        Model(KL(q, prior), distributions=[q]).train_step({"x": _x(4, 10)})
    with pytest.raises(ObjectiveError, match="needs an objective"):
        Model(q, distributions=[q])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="dict of named tensors"):
        Model(loss, distributions=[p, q]).train_step(_x(4, 10))  # type: ignore[arg-type]
    with pytest.raises(ObjectiveError, match="no trainable parameters"):
        Model(LogProb(prior).mean(), distributions=[prior])


def test_parameters_as_inputs_and_gradient_clipping() -> None:
    q, p, prior, _ = build(d=10, h=8, z=2)
    loss = (Parameter("beta") * KL(q, prior) - E(q, LogProb(p))).mean()
    model = Model(loss, distributions=[p, q], clip_grad_norm=1e-3, optimizer=torch.optim.SGD,
                  optimizer_params={"lr": 1.0})
    before = [t.detach().clone() for t in model.parameters()]
    model.train_step({"x": _x(4, 10)}, beta=4.0)
    moved = torch.sqrt(sum(((a - b) ** 2).sum() for a, b in zip(before, model.parameters())))
    assert float(moved.detach()) <= 1e-3 + 1e-6  # SGD with lr 1 moves exactly the clipped norm at most


def test_save_load_roundtrip_continues_identically(tmp_path: Path) -> None:
    def make() -> Model:
        torch.manual_seed(0)
        q, p, prior, loss = build(d=12, h=8, z=2)
        return Model(loss, distributions=[p, q], optimizer_params={"lr": 1e-2})

    x = _x(6, 12)
    a = make()
    for _ in range(3):
        a.train_step({"x": x})
    a.save(tmp_path / "ckpt.pt")
    torch.manual_seed(9)
    cont = [a.train_step({"x": x}) for _ in range(3)]
    b = make()
    b.load(tmp_path / "ckpt.pt")
    torch.manual_seed(9)
    assert [b.train_step({"x": x}) for _ in range(3)] == cont
    assert not list(tmp_path.glob(".*tmp"))  # atomic write left no temporary file


def test_loading_a_damaged_save_is_one_named_error(tmp_path: Path) -> None:
    from deepgm.errors import CheckpointCorruptError

    q, p, prior, loss = build(d=12, h=8, z=2)
    model = Model(loss, distributions=[p, q])
    path = model.save(tmp_path / "ckpt.pt")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointCorruptError, match=r"ckpt\.pt is not a readable torch\.save file"):
        model.load(path)
    path.write_text("not a checkpoint")
    with pytest.raises(CheckpointCorruptError, match=r"ckpt\.pt is not a readable torch\.save file"):
        model.load(path)


def test_presets() -> None:
    x = _x(8, 10)
    q, p, prior, _ = build(d=10, h=8, z=2)
    vae = VAE(q, p, prior, optimizer_params={"lr": 1e-3})
    assert str(vae.loss) == "mean(D_KL[q(z|x)||p_{prior}(z)] - E_{q(z|x)}[log p(x|z)])"
    assert math.isfinite(vae.train_step({"x": x}))
    vi = VI(p * prior, q)
    assert str(vi.loss) == "-mean(E_{q(z|x)}[log p(x,z) - log q(z|x)])"
    assert math.isfinite(vi.train_step({"x": x}))
    m = Bernoulli(var=["x"], logits=nn.Parameter(torch.zeros(10)), name="p")
    ml = ML(m, optimizer_params={"lr": 0.1})
    first = ml.train_step({"x": x})
    for _ in range(50):
        last = ml.train_step({"x": x})
    assert last < first


def test_learnable_prior_is_trained() -> None:
    q, p, _, _ = build(d=10, h=8, z=2)
    prior = Normal(var=["z"], loc=nn.Parameter(torch.zeros(2)), scale=1.0, name="p_{prior}")
    model = VAE(q, p, prior)
    assert any(t is prior._param_loc for t in model.parameters())
    model.train_step({"x": _x(4, 10)})
    assert float(prior._param_loc.detach().abs().sum()) > 0


def test_compile_gives_the_same_values() -> None:
    import torch._inductor.config as inductor_config

    q, p, prior, loss = build(d=16, h=8, z=2)
    eager = Model(loss, distributions=[p, q], optimizer_params={"lr": 1e-3})
    compiled = Model(loss, distributions=[p, q], optimizer_params={"lr": 1e-3}, compile=True)
    x = _x(4, 16)
    with inductor_config.patch(fallback_random=True):  # compiled code draws the same noise as eager
        torch.manual_seed(3)
        a = eager.eval_step({"x": x})
        torch.manual_seed(3)
        b = compiled.eval_step({"x": x})
        assert a == pytest.approx(b, rel=1e-5)
        assert math.isfinite(compiled.train_step({"x": x}))


def test_auxiliary_objectives_take_the_same_step_as_the_main_one() -> None:
    """Clipping, the non-finite guard and the schedule apply to a discriminator's step as to the main one."""
    batch = {"x": torch.randn(16, 2) * 5, "z": torch.randn(16, 3)}
    model, disc = tiny_gan(clip_grad_norm=1e-3, optimizer=torch.optim.SGD, optimizer_params={"lr": 1.0},
                            d_optimizer=torch.optim.SGD, d_optimizer_params={"lr": 1.0})
    before = [t.detach().clone() for t in disc.parameters()]
    model.train_step(batch)
    moved = torch.sqrt(sum(((a - b) ** 2).sum() for a, b in zip(before, disc.parameters())))
    assert float(moved.detach()) <= 1e-3 + 1e-6  # SGD with lr 1 moves the discriminator by the clipped norm at most

    skip, disc = tiny_gan(on_nonfinite="skip")
    before = [t.detach().clone() for t in disc.parameters()]
    out = skip.train_step({**batch, "x": torch.full((16, 2), float("nan"))})
    # the real batch enters only the discriminator's objective: that step is skipped, the generator's taken
    assert math.isnan(out["discriminator"]) and math.isfinite(out["loss"]) and skip.skipped_steps == 1
    assert all(torch.equal(a, b) for a, b in zip(before, disc.parameters()))

    seen: list[int] = []

    def schedule(step: int) -> dict[str, float]:
        seen.append(step)
        return {"lam": 0.0}

    scheduled, _ = tiny_gan(schedule=schedule, discriminator_extra=Parameter("lam") * 1.0)
    out = scheduled.train_step(batch)
    assert set(out) == {"loss", "discriminator"} and seen == [0, 0]  # the discriminator's step, then the generator's


@pytest.mark.skipif(not torch.cuda.is_available(), reason="mixed precision needs a GPU")
def test_mixed_precision_steps_every_objective_and_saves_its_scalers(tmp_path: Path) -> None:
    model, _ = tiny_gan(amp=True)
    model.cuda()
    batch = {"x": torch.randn(16, 2, device="cuda"), "z": torch.randn(16, 3, device="cuda")}
    for _ in range(3):
        out = model.train_step(batch)
        assert all(math.isfinite(v) for v in out.values())
    state = model.full_state_dict()
    assert len(state["grad_scalers"]) == 2 and all(s["scale"] > 0 for s in state["grad_scalers"])
    model.save(tmp_path / "m.pt")
    other, _ = tiny_gan(amp=True)
    other.cuda()
    other.load(tmp_path / "m.pt")
    assert other.full_state_dict()["grad_scalers"] == state["grad_scalers"]
