"""The discretised logistic mixture (Salimans et al. 2017, PixelCNN++): a likelihood for grey levels.

A value ``x ∈ {0, 1/(L-1), …, 1}`` (``L = levels``, 256 for 8-bit images) is mapped to ``y = 2x - 1`` in
``[-1, 1]``; its probability is the mass a mixture of logistics puts on its bin ``[y - δ, y + δ]``
(``δ = 1/(L-1)``), the two end bins taking the tails::

    P(x) = Σ_k π_k [σ((y + δ - μ_k)/s_k) - σ((y - δ - μ_k)/s_k)],   σ(·) := 1 at y = 1 (+δ), 0 at y = -1 (-δ)

with ``π = softmax(logits)`` and ``s = exp(log_scale)``. The difference of sigmoids is computed in log space
on the side of the mean where it does not cancel, so that the bins far out in a tail keep their (tiny)
mass instead of rounding to ``-inf``. Draws: a component by Gumbel-max, a logistic draw from it, rounded
to the nearest level (which is exactly the discretised law).

>>> import torch
>>> levels = torch.arange(256) / 255
>>> lp = discretized_logistic_log_prob(levels, torch.zeros(256, 2), torch.tensor([[-0.5, 0.3]]).expand(256, 2),
...                                    torch.full((256, 2), -2.0))
>>> round(float(lp.exp().sum()), 6)  # the 256 bins' probabilities sum to 1
1.0
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import constraints

from deepgm.distributions.base import Shape
from deepgm.distributions.family import Family, ParamValue
from deepgm.errors import ParameterError, SupportError

__all__ = ["DiscretizedLogisticMixture", "discretized_logistic_log_prob", "discretized_logistic_sample",
           "grey_level_error"]

Names = Sequence[str] | str
MIN_LOG_SCALE = -7.0  # log-scales are clamped below at this (the bins are 2/255 ≈ e^-4.8 wide)


def _log_sigmoid_difference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``log(σ(a) - σ(b))`` for ``a > b``, computed on the side of 0 where it does not cancel."""
    upper = (a + b) > 0  # σ(a) - σ(b) = σ(-b) - σ(-a): both arguments then below 0
    hi = torch.where(upper, -b, a)
    lo = torch.where(upper, -a, b)
    log_hi, log_lo = F.logsigmoid(hi), F.logsigmoid(lo)
    d = log_lo - log_hi  # <= 0
    log1mexp = torch.where(d > -0.6931, torch.log(-torch.expm1(d)), torch.log1p(-torch.exp(d)))
    return log_hi + log1mexp


def discretized_logistic_log_prob(x: torch.Tensor, logits: torch.Tensor, loc: torch.Tensor, log_scale: torch.Tensor,
                                  levels: int = 256) -> torch.Tensor:
    """``log P(x)`` elementwise for grey levels ``x`` (``k/(levels-1)``) and the mixture's parameters, each
    of ``x``'s shape plus a last dimension of ``K`` components (see the module docstring)."""
    delta = 1.0 / (levels - 1)
    y = (2 * x - 1).unsqueeze(-1)
    log_scale = log_scale.clamp(min=MIN_LOG_SCALE)
    inv = torch.exp(-log_scale)
    centred = y - loc
    plus, minus = inv * (centred + delta), inv * (centred - delta)
    mid = _log_sigmoid_difference(plus, minus)
    index = torch.round(x * (levels - 1)).unsqueeze(-1)
    lp = torch.where(index <= 0, F.logsigmoid(plus), torch.where(index >= levels - 1, F.logsigmoid(-minus), mid))
    return torch.logsumexp(lp + logits.log_softmax(-1), -1)


@torch.no_grad()
def discretized_logistic_sample(logits: torch.Tensor, loc: torch.Tensor, log_scale: torch.Tensor,
                                levels: int = 256, shape: Shape = ()) -> torch.Tensor:
    """Draws of the grey levels (``shape`` + the parameters' shape without their ``K``): a component by
    Gumbel-max, a logistic draw from it, clamped to ``[-1, 1]`` and rounded to the nearest level. Two
    ``torch.rand`` calls, in that order (so a sampler that calls it pixel by pixel is reproducible)."""
    logits, loc, log_scale = torch.broadcast_tensors(logits, loc, log_scale)
    u = torch.rand(shape + logits.shape, dtype=logits.dtype, device=logits.device).clamp(1e-10, 1 - 1e-7)
    k = (logits - (-u.log()).log()).argmax(-1, keepdim=True)
    mu = loc.expand(u.shape).gather(-1, k).squeeze(-1)
    s = log_scale.clamp(min=MIN_LOG_SCALE).expand(u.shape).gather(-1, k).squeeze(-1).exp()
    v = torch.rand(mu.shape, dtype=mu.dtype, device=mu.device).clamp(1e-5, 1 - 1e-5)
    y = (mu + s * (v.log() - torch.log1p(-v))).clamp(-1, 1)
    return torch.round((y + 1) / 2 * (levels - 1)) / (levels - 1)


