"""Inpainting with a trained flow: fill the missing entries of ``x`` under the flow's exact likelihood, by
optimisation (the conditional mode) or by sampling ``x_m ~ p(x_m | x_o)`` with Metropolis-adjusted Langevin.

Both work on unconstrained values ``y``: ``x_m = lo + (hi - lo) σ(y)`` when the data has ``bounds``.

Under ``N(0, I)`` the entries are independent, so the conditional mode of a missing entry is 0:

>>> import torch
>>> from deepgm.distributions import Normal
>>> from deepgm.flows import Flow
>>> flow = Flow(var=["x"], base=Normal(var=["u"], loc=0.0, scale=1.0, features_shape=[2]), transforms=[])
>>> x, observed = torch.tensor([[0.5, 3.0], [-1.0, -2.0]]), torch.tensor([[1.0, 0.0], [1.0, 0.0]])
>>> filled = inpaint(flow, x, observed, steps=50, lr=0.1, bounds=None, init=torch.ones(2, 2))
>>> filled[:, 0], bool(filled[:, 1].abs().max() < 0.05)  # observed entries kept; missing ones at the mode
(tensor([ 0.5000, -1.0000]), True)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from deepgm.flows.distribution import Flow
from deepgm.flows.preprocessing import Dequantize

__all__ = ["inpaint", "inpaint_sample"]


@contextmanager
def _frozen(flow: Flow) -> Iterator[None]:
    """The flow in eval mode, its parameters without gradients, dequantisation at the midpoint (so the
    log-density is a deterministic function of ``x``); everything restored afterwards."""
    was = flow.training
    grads = [p.requires_grad for p in flow.parameters()]
    dequantizers = [(m, m.eval_noise) for m in flow.modules() if isinstance(m, Dequantize)]
    flow.eval()
    for p in flow.parameters():
        p.requires_grad_(False)
    for m, _ in dequantizers:
        m.eval_noise = "midpoint"
    try:
        yield
    finally:
        for p, g in zip(flow.parameters(), grads):
            p.requires_grad_(g)
        for m, noise in dequantizers:
            m.eval_noise = noise
        flow.train(was)


def _setup(x: torch.Tensor, observed: torch.Tensor, bounds: tuple[float, float] | None,
           init: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The mask as a float tensor like ``x``, ``x`` detached, and the starting unconstrained values."""
    try:
        keep = observed.to(x.dtype).expand_as(x)
    except RuntimeError:
        raise ValueError(f"inpaint: the mask of shape {tuple(observed.shape)} does not fit x of shape "
                         f"{tuple(x.shape)}") from None
    x = x.detach()
    if init is None:
        y0 = torch.zeros_like(x)  # the middle of the bounds, or 0
    elif bounds is None:
        y0 = init.detach().expand_as(x).clone()
    else:
        lo, hi = bounds
        y0 = torch.logit(((init.detach().expand_as(x) - lo) / (hi - lo)).clamp(1e-3, 1 - 1e-3))
    return keep, x, y0


def _filler(x: torch.Tensor, keep: torch.Tensor,
            bounds: tuple[float, float] | None) -> Callable[[torch.Tensor], torch.Tensor]:
    def fill(y: torch.Tensor) -> torch.Tensor:
        m = y if bounds is None else bounds[0] + (bounds[1] - bounds[0]) * torch.sigmoid(y)
        return keep * x + (1 - keep) * m
    return fill


def inpaint(flow: Flow, x: torch.Tensor, observed: torch.Tensor, steps: int = 200, lr: float = 0.05,
            bounds: tuple[float, float] | None = (0.0, 1.0), init: torch.Tensor | None = None,
            **conditions: torch.Tensor) -> torch.Tensor:
    """``argmax_{x_m} log p(x_o, x_m)``: the missing entries (``observed == 0``) of ``x`` optimised by Adam
    for ``steps`` steps, the observed ones kept; the flow runs in eval mode and is not changed.

    ``bounds``: the data's range, kept by optimising ``x_m = lo + (hi - lo) σ(y)`` (``None``: unbounded).
    ``init``: the starting values of the missing entries (default: the middle of ``bounds``, or 0).
    Dequantisation layers take their midpoint during the optimisation, so the objective is deterministic.
    Returns the completed ``x``.
    """
    keep, x, y0 = _setup(x, observed, bounds, init)
    fill = _filler(x, keep, bounds)
    y = y0.clone().requires_grad_(True)
    opt = torch.optim.Adam([y], lr=lr)
    with _frozen(flow):
        for _ in range(steps):
            opt.zero_grad()
            loss = -flow.log_prob({flow.var[0]: fill(y), **conditions}).sum()
            loss.backward()  # type: ignore[no-untyped-call, unused-ignore]  # torch's Tensor.backward: unannotated
            opt.step()
    return fill(y).detach()


