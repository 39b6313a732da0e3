"""Continuous normalising flows and FFJORD (Chen et al. 2018; Grathwohl et al. 2019).

``dz/dt = f(z, t, c)`` from ``t = 0`` (data) to ``t = T`` (latent); the log-density changes by the trace of
the Jacobian, ``d log|det ∂z(t)/∂x| / dt = tr(∂f/∂z)``, so ``log|det ∂u/∂x| = ∫₀ᵀ tr(∂f/∂z) dt``. The trace
is exact (``D`` backward passes: low dimension) or Hutchinson's estimate ``εᵀ(∂f/∂z)ε`` with one ``ε``
(Rademacher or Gaussian, ``E[εεᵀ] = I``) held fixed during a solve. Fixed-step solvers (``euler``,
``rk4``) are built in; adaptive ones (``dopri5``, …) and the adjoint method need the optional package
``torchdiffeq``.

>>> import torch
>>> _ = torch.manual_seed(0)
>>> z, A = torch.randn(4, 3, requires_grad=True), torch.randn(3, 3)
>>> torch.allclose(exact_trace(z @ A.T, z), A.trace().expand(4))  # f(z) = A z: tr(∂f/∂z) = tr(A)
True
>>> cnf = CNF(ODENet(2, hidden=(16,)), dim=2, trace="exact", solver="rk4", steps=4)
>>> x = torch.randn(3, 2)
>>> u, logdet = cnf(x)
>>> x_back, inverse_logdet = cnf.inverse(u)
>>> torch.allclose(x_back, x, atol=1e-3), torch.allclose(inverse_logdet, -logdet, atol=1e-3)
(True, True)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import nn

from deepgm.errors import ShapeError
from deepgm.flows.base import Transform, _check_context

__all__ = ["ODENet", "CNF", "FFJORD", "exact_trace", "hutchinson_trace", "sample_noise"]

Solver = Literal["euler", "rk4", "dopri5", "dopri8", "bosh3", "adaptive_heun", "midpoint"]
_FIXED = ("euler", "rk4")


class ODENet(nn.Module):
    """``f(z, t, c) = MLP([z, t, c])`` with smooth (``tanh``/``softplus``) activations."""

    def __init__(self, dim: int, hidden: Sequence[int] = (64, 64), context_dim: int = 0,
                 activation: Literal["tanh", "softplus"] = "tanh") -> None:
        super().__init__()
        act = {"tanh": nn.Tanh, "softplus": nn.Softplus}[activation]
        sizes = [dim + 1 + context_dim, *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), act()]
        layers.append(nn.Linear(sizes[-1], dim))
        self.net = nn.Sequential(*layers)
        self.dim, self.context_dim = dim, context_dim

    def forward(self, t: torch.Tensor, z: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        parts = [z, t.reshape(1, 1).expand(z.shape[0], 1).to(z)]
        if context is not None:
            parts.append(context)
        out: torch.Tensor = self.net(torch.cat(parts, -1))
        return out


def sample_noise(like: torch.Tensor, kind: Literal["rademacher", "gaussian"]) -> torch.Tensor:
    """``ε`` with ``E[εεᵀ] = I``: ±1 with equal probability (``rademacher``) or standard normal."""
    if kind == "rademacher":
        return torch.randint(0, 2, like.shape, device=like.device).to(like.dtype) * 2 - 1
    if kind == "gaussian":
        return torch.randn_like(like)
    raise ValueError(f"noise must be 'rademacher' or 'gaussian', got {kind!r}")


def exact_trace(f: torch.Tensor, z: torch.Tensor, create_graph: bool = True) -> torch.Tensor:
    """``tr(∂f/∂z)`` per example, ``Σ_i ∂f_i/∂z_i`` by ``D`` backward passes (``f``, ``z``: ``(N, D)``)."""
    total = torch.zeros(z.shape[0], dtype=z.dtype, device=z.device)
    for i in range(z.shape[1]):
        g = torch.autograd.grad(f[:, i].sum(), z, create_graph=create_graph, retain_graph=True)[0]
        total = total + g[:, i]
    return total


def hutchinson_trace(f: torch.Tensor, z: torch.Tensor, eps: torch.Tensor, create_graph: bool = True
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Hutchinson's ``εᵀ(∂f/∂z)ε`` per example (unbiased for ``tr(∂f/∂z)`` when ``E[εεᵀ] = I``), and the
    vector-Jacobian product ``εᵀ ∂f/∂z`` (for the Jacobian-norm regulariser)."""
    vjp = torch.autograd.grad(f, z, eps, create_graph=create_graph)[0]
    return (vjp * eps).reshape(z.shape[0], -1).sum(-1), vjp


