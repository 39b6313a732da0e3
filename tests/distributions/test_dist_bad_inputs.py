"""Bad inputs to distributions give named deepgm errors (issue 19): values outside the support,
non-finite parameters, empty batches, zero draws, and what a network cannot take."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from deepgm.distributions import Bernoulli, Categorical, Normal
from deepgm.errors import NonFiniteParameterError, ParameterError, ShapeError, SupportError
from deepgm.losses import E, LogProb


class _Net(nn.Module):
    def __init__(self, d_in: int = 4, d_out: int = 2, scale: float = 1.0) -> None:
        super().__init__()
        self.lin = nn.Linear(d_in, d_out)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        loc = self.lin(x)
        return {"loc": loc, "scale": torch.full_like(loc, self.scale)}


def _q(scale: float = 1.0) -> Normal:
    torch.manual_seed(0)
    return Normal(var=["z"], cond_var=["x"], net=_Net(scale=scale), name="q")


# -- values outside the support ----------------------------------------------------------------------
@pytest.mark.parametrize("param", [{"probs": 0.5}, {"logits": 0.0}])
def test_bernoulli_target_outside_unit_interval_is_refused(param: dict[str, float]) -> None:
    p = Bernoulli(var=["x"], features_shape=[2], **param)
    x = torch.tensor([[0.0, 2.0]])
    with pytest.raises(SupportError, match=r"Bernoulli p\(x\): variable 'x' must be in \[0, 1\]; got \[2.0\]"):
        p.log_prob({"x": x})
    with pytest.raises(SupportError):  # every public call checks, not only the first
        p.log_prob({"x": x})
    assert torch.isfinite(p.log_prob({"x": torch.tensor([[0.0, 0.3]])})).all()  # grey levels are fine


def test_support_is_checked_on_the_first_evaluation_of_an_objective_only() -> None:
    q = Normal(var=["z"], cond_var=["x"], loc="x", scale=1.0, name="q")
    p = Bernoulli(var=["x"], cond_var=["z"], logits="z", name="p")
    f = E(q, LogProb(p))
    with pytest.raises(SupportError, match="variable 'x'"):
        f({"x": torch.full((3, 2), 2.0)})
    f({"x": torch.rand(3, 2)})  # the first good evaluation passes the check ...
    f({"x": torch.full((3, 2), 2.0)})  # ... and later steps are not checked again (documented: no cost)
    with pytest.raises(SupportError):  # the public entry point still checks
        p.log_prob({"x": torch.full((3, 2), 2.0), "z": torch.zeros(3, 2)})


def test_normal_nan_target_is_refused() -> None:
    p = Normal(var=["x"], loc=0.0, scale=1.0, features_shape=[2])
    with pytest.raises(SupportError, match="variable 'x' must be finite"):
        p.log_prob({"x": torch.tensor([[0.0, float("nan")]])})


@pytest.mark.parametrize("dtype", [torch.long, torch.uint8, torch.bool])
def test_integer_and_bool_values_are_converted(dtype: torch.dtype) -> None:
    p = Bernoulli(var=["x"], logits=torch.tensor([0.3, -1.0]))
    x = torch.tensor([[1, 0], [0, 1]])
    got = p.log_prob({"x": x.to(dtype)})
    assert got.dtype == torch.float32
    assert torch.allclose(got, p.log_prob({"x": x.float()}))


# -- non-finite parameters -----------------------------------------------------------------------------
@pytest.mark.parametrize("kw", [{"loc": float("inf")}, {"loc": -float("inf")}, {"scale": float("inf")}])
def test_non_finite_constant_parameter_is_refused_at_construction(kw: dict[str, float]) -> None:
    args = {"loc": 0.0, "scale": 1.0, **kw}
    name = next(iter(kw))
    with pytest.raises(ParameterError, match=rf"Normal p\(x\): parameter '{name}' must be finite"):
        Normal(var=["x"], **args)


def test_infinite_logits_stay_allowed() -> None:
    p = Categorical(var=["y"], logits=torch.tensor([0.0, -float("inf")]))  # a masked class
    assert p.log_prob({"y": torch.tensor([[1.0, 0.0]])}).item() == 0.0


def test_non_finite_network_output_is_refused_on_the_first_evaluation() -> None:
    q = _q(scale=float("inf"))
    with pytest.raises(NonFiniteParameterError, match=r"Normal q\(z\|x\): parameter 'scale' must be finite"):
        q.sample({"x": torch.randn(3, 4)})


# -- empty batches, zero draws ----------------------------------------------------------------------------
def test_empty_batch_is_a_shape_error_naming_the_variable() -> None:
    q = _q()
    for call in (lambda: q.sample({"x": torch.randn(0, 4)}),
                 lambda: q.log_prob({"x": torch.randn(0, 4), "z": torch.randn(0, 2)}),
                 lambda: E(q, LogProb(q))({"x": torch.randn(0, 4)})):
        with pytest.raises(ShapeError, match=r"input 'x' has 0 rows \(shape \(0, 4\)\)"):
            call()


@pytest.mark.parametrize("bad", [0, (2, 0), -1, True, 1.5])
def test_sample_shape_entries_must_be_at_least_one(bad: object) -> None:
    q = _q()
    with pytest.raises(ShapeError, match=r"Normal q\(z\|x\): sample_shape must be"):
        q.sample({"x": torch.randn(3, 4)}, sample_shape=bad)  # type: ignore[arg-type]


def test_batch_n_must_be_at_least_one() -> None:
    prior = Normal(var=["z"], loc=0.0, scale=1.0, features_shape=[2])
    with pytest.raises(ShapeError, match="batch_n must be >= 1, got 0"):
        prior.sample(batch_n=0)
    assert prior.sample(batch_n=3)["z"].shape == (3, 2)


# -- what a network cannot take ------------------------------------------------------------------------------
@pytest.mark.parametrize("x, shows", [
    (torch.randn(3, 5), "'x' (3, 5) float32"),  # wrong width
    (torch.randn(3, 4, dtype=torch.float64), "'x' (3, 4) float64"),
    (torch.ones(3, 4, dtype=torch.long), "'x' (3, 4) int64"),  # not converted: a network may take indices
])
def test_network_errors_name_the_distribution_and_its_inputs(x: torch.Tensor, shows: str) -> None:
    q = _q()
    with pytest.raises(ShapeError) as info:
        q.sample({"x": x})
    msg = str(info.value)
    assert msg.startswith("Normal q(z|x): its network failed on the conditioning variables")
    assert shows in msg and "parameters are float32" in msg
    assert isinstance(info.value.__cause__, RuntimeError)
    assert str(info.value.__cause__).splitlines()[0] in msg  # the original message is kept
    with pytest.raises(ShapeError, match="its network failed"):  # inside an objective too, at any step
        E(q, LogProb(q), sample_shape=2)({"x": x})


def test_out_of_memory_passes_through_unwrapped() -> None:
    class Oom(nn.Module):
        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    q = Normal(var=["z"], cond_var=["x"], net=Oom(), name="q")
    with pytest.raises(torch.cuda.OutOfMemoryError):
        q.sample({"x": torch.randn(3, 4)})
