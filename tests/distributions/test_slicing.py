"""JumpySlice: TD-VAE's pairs t1 = t < t2 = t + δ, δ ~ U{1..max_jump} per sequence, cut at the series' end;
one draw per evaluation (the sharing rule) and errors naming what is wrong."""

from __future__ import annotations

import pytest
import torch

from deepgm.distributions import JumpySlice
from deepgm.errors import ShapeError
from deepgm.losses import E, IterativeLoss, Loss


class _Value(Loss):
    def __init__(self, name: str) -> None:
        self.name = name

    def _eval(self, env):  # type: ignore[no-untyped-def]
        return env.get(self.name, "test").flatten(1).sum(1)

    def _render(self, latex: bool) -> str:
        return self.name


def _series(b: int = 64, t: int = 10) -> torch.Tensor:
    return torch.arange(t, dtype=torch.float32).repeat(b, 1).unsqueeze(-1)  # x[:, s] = s


def test_jumps_are_uniform_on_1_to_max_jump_per_sequence_and_cut_at_the_end() -> None:
    torch.manual_seed(0)
    f = JumpySlice(at_t1=["x"], at_t2=["x"], max_jump=3)
    x = _series(b=3000)
    out = f.sample({"t": torch.tensor(2), "x": x})
    jumps = (out["x_t2"] - out["x_t1"]).flatten()
    assert torch.equal(out["x_t1"].flatten(), torch.full((3000,), 2.0))
    counts = torch.bincount(jumps.long(), minlength=4)[1:]
    assert counts.min() > 900 and counts.sum() == 3000  # ~1000 each of 1, 2, 3
    late = f.sample({"t": torch.tensor(8), "x": x})  # t + δ beyond step 9 is cut to 9
    assert torch.equal(late["x_t2"].flatten(), torch.full((3000,), 9.0))


def test_one_draw_per_evaluation_and_a_scan_runs_t_minus_one_steps() -> None:
    f = JumpySlice(at_t1=["x"], at_t2=["x"], max_jump=4)
    both = E(f, _Value("x_t2")) - E(f, _Value("x_t2"))
    assert torch.equal(both(x=_series(), t=torch.tensor(1)), torch.zeros(64))
    steps = IterativeLoss(_Value("x_t1"), series_var=["x"], slice_step=f, time_dim=1)
    assert torch.equal(steps(x=_series(b=2)), torch.full((2,), float(sum(range(9)))))  # t = 0..8


def test_slicing_refuses_bad_series_and_steps() -> None:
    f = JumpySlice(at_t1=["b"], at_t2=["x"], max_jump=2)
    with pytest.raises(ShapeError, match=r"needs a later step to jump to; the series have 10 steps"):
        f.sample({"t": torch.tensor(9), "x": _series(), "b": _series()})
    with pytest.raises(ShapeError, match=r"the series 'x' must be batch-first \(B, T, \.\.\.\) with B=64"):
        f.sample({"t": torch.tensor(0), "b": _series(), "x": _series(b=5)})
    with pytest.raises(ValueError, match="max_jump must be an integer >= 1, got 0"):
        JumpySlice(at_t1=["b"], at_t2=["x"], max_jump=0)


def test_multi_deterministic_binds_each_output_once_per_evaluation_and_checks_their_count() -> None:
    from deepgm.distributions import MultiDeterministic
    from deepgm.errors import ShapeError as _ShapeError

    calls = []

    def halves(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        calls.append(1)
        return x[:, :1], x[:, 1:]

    f = MultiDeterministic(var=["a", "b"], cond_var=["x"], net=halves)
    both = E(f, _Value("a")) + E(f, _Value("b"))
    assert torch.equal(both(x=torch.tensor([[1.0, 2.0, 3.0]])), torch.tensor([6.0]))
    assert len(calls) == 1  # one network call for both variables, in one evaluation
    bad = MultiDeterministic(var=["a", "b", "c"], cond_var=["x"], net=halves)
    with pytest.raises(_ShapeError, match=r"returned 2 values for the 3 variables \['a', 'b', 'c'\]"):
        bad.sample({"x": torch.zeros(1, 2)})
    with pytest.raises(ValueError, match="needs net"):
        MultiDeterministic(var=["a"], cond_var=["x"])