class _Augmented(nn.Module):
    """The dynamics of ``(z, ∫tr, ∫‖f‖², ∫‖εᵀJ‖²)``, with the noise and context of the current solve."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.eps: torch.Tensor | None = None
        self.context: torch.Tensor | None = None
        self.exact = False
        self.create_graph = True
        self.nfe = 0

    def forward(self, t: torch.Tensor, state: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        self.nfe += 1
        z = state[0]
        # keep the graph only when the caller records one: not in the adjoint's forward solve (run under
        # no_grad), whose steps would otherwise hold their graphs until the solver lets go of them
        train = self.create_graph and torch.is_grad_enabled()
        with torch.enable_grad():
            if not z.requires_grad:
                z = z.detach().requires_grad_(True)
            f = self.net(t, z, self.context)
            if self.exact:
                tr = exact_trace(f, z, create_graph=train)
                jac_norm = torch.zeros_like(tr)
            else:
                assert self.eps is not None
                tr, vjp = hutchinson_trace(f, z, self.eps, create_graph=train)
                jac_norm = vjp.pow(2).reshape(z.shape[0], -1).sum(-1)
        if not train:
            f, tr, jac_norm = f.detach(), tr.detach(), jac_norm.detach()
        kinetic = f.pow(2).reshape(z.shape[0], -1).sum(-1)
        return f, tr, kinetic, jac_norm


def _fixed_step(func: nn.Module, state: tuple[torch.Tensor, ...], t0: float, t1: float, steps: int,
                method: str) -> tuple[torch.Tensor, ...]:
    """Integrate ``func`` from ``t0`` to ``t1`` in ``steps`` Euler or classical RK4 steps."""
    h = (t1 - t0) / steps
    t = torch.tensor(t0, dtype=state[0].dtype, device=state[0].device)

    def add(a: tuple[torch.Tensor, ...], b: tuple[torch.Tensor, ...], c: float) -> tuple[torch.Tensor, ...]:
        return tuple(x + c * y for x, y in zip(a, b))

    for _ in range(steps):
        k1 = func(t, state)
        if method == "euler":
            state = add(state, k1, h)
        else:
            k2 = func(t + h / 2, add(state, k1, h / 2))
            k3 = func(t + h / 2, add(state, k2, h / 2))
            k4 = func(t + h, add(state, k3, h))
            state = tuple(s + h / 6 * (a + 2 * b + 2 * c + d) for s, a, b, c, d in zip(state, k1, k2, k3, k4))
        t = t + h
    return state


class CNF(Transform):
    """A continuous normalising flow ``dz/dt = f(z, t, c)`` on vectors ``(N, D)`` (see module docstring).

    ``trace``: ``exact`` or ``hutchinson`` (``noise``: ``rademacher``/``gaussian``, one draw per solve);
    ``eval_trace`` (default: ``trace``) is used in eval mode, e.g. ``exact`` for evaluation in low dimension.
    ``solver``: ``euler``/``rk4`` with ``steps`` fixed steps (built in), or any adaptive torchdiffeq method
    with ``atol``/``rtol``; ``adjoint=True`` uses torchdiffeq's adjoint method (memory constant in the
    number of steps). After each call, ``nfe`` holds the number of function evaluations and
    ``regularization`` the kinetic energy ``∫‖f‖² dt`` and Jacobian norm ``∫‖εᵀ∂f/∂z‖² dt`` per example
    (RNODE's regularisers; add ``λ_K·kinetic + λ_J·jacobian`` to the objective).
    """

    def __init__(self, net: nn.Module, dim: int, T: float = 1.0, trace: Literal["exact", "hutchinson"] = "hutchinson",
                 noise: Literal["rademacher", "gaussian"] = "rademacher", solver: Solver = "rk4", steps: int = 8,
                 atol: float = 1e-5, rtol: float = 1e-5, adjoint: bool = False, context_dim: int = 0,
                 eval_trace: Literal["exact", "hutchinson"] | None = None) -> None:
        super().__init__()
        for t in (trace, eval_trace or trace):
            if t not in ("exact", "hutchinson"):
                raise ValueError(f"CNF: trace must be 'exact' or 'hutchinson', got {t!r}")
        self.eval_trace = eval_trace or trace
        if solver not in _FIXED or adjoint:
            _torchdiffeq()  # fail now, not at the first solve
        self.func = _Augmented(net)
        self.dim, self.T, self.trace, self.noise = dim, T, trace, noise
        self.solver, self.steps, self.atol, self.rtol, self.adjoint = solver, steps, atol, rtol, adjoint
        self.context_dim = context_dim
        self.nfe = 0
        self.regularization: dict[str, torch.Tensor] = {}

    def _solve(self, x: torch.Tensor, context: torch.Tensor | None, reverse: bool) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ShapeError(f"CNF: expected inputs (N, {self.dim}), got {tuple(x.shape)}")
        _check_context("CNF", context, self.context_dim, x.shape[0])
        fn = self.func
        trace = self.trace if self.training else self.eval_trace
        fn.context, fn.exact, fn.nfe = context, trace == "exact", 0
        fn.eps = None if fn.exact else sample_noise(x, self.noise)
        fn.create_graph = torch.is_grad_enabled()
        # integrate s ∈ [0, T]; the reverse solve runs the time-reversed dynamics, t = T - s
        func: nn.Module = fn if not reverse else _Reversed(fn, self.T)
        zero = x.new_zeros(x.shape[0])
        state = (x, zero, zero, zero)
        if self.solver in _FIXED and not self.adjoint:
            out = _fixed_step(func, state, 0.0, self.T, self.steps, self.solver)
        else:
            tdq = _torchdiffeq()
            ts = torch.tensor([0.0, self.T], dtype=x.dtype, device=x.device)
            solve = tdq.odeint_adjoint if self.adjoint else tdq.odeint
            kw: dict[str, Any] = {"method": self.solver, "atol": self.atol, "rtol": self.rtol}
            if self.solver in _FIXED:
                kw["options"] = {"step_size": self.T / self.steps}
            if self.adjoint:
                kw["adjoint_params"] = tuple(fn.net.parameters())
            out = tuple(o[-1] for o in solve(func, state, ts, **kw))
        self.nfe = fn.nfe
        self.regularization = {"kinetic": out[2], "jacobian": out[3]}
        return out[0], out[1]

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self._solve(x, context, reverse=False)

    def inverse(self, y: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self._solve(y, context, reverse=True)


class _Reversed(nn.Module):
    """``s ↦ -F(T - s)``: integrating it over ``[0, T]`` runs the original dynamics from ``T`` back to 0."""

    def __init__(self, fn: _Augmented, T: float) -> None:
        super().__init__()
        self.fn, self.T = fn, T

    def forward(self, s: torch.Tensor, state: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        dz, dtr, kin, jac = self.fn(self.T - s, state)
        return -dz, -dtr, kin, jac


FFJORD = CNF


def _torchdiffeq() -> Any:
    try:
        import torchdiffeq
    except ImportError:
        raise ImportError(
            "CNF/FFJORD: adaptive solvers and the adjoint method need the optional package torchdiffeq "
            "(pip install torchdiffeq); without it use solver='euler' or 'rk4' with adjoint=False"
        ) from None
    return torchdiffeq
