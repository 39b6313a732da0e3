"""Objectives scanned over time, carrying state (VRNN, DMM, TD-VAE).

A random walk scored step by step: ``x_t ~ N(h, 1)`` where the state ``h`` is the previous ``x``
(``h_new`` is drawn, deterministically, as ``x_t`` and carried to the next step as ``h``):

>>> import torch
>>> from deepgm.distributions import Deterministic, Normal
>>> from deepgm.losses import E, LogProb
>>> p = Normal(var=["x"], cond_var=["h"], loc="h", scale=1.0)
>>> carry = Deterministic(var=["h_new"], cond_var=["x"], loc="x")
>>> walk = IterativeLoss(E(carry, LogProb(p)), series_var=["x"], update_value={"h_new": "h"})
>>> x = torch.tensor([0.0, 1.0, 3.0]).reshape(3, 1, 1)  # (time, batch, features)
>>> walk(x=x, h=torch.zeros(1, 1))  # log N(0; 0, 1) + log N(1; 0, 1) + log N(3; 1, 1)
tensor([-5.2568])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from deepgm.distributions.base import positive_int
from deepgm.distributions.env import Env
from deepgm.errors import ObjectiveError
from deepgm.losses.expr import Loss, as_loss

__all__ = ["IterativeLoss"]


class IterativeLoss(Loss):
    """``Σ_{t=0}^{T-1} step_loss`` where at step ``t`` every ``series_var`` ``v`` is bound to ``v[t]``
    (time is the first dimension of the inputs) and, after each step, ``update_value={"h_new": "h"}``
    binds ``h`` to the value ``h_new`` took in that step (drawn or computed there), for the next step.
    ``T`` is ``max_iter`` or the length of the series. ``timestep_var`` (optional) names a variable that
    holds ``t``. Initial state values come from the inputs.
    """

    def __init__(self, step_loss: Loss, max_iter: int | None = None, series_var: Sequence[str] = (),
                 update_value: Mapping[str, str] | None = None, timestep_var: str | None = None) -> None:
        self.step_loss = as_loss(step_loss)
        if max_iter is None and not series_var:
            raise ObjectiveError("IterativeLoss: give max_iter or at least one series_var")
        if max_iter is not None:
            max_iter = positive_int(max_iter, "IterativeLoss: max_iter", 1, ObjectiveError)
        self.max_iter = max_iter
        self.series_var = list(series_var)
        self.update_value = dict(update_value or {})
        self.timestep_var = timestep_var

    def _eval(self, env: Env) -> Any:
        steps = self.max_iter
        if steps is None:
            lengths = {v: env.get(v, "IterativeLoss").shape[0] for v in self.series_var}
            if len(set(lengths.values())) > 1:
                raise ObjectiveError(f"IterativeLoss: series variables differ in length: {lengths}")
            steps = next(iter(lengths.values()))
        state = env.child()
        total: Any = 0.0
        for t in range(steps):
            step = state.child()
            for v in self.series_var:
                step.set(v, env.get(v, "IterativeLoss")[t])
            if self.timestep_var is not None:
                step.set(self.timestep_var, torch.tensor(t))
            with env.tracing() as trace:  # what this step, and only this step, draws or computes
                total = total + self.step_loss._eval(step)
            for new, old in self.update_value.items():
                if new not in trace:
                    raise ObjectiveError(f"IterativeLoss: update_value needs '{new}', which step {t} "
                                         f"did not draw or compute")
                value, sdim = trace[new]
                state.set(old, value, sdim)
        return total

    def children(self) -> tuple[Loss, ...]:
        return (self.step_loss,)

    def own_drawn(self) -> tuple[str, ...]:
        return tuple(self.update_value) + ((self.timestep_var,) if self.timestep_var else ())

    def _render(self, latex: bool) -> str:
        inner = self.step_loss._render(latex)
        top = "T" if self.max_iter is None else str(self.max_iter)
        return rf"\sum_{{t=1}}^{{{top}}} {inner}" if latex else f"sum_(t=1..{top}) {inner}"
