"""Continuous flows (FFJORD): invertibility, the log-det against the Jacobian, Hutchinson's estimator
is unbiased, the optional torchdiffeq solvers."""

from __future__ import annotations

import sys

import pytest
import torch

from deepgm.data import toy_2d
from deepgm.distributions import Normal
from deepgm.flows import CNF, Flow, ODENet, exact_trace, hutchinson_trace, sample_noise
from deepgm.models import ML

try:
    import torchdiffeq  # noqa: F401

    HAS_TORCHDIFFEQ = True
except ImportError:
    HAS_TORCHDIFFEQ = False
needs_torchdiffeq = pytest.mark.skipif(not HAS_TORCHDIFFEQ, reason="torchdiffeq is not installed")


def _net(dim: int = 2, context_dim: int = 0) -> ODENet:
    torch.manual_seed(0)
    return ODENet(dim, (16, 16), context_dim).double()


@pytest.mark.parametrize("noise", ["rademacher", "gaussian"])
def test_hutchinson_is_unbiased(noise: str) -> None:
    net = _net(3)
    z0 = torch.randn(1, 3, dtype=torch.float64)
    n = 20000
    z = z0.expand(n, 3).clone().requires_grad_(True)
    t = torch.tensor(0.3, dtype=torch.float64)
    f = net(t, z)
    exact = exact_trace(f, z, create_graph=False)
    est, _ = hutchinson_trace(f, z, sample_noise(z, noise), create_graph=False)  # one ε per row
    assert torch.allclose(exact, exact[0].expand(n))
    se = est.std() / n**0.5
    assert abs(est.mean() - exact[0]) < 4 * se + 1e-9, (est.mean(), exact[0], se)
    assert est.std() > 0  # a real estimate, not the exact trace


def test_cnf_inverts_and_its_exact_logdet_matches_the_jacobian() -> None:
    cnf = CNF(_net(), 2, trace="exact", solver="rk4", steps=20).double()
    x = torch.randn(3, 2, dtype=torch.float64)
    y, ld = cnf(x)
    assert cnf.nfe == 80 and not torch.allclose(y, x, atol=1e-2)
    back, ld_inv = cnf.inverse(y)
    assert torch.allclose(back, x, atol=1e-6) and torch.allclose(ld_inv, -ld, atol=1e-6)
    for i in range(3):
        jac = torch.autograd.functional.jacobian(lambda v: cnf(v[None])[0][0], x[i])
        assert torch.allclose(ld[i], torch.linalg.slogdet(jac)[1], atol=1e-6)
    assert set(cnf.regularization) == {"kinetic", "jacobian"} and (cnf.regularization["kinetic"] > 0).all()


def test_hutchinson_logdet_averages_to_the_exact_one() -> None:
    net = _net()
    exact = CNF(net, 2, trace="exact", steps=4).double()
    hutch = CNF(net, 2, trace="hutchinson", steps=4).double()
    x = torch.randn(1, 2, dtype=torch.float64).expand(4000, 2)
    with torch.no_grad():
        _, ld_exact = exact(x[:1])
        y, ld_h = hutch(x)
    assert torch.allclose(y[0], exact(x[:1])[0][0])
    se = ld_h.std() / 4000**0.5
    assert abs(ld_h.mean() - ld_exact[0]) < 4 * se + 1e-9


def test_conditional_cnf_depends_on_the_context() -> None:
    cnf = CNF(_net(2, 3), 2, trace="exact", steps=4, context_dim=3).double()
    x, c = torch.randn(4, 2, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    assert not torch.allclose(cnf(x, c)[0], cnf(x, c + 1)[0])
    with pytest.raises(ValueError, match="context"):
        cnf(x)


def test_ffjord_flow_trains_on_a_toy() -> None:
    torch.manual_seed(0)
    x = toy_2d("moons", 64, seed=0)
    x = (x - x.mean(0)) / x.std(0)
    base = Normal(var=["u"], loc=0.0, scale=1.0, features_shape=[2])
    flow = Flow(var=["x"], base=base, transforms=[CNF(ODENet(2, (16, 16)), 2, trace="exact", steps=2)])
    model = ML(flow, optimizer_params={"lr": 2e-2})
    first = model.eval_step({"x": x})
    for _ in range(15):
        model.train_step({"x": x})
    assert model.eval_step({"x": x}) < first - 0.05
    assert flow.sample(batch_n=5)["x"].shape == (5, 2)


def test_missing_torchdiffeq_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torchdiffeq", None)
    with pytest.raises(ImportError, match="pip install torchdiffeq"):
        CNF(_net(), 2, solver="dopri5")
    CNF(_net(), 2, solver="rk4")  # the built-in solvers need nothing


@needs_torchdiffeq
def test_adaptive_solver_agrees_with_rk4_and_counts_evaluations() -> None:
    net = _net()
    x = torch.randn(5, 2, dtype=torch.float64)
    ref = CNF(net, 2, trace="exact", solver="rk4", steps=50).double()
    ada = CNF(net, 2, trace="exact", solver="dopri5", atol=1e-8, rtol=1e-8).double()
    (y1, l1), (y2, l2) = ref(x), ada(x)
    assert torch.allclose(y1, y2, atol=1e-6) and torch.allclose(l1, l2, atol=1e-6)
    assert ada.nfe > 6
    back, _ = ada.inverse(y2)
    assert torch.allclose(back, x, atol=1e-6)


@needs_torchdiffeq
def test_adjoint_gradients_match_backprop() -> None:
    net = _net()
    x = torch.randn(4, 2, dtype=torch.float64)
    grads = []
    for adjoint in (False, True):
        cnf = CNF(net, 2, trace="exact", solver="dopri5", atol=1e-9, rtol=1e-9, adjoint=adjoint).double()
        net.zero_grad()
        y, ld = cnf(x)
        (y.pow(2).sum() - ld.sum()).backward()
        grads.append(torch.cat([p.grad.reshape(-1) for p in net.parameters()]))
    assert torch.allclose(grads[0], grads[1], atol=1e-5)


@needs_torchdiffeq
def test_the_adjoint_forward_solve_keeps_no_graph_for_the_backward_pass() -> None:
    import weakref

    x = torch.randn(512, 2, dtype=torch.float64)
    held = {}
    for adjoint in (False, True):
        cnf = CNF(_net(), 2, trace="hutchinson", solver="dopri5", atol=1e-5, rtol=1e-5, adjoint=adjoint).double()
        saved: list[weakref.ref[torch.Tensor]] = []

        def pack(t: torch.Tensor) -> torch.Tensor:
            saved.append(weakref.ref(t))
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            y, ld = cnf(x)
        alive = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for r in saved if (t := r()) is not None}
        held[adjoint] = sum(alive.values())
        (y.pow(2).sum() - ld.sum()).backward()
    assert held[True] < 0.05 * held[False], held  # O(batch) state only, not one graph per function evaluation


def test_eval_trace_switches_to_the_exact_trace_in_eval_mode() -> None:
    net = _net()
    cnf = CNF(net, 2, trace="hutchinson", eval_trace="exact", steps=4).double()
    exact = CNF(net, 2, trace="exact", steps=4).double()
    x = torch.randn(6, 2, dtype=torch.float64)
    cnf.eval()
    with torch.no_grad():
        assert torch.allclose(cnf(x)[1], exact(x)[1])
    cnf.train()
    with torch.no_grad():
        assert not torch.allclose(cnf(x)[1], exact(x)[1])
