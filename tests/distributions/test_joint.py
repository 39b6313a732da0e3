"""Joint distributions ``p(x,z) = p(x|z) p(z)``: text, sampling order, log-density as the sum of the
factors (checked against scipy), renaming with shared parameters, marginalisation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from deepgm.distributions import Bernoulli, JointDistribution, Normal
from deepgm.errors import MissingVariableError

F64 = torch.float64


@pytest.fixture(autouse=True)
def _seed_torch() -> None:
    torch.manual_seed(4321)


def check(actual: torch.Tensor, expected: np.ndarray | torch.Tensor, rtol: float = 1e-7,
          atol: float = 1e-9) -> None:
    if torch.is_tensor(expected):
        expected = expected.detach().to(F64).numpy()
    expected = np.asarray(expected, dtype=np.float64)
    got = actual.detach().to(F64).numpy()
    assert got.shape == expected.shape, f"shape {got.shape}, expected {expected.shape}"
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol)


class Decoder(nn.Module):
    """``z -> {loc: W z + b}``; the test reads ``W`` and ``b`` for its own reference."""

    def __init__(self, dz: int = 2, dx: int = 3) -> None:
        super().__init__()
        self.fc = nn.Linear(dz, dx)

    def forward(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"loc": self.fc(z)}


SIGMA = 0.7


def model() -> tuple[Normal, Normal]:
    """``p(x|z) = N(x; W z + b, 0.7²)`` and ``p_{prior}(z) = N(0, I_2)``, in float64."""
    p = Normal(var=["x"], cond_var=["z"], net=Decoder().double(), scale=torch.tensor(SIGMA, dtype=F64),
               name="p")
    prior = Normal(var=["z"], loc=torch.zeros(2, dtype=F64), scale=torch.ones(2, dtype=F64),
                   name="p_{prior}")
    return p, prior


def reference_log_prob(p: Normal, x: torch.Tensor, z: torch.Tensor) -> np.ndarray:
    """log N(z; 0, I) + log N(x; W z + b, σ² I) by scipy, summed over features."""
    assert isinstance(p.net, Decoder)
    w, b = p.net.fc.weight.detach().numpy(), p.net.fc.bias.detach().numpy()
    zn, xn = z.numpy(), x.numpy()
    loc = zn @ w.T + b
    return stats.norm.logpdf(zn).sum(-1) + stats.norm.logpdf(xn, loc, SIGMA).sum(-1)


def test_repr_and_variables() -> None:
    p, prior = model()
    joint = p * prior
    assert isinstance(joint, JointDistribution)
    assert repr(joint) == "p(x,z) = p(x|z)p_{prior}(z)"
    assert joint.var == ["x", "z"] and joint.cond_var == []
    other = prior * p
    assert repr(other) == "p_{prior}(z,x) = p_{prior}(z)p(x|z)"
    assert set(other.var) == {"x", "z"} and other.cond_var == []


def test_condition_of_a_joint_is_what_no_factor_defines() -> None:
    p = Normal(var=["x"], cond_var=["z", "y"], net=nn.Identity(), name="p")
    prior = Normal(var=["z"], loc=0.0, scale=1.0, features_shape=[2], name="p_{prior}")
    joint = p * prior
    assert joint.cond_var == ["y"]
    assert repr(joint) == "p(x,z|y) = p(x|z,y)p_{prior}(z)"
    with pytest.raises(MissingVariableError, match="'y'"):
        joint.sample(batch_n=3)


@pytest.mark.parametrize("order", ["p*prior", "prior*p"])
def test_sampling_follows_the_topological_order(order: str) -> None:
    p, prior = model()
    joint = p * prior if order == "p*prior" else prior * p
    out = joint.sample(sample_shape=(4,), batch_n=5)
    z, x = out["z"], out["x"]
    assert z.shape == (4, 5, 2) and x.shape == (4, 5, 3)
    # x was drawn given the z just drawn: its residual from W z + b is N(0, 0.7²)
    resid = (x - p.net.fc(z)).detach()
    assert abs(float(resid.mean())) < 0.3 and abs(float(resid.std()) - SIGMA) < 0.2
    assert joint.log_prob(out).shape == (4, 5)
    out = joint.sample(batch_n=6)
    assert out["z"].shape == (6, 2) and out["x"].shape == (6, 3)
    assert joint.log_prob(out).shape == (6,)


def test_chain_is_sampled_in_order_for_every_multiplication_order() -> None:
    tiny = torch.tensor(1e-4, dtype=F64)
    pz = Normal(var=["z"], loc=torch.zeros(3, dtype=F64), scale=torch.ones(3, dtype=F64), name="p_z")
    ph = Normal(var=["h"], cond_var=["z"], loc="z", scale=tiny, name="p_h")
    px = Normal(var=["x"], cond_var=["h"], loc="h", scale=tiny, name="p_x")
    for perm in itertools.permutations([pz, ph, px]):
        joint = perm[0] * perm[1] * perm[2]
        assert sorted(joint.var) == ["h", "x", "z"] and joint.cond_var == []
        out = joint.sample(sample_shape=(2,), batch_n=50)
        assert out["x"].shape == (2, 50, 3)
        torch.testing.assert_close(out["h"], out["z"], atol=1e-2, rtol=0)
        torch.testing.assert_close(out["x"], out["h"], atol=1e-2, rtol=0)
        assert float(out["z"].std()) > 0.5  # z is N(0, 1), not a constant


def test_log_prob_is_the_sum_of_the_factors() -> None:
    p, prior = model()
    z = torch.randn(4, 5, 2, dtype=F64)
    x = torch.randn(4, 5, 3, dtype=F64)
    expected = reference_log_prob(p, x, z)
    for joint in (p * prior, prior * p):
        check(joint.log_prob({"x": x, "z": z}), expected)
        check(joint.log_prob({"x": x[0], "z": z[0]}), expected[0])
    # the factors' own log-probabilities, added by hand
    manual = p.log_prob({"x": x, "z": z}) + prior.log_prob({"z": z})
    check((p * prior).log_prob({"x": x, "z": z}), manual)


def test_log_prob_gradient_reaches_every_factor() -> None:
    p, prior = model()
    loc = nn.Parameter(torch.zeros(2, dtype=F64))
    prior = Normal(var=["z"], loc=loc, scale=torch.ones(2, dtype=F64), name="p_{prior}")
    joint = p * prior
    out = {k: v.detach() for k, v in joint.sample(batch_n=8).items()}
    joint.log_prob(out).sum().backward()
    assert loc.grad is not None and p.net.fc.weight.grad is not None
    assert float(loc.grad.abs().sum()) > 0 and float(p.net.fc.weight.grad.abs().sum()) > 0


def test_joint_of_joints_is_flat() -> None:
    pz = Normal(var=["z"], loc=0.0, scale=1.0, features_shape=[2], name="p_z")
    ph = Normal(var=["h"], cond_var=["z"], loc="z", scale=1.0, name="p_h", event_ndim=1)
    px = Bernoulli(var=["x"], cond_var=["h"], logits="h", name="p_x", event_ndim=1)
    joint = px * (ph * pz)
    assert len(joint.factors()) == 3
    assert repr(joint) == "p_x(x,h,z) = p_x(x|h)p_h(h|z)p_z(z)"
    z, h = torch.randn(5, 2), torch.randn(5, 2)
    x = torch.bernoulli(torch.full((5, 2), 0.5))
    expected = (stats.norm.logpdf(z.numpy()).sum(-1) + stats.norm.logpdf(h.numpy(), z.numpy()).sum(-1)
                + stats.bernoulli.logpmf(x.numpy(), 1 / (1 + np.exp(-h.numpy()))).sum(-1))
    check(joint.log_prob({"x": x, "h": h, "z": z}), expected, rtol=1e-5)


def test_variable_defined_twice_is_an_error_naming_it() -> None:
    a = Normal(var=["z"], loc=0.0, scale=1.0, name="p")
    b = Normal(var=["z"], cond_var=["x"], loc="x", scale=1.0, name="q")
    with pytest.raises(ValueError, match="'z'"):
        a * b
    c = Normal(var=["x"], loc=0.0, scale=1.0)
    with pytest.raises(ValueError, match="'z'"):
        (a * c) * b


def test_cycle_is_an_error() -> None:
    a = Normal(var=["x"], cond_var=["y"], loc="y", scale=1.0, name="a")
    b = Normal(var=["y"], cond_var=["x"], loc="x", scale=1.0, name="b")
    with pytest.raises(ValueError, match="cycle"):
        a * b


def test_replace_var_renames_and_shares_parameters() -> None:
    p, prior = model()
    joint = p * prior
    renamed = joint.replace_var(x="x_u")
    assert repr(renamed) == "p(x_u,z) = p(x_u|z)p_{prior}(z)"
    assert repr(joint) == "p(x,z) = p(x|z)p_{prior}(z)"  # the original is unchanged
    ours = list(joint.parameters())
    theirs = list(renamed.parameters())
    assert len(ours) == len(theirs) == 2
    assert all(a is b for a, b in zip(ours, theirs))
    z = torch.randn(6, 2, dtype=F64)
    x = torch.randn(6, 3, dtype=F64)
    check(renamed.log_prob({"x_u": x, "z": z}), reference_log_prob(p, x, z))
    out = renamed.sample(batch_n=4)
    assert set(out) == {"x_u", "z"}
    # a change to the shared weights is seen by both
    with torch.no_grad():
        p.net.fc.weight.add_(1.0)
    check(renamed.log_prob({"x_u": x, "z": z}), reference_log_prob(p, x, z))
    check(joint.log_prob({"x": x, "z": z}), reference_log_prob(p, x, z))

    # a single family: renaming a condition, the network is the same module
    q = Normal(var=["z"], cond_var=["x"], net=Decoder(3, 2), scale=1.0, name="q")
    qu = q.replace_var(x="x_u")
    assert qu.prob_text == "q(z|x_u)" and q.prob_text == "q(z|x)"
    assert qu.net is q.net
    assert all(a is b for a, b in zip(q.parameters(), qu.parameters()))
    xs = torch.randn(6, 3)
    torch.testing.assert_close(qu.mean({"x_u": xs}), q.mean({"x": xs}))
    with pytest.raises(MissingVariableError, match="'x_u'"):
        qu.sample({"x": xs})


def test_replace_var_with_a_string_parameter() -> None:
    p = Normal(var=["x"], cond_var=["z"], loc="z", scale=0.5, event_ndim=1)
    pu = p.replace_var(z="w")
    assert pu.cond_var == ["w"]
    w, x = torch.randn(4, 2), torch.randn(4, 2)
    check(pu.log_prob({"w": w, "x": x}), stats.norm.logpdf(x.numpy(), w.numpy(), 0.5).sum(-1), rtol=1e-5)


def test_replace_var_of_an_unknown_variable_is_an_error() -> None:
    p, prior = model()
    with pytest.raises(ValueError, match="'w'"):
        (p * prior).replace_var(w="v")
    with pytest.raises(ValueError, match="'w'"):
        p.replace_var(w="v")
    with pytest.raises(ValueError):
        (p * prior).replace_var(x="z")  # two variables, one name


def test_marginalize_var() -> None:
    p, prior = model()
    joint = p * prior
    px = joint.marginalize_var("z")
    assert px.var == ["x"] and px.cond_var == []
    out = px.sample(sample_shape=(3,), batch_n=4)
    assert set(out) == {"x"} and out["x"].shape == (3, 4, 3)
    assert set(px.sample(batch_n=4)) == {"x"}
    with pytest.raises(NotImplementedError):
        px.log_prob({"x": out["x"]})
    assert "p(x) = " in px.prob_factorized_text
    with pytest.raises(ValueError, match="'w'"):
        joint.marginalize_var("w")
    with pytest.raises(ValueError):
        joint.marginalize_var(["x", "z"])  # nothing left
    # a renamed marginal keeps sharing the parameters
    pu = px.replace_var(x="x_u")
    assert set(pu.sample(batch_n=2)) == {"x_u"}
    assert all(a is b for a, b in zip(px.parameters(), pu.parameters()))
