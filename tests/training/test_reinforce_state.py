"""REINFORCE's running-mean baseline is model state: saved in checkpoints, frozen by eval_step."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from deepgm.distributions import Categorical, Normal
from deepgm.losses import REINFORCE, LogProb
from deepgm.models import Model
from deepgm.training import Trainer, TrainerConfig


class _Logits(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": self.lin(x)}


class _Decoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 4)

    def forward(self, k: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"loc": self.lin(k), "scale": torch.ones(k.shape[:-1] + (4,))}


def _model() -> Model:
    """A discrete-latent autoencoder trained by the score-function estimator with a running baseline."""
    torch.manual_seed(0)
    q = Categorical(var=["k"], cond_var=["x"], net=_Logits(), name="q")
    p = Normal(var=["x"], cond_var=["k"], net=_Decoder(), name="p")
    loss = -REINFORCE(q, LogProb(p), baseline="ema", decay=0.5).mean()
    return Model(loss, [q, p], optimizer_params={"lr": 0.1})


def _data(n: int = 24) -> dict[str, torch.Tensor]:
    return {"x": torch.randn(n, 4, generator=torch.Generator().manual_seed(1))}


def _steps(model: Model, n: int, seed: int) -> list[float]:
    torch.manual_seed(seed)
    return [float(model.train_step(_data(8))) for _ in range(n)]  # type: ignore[arg-type]


def test_the_baseline_is_in_the_state_dict() -> None:
    model = _model()
    keys = [k for k in model.state_dict() if k.endswith(".value")]
    assert keys and keys[0].replace(".value", ".initialised") in model.state_dict(), sorted(model.state_dict())
    before = model.state_dict()[keys[0]].clone()
    _steps(model, 3, seed=2)
    assert not torch.equal(model.state_dict()[keys[0]], before)  # it is the live baseline


def test_eval_step_leaves_the_baseline_unchanged() -> None:
    a, b = _model(), _model()
    _steps(a, 3, seed=2)
    _steps(b, 3, seed=2)
    torch.manual_seed(5)
    for _ in range(3):
        a.eval_step(_data(8) | {"x": _data(8)["x"] * 10.0})  # far-off values: an update would show
    assert _steps(a, 3, seed=3) == _steps(b, 3, seed=3)


def test_save_and_load_carry_the_baseline(tmp_path: Path) -> None:
    a = _model()
    _steps(a, 4, seed=2)
    a.save(tmp_path / "m.pt")
    cont = _steps(a, 5, seed=4)
    b = _model()
    b.load(tmp_path / "m.pt")
    assert _steps(b, 5, seed=4) == cont


def test_resumed_reinforce_run_equals_uninterrupted_run(tmp_path: Path) -> None:
    def cfg(out: Path, **kw: object) -> TrainerConfig:
        return TrainerConfig(**{"epochs": 3, "batch_size": 8, "out_dir": out, "log_every": 1, "progress": False,
                                "seed": 3, **kw})  # type: ignore[arg-type]

    train, val = _data(), _data(8)
    full = Trainer(_model(), train, cfg(tmp_path / "a"), val=val).fit()
    Trainer(_model(), train, cfg(tmp_path / "b", max_steps=4), val=val).fit()
    torch.manual_seed(999)
    rest = Trainer(_model(), train, cfg(tmp_path / "b"), val=val).fit(resume=True)
    assert rest["loss"] == full["loss"]
    assert rest["val_loss"] == full["val_loss"]
