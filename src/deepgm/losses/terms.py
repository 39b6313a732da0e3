"""Two more basic terms: the exact sum of a term over the values of an integer variable, and the squared
error of a distribution's mean as a prediction of its variable.

* ``SumOver("t", range(2, T + 1), f)`` is ``Σ_{t=2}^{T} f``: ``f`` evaluated once per value, each time in
  a scope of its own where ``t`` is bound (as a ``(B, 1)`` integer tensor, one row per data point of
  ``batch_like``), so every value gets draws of its own. It is the exact counterpart of
  ``(T - 1) · BatchE(U{2..T}, f)``, the one-draw estimate of the same sum.
* ``SquaredError(p)`` is ``‖x - E_p[x]‖²`` summed over ``p``'s event dimensions, at the current value of
  ``p``'s variable ``x``: the regression loss of a network read as the mean of a Gaussian (DDPM's
  ``‖ε - ε_θ(x_t, t)‖²``, with ``p(ε|x_t,t) = N(ε_θ(x_t, t), I)``).

>>> import torch
>>> from deepgm.distributions import Normal
>>> p = Normal(var=["eps"], cond_var=["t"], net=lambda t: {"loc": t.float()}, scale=1.0, name="p")
>>> sq = SquaredError(p)
>>> sq(eps=torch.tensor([[3.0], [5.0]]), t=torch.tensor([[1], [2]]))  # (3 - 1)², (5 - 2)²
tensor([4., 9.])
>>> total = SumOver("t", range(1, 4), sq, batch_like="eps")
>>> total(eps=torch.tensor([[3.0], [5.0]]))  # Σ_{t=1}^{3} (x - t)²
tensor([ 5., 29.])
>>> print(total)
sum_{t=1}^{3}[||eps - E_{p(eps|t)}[eps]||^2]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from deepgm.distributions.base import Distribution
from deepgm.distributions.env import Env
from deepgm.distributions.family import Family
from deepgm.errors import ObjectiveError
from deepgm.losses.core import _check_dist
from deepgm.losses.expr import Loss, as_loss

__all__ = ["SumOver", "SquaredError"]


class SumOver(Loss):
    """``Σ_{v ∈ values} f(var = v)`` (see the module docstring): ``var`` is bound to each value in turn,
    as a ``(B, 1)`` integer tensor with ``B`` the rows of the input ``batch_like``."""

    def __init__(self, var: str, values: Sequence[int], f: Loss | float, batch_like: str = "x") -> None:
        if not isinstance(var, str) or not var:
            raise ObjectiveError(f"SumOver: var must be a variable name, got {var!r}")
        vals = [int(v) for v in values]
        if not vals:
            raise ObjectiveError(f"SumOver({var}): values must hold at least one value, got {list(values)!r}")
        self.var, self.values, self.f, self.batch_like = var, vals, as_loss(f), batch_like

    def _eval(self, env: Env) -> Any:
        ref = env.get(self.batch_like, f"SumOver (batch size from '{self.batch_like}')")
        n = int(ref.shape[0]) if torch.is_tensor(ref) and ref.dim() else 1
        device = ref.device if torch.is_tensor(ref) else None
        total: Any = 0.0
        for v in self.values:
            scope = env.child()
            scope.set(self.var, torch.full((n, 1), v, dtype=torch.long, device=device))
            total = total + self.f._eval(scope)
        return total

    def children(self) -> tuple[Loss, ...]:
        return (self.f,)

    def own_drawn(self) -> tuple[str, ...]:
        return (self.var,)

    def own_inputs(self) -> tuple[str, ...]:
        return (self.batch_like,)

    def _range(self) -> tuple[str, str] | None:
        lo, hi = self.values[0], self.values[-1]
        return (str(lo), str(hi)) if self.values == list(range(lo, hi + 1)) else None

    def _render(self, latex: bool) -> str:
        inner = self.f._render(latex)
        bounds = self._range()
        if bounds is None:
            shown = ", ".join(map(str, self.values[:3])) + (", ..." if len(self.values) > 3 else "")
            where = rf"{self.var} \in \{{{shown}\}}" if latex else f"{self.var} in {{{shown}}}"
            return rf"\sum_{{{where}}} {inner}" if latex else f"sum_{{{where}}}[{inner}]"
        lo, hi = bounds
        return rf"\sum_{{{self.var}={lo}}}^{{{hi}}} {inner}" if latex else f"sum_{{{self.var}={lo}}}^{{{hi}}}[{inner}]"


class SquaredError(Loss):
    """``‖x - E_p[x]‖²`` summed over the event dimensions of ``p`` (a family with a ``loc`` parameter: its
    mean), at the current value of ``p``'s variable ``x``."""

    def __init__(self, p: Distribution) -> None:
        p = _check_dist(p, "SquaredError")
        if not isinstance(p, Family) or "loc" not in p.param_names:
            raise ObjectiveError(f"SquaredError needs a family with a 'loc' parameter (its mean), got {p.owner}")
        self.p: Family = p

    def _eval(self, env: Env) -> Any:
        x = env.get(self.p.var[0], self.p)
        loc = self.p.params_at(env)["loc"]
        return self.p.sum_event((x - loc) ** 2)

    def own_distributions(self) -> tuple[Distribution, ...]:
        return (self.p,)

    def _render(self, latex: bool) -> str:
        x, dist = self.p.var[0], self.p.prob_text
        if latex:
            return rf"\left\|{x} - \mathbb{{E}}_{{{dist}}}\left[{x}\right]\right\|^2"
        return f"||{x} - E_{{{dist}}}[{x}]||^2"
