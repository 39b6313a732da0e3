"""A Gaussian discretised to ``levels`` evenly spaced values: the likelihood of 8-bit images in DDPM's
decoder ``p(x_0|x_1)`` (Ho et al. 2020, eq. 13).

The values are ``low + k (high - low)/(levels - 1)`` for ``k = 0, ..., levels - 1``. Each value owns the
interval of half a step on either side, except the first and last, whose intervals extend to ``-∞`` and
``+∞``; its probability is the Gaussian ``N(loc, scale²)``'s mass over that interval, so the
probabilities of the ``levels`` values sum to one whatever ``loc`` and ``scale``. ``log_prob`` is a
log-probability (of a discrete value), so a bound on it in bits/dim compares with other discrete models'.

>>> import torch
>>> p = DiscretizedNormal(var=["x"], loc=torch.zeros(1), scale=torch.ones(1), levels=4, low=-1.0, high=1.0)
>>> grid = torch.linspace(-1, 1, 4).reshape(4, 1)
>>> probs = p.log_prob({"x": grid}).exp()
>>> [round(v, 4) for v in probs.tolist()]  # Φ(-2/3), Φ(0) - Φ(-2/3), ...
[0.2525, 0.2475, 0.2475, 0.2525]
>>> round(float(probs.sum()), 6)
1.0
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.distributions as td
from torch import nn
from torch.distributions import constraints

from deepgm.distributions.base import Shape
from deepgm.distributions.families import normal_log_density
from deepgm.distributions.family import Family, ParamValue, finite
from deepgm.errors import ParameterError, SupportError

__all__ = ["DiscretizedNormal", "discretized_normal_log_prob"]


def discretized_normal_log_prob(value: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor, levels: int,
                                low: float, high: float) -> torch.Tensor:
    """``log P(value)`` elementwise for the Gaussian ``N(loc, scale²)`` discretised to ``levels`` values in
    ``[low, high]`` (see the module docstring); ``value`` is snapped to the nearest level.

    The edge intervals use ``log Φ`` directly; an inner interval's mass is taken from the nearer tail
    (``Φ(u) - Φ(l)`` or ``Φ(-l) - Φ(-u)``), and where it underflows, from the density at the level times
    the step (the interval is then far in a tail and the density nearly constant over it).
    """
    step = (high - low) / (levels - 1)
    k = ((value - low) / step).round().clamp(0, levels - 1)
    centre = low + k * step
    upper = (centre + step / 2 - loc) / scale
    lower = (centre - step / 2 - loc) / scale
    ndtr, log_ndtr = torch.special.ndtr, torch.special.log_ndtr
    mass = torch.where(lower > 0, ndtr(-lower) - ndtr(-upper), ndtr(upper) - ndtr(lower))
    tiny = 1e-12
    log_density = normal_log_density(centre, loc, scale) + math.log(step)
    inner = torch.where(mass > tiny, mass.clamp_min(tiny).log(), log_density)
    first, last = k == 0, k == levels - 1
    return torch.where(first, log_ndtr(upper), torch.where(last, log_ndtr(-lower), inner))


class _DiscretizedNormalTorch(td.Distribution):
    """The ``torch.distributions`` form (no analytic KL with anything: torch's registry does not know it)."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    has_rsample = False

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor, levels: int = 256, low: float = -1.0,
                 high: float = 1.0, validate_args: bool | None = None) -> None:
        self.loc, self.scale = torch.broadcast_tensors(torch.as_tensor(loc), torch.as_tensor(scale))
        self.levels, self.low, self.high = levels, low, high
        super().__init__(self.loc.shape, validate_args=validate_args)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        return discretized_normal_log_prob(value, self.loc, self.scale, self.levels, self.low, self.high)

    def sample(self, sample_shape: torch.Size | Sequence[int] = torch.Size()) -> torch.Tensor:
        with torch.no_grad():
            shape = torch.Size(sample_shape) + self.loc.shape
            x = self.loc + self.scale * torch.randn(shape, dtype=self.loc.dtype, device=self.loc.device)
            step = (self.high - self.low) / (self.levels - 1)
            k: torch.Tensor = ((x - self.low) / step).round().clamp(0, self.levels - 1)
            return self.low + k * step

    @property
    def mean(self) -> torch.Tensor:
        """The mean over the levels (computed by summing over all of them)."""
        grid = torch.linspace(self.low, self.high, self.levels, dtype=self.loc.dtype, device=self.loc.device)
        grid = grid.reshape((self.levels,) + (1,) * self.loc.dim())
        out: torch.Tensor = (self.log_prob(grid.expand((self.levels,) + self.loc.shape)).exp() * grid).sum(0)
        return out


class DiscretizedNormal(Family):
    """``P(x = v_k) = ∫_{v_k - δ/2}^{v_k + δ/2} N(u; loc, scale²) du`` over the ``levels`` values ``v_k``
    of ``[low, high]`` (step ``δ``; the two end intervals unbounded), elementwise. Values outside
    ``[low, high]`` are refused (:class:`~deepgm.errors.SupportError`); values between levels are scored
    as the nearest level. Draws are rounded Gaussian draws, not differentiable."""

    torch_cls = _DiscretizedNormalTorch
    param_names = ("loc", "scale")
    alternatives = (("loc",), ("scale",))
    has_rsample = False
    value_support = finite  # and within [low, high]: _check_value

    def __init__(self, var: Sequence[str] | str = ("x",), cond_var: Sequence[str] | str = (), name: str = "p",
                 *, loc: ParamValue = None, scale: ParamValue = None, levels: int = 256, low: float = -1.0,
                 high: float = 1.0, features_shape: int | Sequence[int] | None = None,
                 event_ndim: int | None = None, net: nn.Module | None = None) -> None:
        if isinstance(levels, bool) or not isinstance(levels, int) or levels < 2:
            raise ParameterError(f"DiscretizedNormal '{name}': levels must be an integer of at least 2, "
                                 f"got {levels!r}")
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ParameterError(f"DiscretizedNormal '{name}': needs finite low < high, got low={low}, high={high}")
        self.levels, self.low, self.high = levels, float(low), float(high)
        super().__init__(var, cond_var, name, features_shape=features_shape, event_ndim=event_ndim, net=net,
                         params={"loc": loc, "scale": scale})
        self._values_checked = False

    def _check_value(self, value: torch.Tensor) -> None:
        """Refuse values outside ``[low, high]`` (or NaN), naming the variable (when Family checks values)."""
        with torch.no_grad():
            bad = ~((value >= self.low) & (value <= self.high))
            if bool(bad.any()):
                raise SupportError(f"{self.owner}: variable '{self.var[0]}' must lie in [{self.low:g}, {self.high:g}]; "
                                   f"got {value[bad].flatten()[:4].tolist()} ({int(bad.sum())} of {value.numel()} "
                                   f"values outside)")
        self._values_checked = True

    def torch_dist(self, params: Mapping[str, torch.Tensor]) -> td.Distribution:
        return _DiscretizedNormalTorch(params["loc"], params["scale"], self.levels, self.low, self.high)

    def _log_prob_value(self, params: Mapping[str, torch.Tensor], value: torch.Tensor) -> torch.Tensor:
        return discretized_normal_log_prob(value, params["loc"], params["scale"], self.levels, self.low, self.high)

    def _draw_from(self, params: Mapping[str, torch.Tensor], shape: Shape, reparam: bool) -> torch.Tensor:
        return self.torch_dist(params).sample(shape)
