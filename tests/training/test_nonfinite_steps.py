"""The non-finite guard of ``Model._step``: a finite objective with NaN or infinite gradients never steps
the optimiser (``on_nonfinite="raise"`` names the objective and the parameter, ``"skip"`` skips), for the
main objective and the auxiliary ones alike, and a non-finite first step is skipped too."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parents[1] / "models"))
from tiny_models import binary_data, tiny_gan, tiny_vae  # noqa: E402

from deepgm.errors import NonFiniteLossError, NonFiniteParameterError
from deepgm.models import Model
from deepgm.training import Trainer, TrainerConfig, TrainingStopped
from deepgm.training.checkpoint import latest_checkpoint


def _vae(**kw: object) -> Model:
    model = tiny_vae()
    for k, v in kw.items():
        setattr(model, k, v)
    return model


def _poison(param: nn.Parameter, value: float = math.nan) -> torch.utils.hooks.RemovableHandle:
    """Make ``param``'s gradient non-finite while the objective stays finite."""
    return param.register_hook(lambda g: g * value)


def _snapshot(model: Model) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def _unchanged(model: Model, before: list[torch.Tensor]) -> bool:
    return all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_non_finite_gradient_raises_naming_the_objective_and_parameter(bad: float) -> None:
    model = _vae()
    model.train_step(binary_data())
    before, adam = _snapshot(model), model.optimizer.state_dict()
    name, param = next((n, p) for n, p in model.named_parameters() if "decoder" in n or "distributions.1" in n)
    handle = _poison(param, bad)
    with pytest.raises(NonFiniteLossError) as info:
        model.train_step(binary_data(seed=1))
    msg = str(info.value)
    assert "the objective" in msg and "is finite" in msg and f"'{name}'" in msg and "did not step" in msg
    assert _unchanged(model, before)  # the parameters really are those of the last finite step
    assert all(torch.isfinite(p).all() for p in model.parameters())
    steps = [s["step"] for s in model.optimizer.state_dict()["state"].values()]
    assert steps == [s["step"] for s in adam["state"].values()]  # Adam's moments and counts untouched
    handle.remove()
    assert math.isfinite(model.train_step(binary_data(seed=1)))  # and training goes on from there


def test_skip_mode_skips_a_step_with_non_finite_gradients() -> None:
    model = _vae(on_nonfinite="skip")
    model.train_step(binary_data())
    before = _snapshot(model)
    handle = _poison(next(model.parameters()))
    value = model.train_step(binary_data(seed=1))
    assert math.isfinite(value)  # the objective was finite: its value is reported
    assert model.skipped_steps == 1 and model.steps == 1 and _unchanged(model, before)
    handle.remove()
    model.train_step(binary_data(seed=1))
    assert model.skipped_steps == 1 and model.steps == 2 and not _unchanged(model, before)


def test_skip_mode_skips_a_non_finite_first_step() -> None:
    """The first evaluation validates the distributions' parameters; NaN there is a skipped step too."""
    model = _vae(on_nonfinite="skip")
    before = _snapshot(model)
    nan = binary_data()
    nan["x"][0, 0] = math.nan
    assert math.isnan(model.train_step(nan))
    assert model.skipped_steps == 1 and model.steps == 0 and _unchanged(model, before)
    assert math.isfinite(model.train_step(binary_data()))
    assert model.steps == 1 and not _unchanged(model, before)
    raising = _vae()
    with pytest.raises(NonFiniteParameterError, match="parameter '.*' must satisfy"):
        raising.train_step(nan)


def test_an_auxiliary_objective_with_non_finite_gradients_does_not_step() -> None:
    batch = {"x": torch.randn(16, 2), "z": torch.randn(16, 3)}
    model, disc = tiny_gan()
    before = [p.detach().clone() for p in disc.parameters()]
    handle = _poison(disc[0].weight)
    with pytest.raises(NonFiniteLossError, match=r"auxiliary objective 'discriminator'.*is finite.*'[\w.]*weight'"):
        model.train_step(batch)
    assert all(torch.equal(a, b) for a, b in zip(before, disc.parameters()))
    handle.remove()

    skip, disc = tiny_gan(on_nonfinite="skip")
    before = [p.detach().clone() for p in disc.parameters()]
    handle = _poison(disc[0].weight)
    out = skip.train_step(batch)
    assert all(math.isfinite(v) for v in out.values()) and skip.skipped_steps == 1
    assert all(torch.equal(a, b) for a, b in zip(before, disc.parameters()))


def test_training_stops_at_a_non_finite_gradient_keeping_a_finite_last_checkpoint(tmp_path: Path) -> None:
    model = _vae()
    data = {"x": torch.bernoulli(torch.rand(60, 16, generator=torch.Generator().manual_seed(0)))}
    param = next(model.parameters())
    calls = {"n": 0}

    def hook(g: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        return g * math.nan if calls["n"] == 5 else g  # the fifth step's gradient

    param.register_hook(hook)
    cfg = TrainerConfig(epochs=2, batch_size=10, out_dir=tmp_path, log_every=1, progress=False, checkpoint_every=2)
    with pytest.raises(TrainingStopped, match=r"stopped at step 4: .*gradient.*Last good checkpoint: .*step-000000004"):
        Trainer(model, data, cfg).fit()
    assert all(torch.isfinite(p).all() for p in model.parameters())
    from safetensors.torch import load_file

    weights = load_file(str(latest_checkpoint(tmp_path / "checkpoints") / "model.safetensors"))
    assert all(torch.isfinite(t).all() for t in weights.values())


def test_with_mixed_precision_an_overflow_is_the_scalers_until_its_scale_is_1() -> None:
    """Above a scale of 1 a non-finite gradient is an overflow of the scaled loss: the scaler skips the step
    and halves its scale (no error); at a scale of 1 the gradient itself is non-finite: on_nonfinite applies.
    (A CPU gradient scaler stands in for the CUDA one: the step's logic is the same.)"""
    import warnings

    model = _vae()
    scaler = torch.amp.GradScaler("cpu", init_scale=4.0)
    model._amp_scaler = lambda target: scaler  # type: ignore[method-assign]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # autocast("cuda") without CUDA
        model.train_step(binary_data())
        before = _snapshot(model)
        handle = _poison(next(model.parameters()))
        for scale in (2.0, 1.0):
            assert math.isfinite(model.train_step(binary_data(seed=1)))
            assert scaler.get_scale() == scale and _unchanged(model, before)
        with pytest.raises(NonFiniteLossError, match="is finite.*gradient"):
            model.train_step(binary_data(seed=1))
        assert scaler.get_scale() == 1.0 and _unchanged(model, before)
        handle.remove()
        model.train_step(binary_data(seed=1))  # the scaler was reset: the next step is taken
    assert not _unchanged(model, before)
