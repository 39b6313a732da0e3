"""Inpainting with a trained flow: fill the missing entries of ``x`` under the flow's exact likelihood."""

from __future__ import annotations

import torch

from deepgm.flows.distribution import Flow
from deepgm.flows.preprocessing import Dequantize

__all__ = ["inpaint"]


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
    y = y0.clone().requires_grad_(True)
    opt = torch.optim.Adam([y], lr=lr)
    was = flow.training
    flow.eval()
    dequantizers = [(m, m.eval_noise) for m in flow.modules() if isinstance(m, Dequantize)]
    for m, _ in dequantizers:
        m.eval_noise = "midpoint"
    grads = [p.requires_grad for p in flow.parameters()]
    for p in flow.parameters():
        p.requires_grad_(False)

    def fill(y: torch.Tensor) -> torch.Tensor:
        m = y if bounds is None else bounds[0] + (bounds[1] - bounds[0]) * torch.sigmoid(y)
        return keep * x + (1 - keep) * m

    try:
        for _ in range(steps):
            opt.zero_grad()
            loss = -flow.log_prob({flow.var[0]: fill(y), **conditions}).sum()
            loss.backward()
            opt.step()
    finally:
        for p, g in zip(flow.parameters(), grads):
            p.requires_grad_(g)
        for m, noise in dequantizers:
            m.eval_noise = noise
        flow.train(was)
    return fill(y).detach()