def inpaint_sample(flow: Flow, x: torch.Tensor, observed: torch.Tensor, steps: int = 500,
                   step_size: float = 0.01, bounds: tuple[float, float] | None = (0.0, 1.0),
                   init: torch.Tensor | None = None, adapt: bool = True, target_acceptance: float = 0.574,
                   generator: torch.Generator | None = None,
                   **conditions: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Draw the missing entries from ``p(x_m | x_o) ∝ p(x_o, x_m)`` by Metropolis-adjusted Langevin (MALA),
    one chain per row of ``x``, on the unconstrained ``y`` (target ``log p(x(y)) + log|dx_m/dy|``):

        ``y' = y + (h/2) ∇log π(y) + √h ξ``, accepted with probability
        ``min(1, π(y') q(y|y') / (π(y) q(y'|y)))``, ``q(b|a) = N(b; a + (h/2)∇log π(a), h I)``.

    ``adapt``: during the first half of the ``steps`` the step size ``h`` of each chain is tuned towards
    ``target_acceptance`` (Robbins–Monro on ``log h``); the second half runs with it fixed, so the last
    state is a draw from a valid MCMC chain. Returns the completed ``x`` (the chains' last states) and
    the acceptance rate over the second half. The flow runs in eval mode and is not changed.
    """
    if steps < 2 or step_size <= 0:
        raise ValueError(f"inpaint_sample: needs steps >= 2 and step_size > 0, got {steps} and {step_size}")
    keep, x, y = _setup(x, observed, bounds, init)
    fill = _filler(x, keep, bounds)
    free = 1 - keep
    lead = tuple(range(1, x.dim()))

    def log_target(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = y.detach().requires_grad_(True)
        lp = flow.log_prob({flow.var[0]: fill(y), **conditions})
        if bounds is not None:  # the change of variables x_m = lo + (hi - lo) σ(y)
            log_jac = math.log(bounds[1] - bounds[0]) + torch.nn.functional.logsigmoid(y) \
                + torch.nn.functional.logsigmoid(-y)
            lp = lp + (free * log_jac).sum(lead)
        (grad,) = torch.autograd.grad(lp.sum(), y)
        return lp.detach(), grad * free

    def log_q(to: torch.Tensor, frm: torch.Tensor, grad_frm: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        mean = frm + h / 2 * grad_frm
        return -((to - mean) ** 2 * free).sum(lead) / (2 * h.reshape(-1))

    n = x.shape[0]
    log_h = torch.full((n,) + (1,) * (x.dim() - 1), math.log(step_size), dtype=x.dtype, device=x.device)
    burn = steps // 2 if adapt else 0
    accepted = torch.zeros(n, dtype=x.dtype, device=x.device)
    with _frozen(flow), torch.enable_grad():
        lp, grad = log_target(y)
        for i in range(steps):
            h = log_h.exp()
            noise = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
            proposal = y + (h / 2 * grad + h.sqrt() * noise) * free
            lp_new, grad_new = log_target(proposal)
            log_alpha = lp_new - lp + log_q(y, proposal, grad_new, h) - log_q(proposal, y, grad, h)
            log_alpha = torch.nan_to_num(log_alpha, nan=-math.inf)
            u = torch.rand(n, generator=generator, dtype=x.dtype).to(x.device)
            accept = torch.log(u) < log_alpha
            a = accept.to(x.dtype).reshape((n,) + (1,) * (x.dim() - 1))
            y = a * proposal + (1 - a) * y
            lp = torch.where(accept, lp_new, lp)
            grad = a * grad_new + (1 - a) * grad
            if i < burn:
                rate = log_alpha.clamp(max=0).exp().reshape(log_h.shape)
                log_h = log_h + (rate - target_acceptance) / math.sqrt(i + 1)
            else:
                accepted += accept.to(x.dtype)
    return fill(y).detach(), float(accepted.mean() / (steps - burn))