def grey_level_error(owner: str, name: str, value: torch.Tensor, levels: int) -> SupportError | None:
    """The error for a ``value`` that is not made of grey levels ``k/(levels-1)`` in [0, 1] (None when it is),
    naming the distribution ``owner`` and the variable ``name``."""
    with torch.no_grad():
        v = value.detach()
        scaled = v * (levels - 1)
        bad = ~((v >= 0) & (v <= 1) & ((scaled - scaled.round()).abs() <= 1e-3))
        if not bool(bad.any()):
            return None
        return SupportError(
            f"{owner}: variable '{name}' must hold grey levels k/{levels - 1} in [0, 1] ({levels} levels); got "
            f"{v[bad].flatten()[:4].tolist()} ({int(bad.sum())} of {v.numel()} values outside)"
        )


class DiscretizedLogisticMixture(Family):
    """A mixture of ``K`` discretised logistics for each element (PixelCNN++'s likelihood), over grey levels
    ``k/(levels-1)`` in [0, 1]; the parameters ``logits``, ``loc`` (in [-1, 1] units) and ``log_scale`` carry
    the ``K`` components in a last dimension beyond the value's shape. A value off the grid raises
    :class:`~deepgm.errors.SupportError`. Draws are not differentiable.

    >>> p = DiscretizedLogisticMixture(var=["x"], logits=torch.zeros(1), loc=torch.zeros(1),
    ...                                log_scale=torch.full((1,), -3.0), levels=4)
    >>> mass = p.log_prob({"x": torch.tensor([1 / 3, 2 / 3])}).exp()  # the two middle bins, about 0 ± 2/3
    >>> round(float(mass.sum()), 4)  # hold all but the far tails of a logistic of scale e^-3
    1.0
    >>> p.log_prob({"x": torch.tensor([0.5])})
    Traceback (most recent call last):
    ...
    deepgm.errors.SupportError: DiscretizedLogisticMixture p(x): variable 'x' must hold grey levels k/3 in [0, 1] \
(4 levels); got [0.5] (1 of 1 values outside)
    """

    param_names = ("logits", "loc", "log_scale")
    alternatives = (("logits",), ("loc",), ("log_scale",))
    has_rsample = False
    value_support = constraints.unit_interval

    def __init__(self, var: Names = ("x",), cond_var: Names = (), name: str = "p", *,
                 logits: ParamValue = None, loc: ParamValue = None, log_scale: ParamValue = None,
                 levels: int = 256, features_shape: int | Sequence[int] | None = None, event_ndim: int | None = None,
                 net: nn.Module | None = None) -> None:
        if isinstance(levels, bool) or not isinstance(levels, int) or levels < 2:
            raise ParameterError(f"DiscretizedLogisticMixture '{name}': levels must be an int >= 2, got {levels!r}")
        super().__init__(var, cond_var, name, features_shape=features_shape,
                         event_ndim=event_ndim if event_ndim is not None or features_shape is not None or net else 0,
                         net=net, params={"logits": logits, "loc": loc, "log_scale": log_scale})
        self.levels = levels

    def _prepare_value(self, value: object, params: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return super()._prepare_value(value, {k: v[..., 0] if v.dim() else v for k, v in params.items()})

    def _check_value(self, value: torch.Tensor) -> None:
        err = grey_level_error(self.owner, self.var[0], value, self.levels)
        if err is not None:
            raise err
        super()._check_value(value)

    def _log_prob_value(self, params: Mapping[str, torch.Tensor], value: torch.Tensor) -> torch.Tensor:
        return discretized_logistic_log_prob(value, params["logits"], params["loc"], params["log_scale"], self.levels)

    def _draw_from(self, params: Mapping[str, torch.Tensor], shape: Shape, reparam: bool) -> torch.Tensor:
        return discretized_logistic_sample(params["logits"], params["loc"], params["log_scale"], self.levels, shape)
