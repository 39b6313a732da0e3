"""The parametric families: thin named-variable views of ``torch.distributions``.

Normal and Bernoulli, on every VAE's hot path, compute their log-density and draws with a few tensor
operations (the same formulas as ``torch.distributions``, which the tests check them against); the
others use ``torch.distributions`` directly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.distributions as td
import torch.nn.functional as F
from torch import nn
from torch.distributions import constraints

from deepgm.distributions.base import Shape
from deepgm.distributions.family import Family, ParamValue, finite
from deepgm.errors import ParameterError

__all__ = [
    "normal_log_density", "Normal", "Bernoulli", "Categorical", "RelaxedBernoulli", "RelaxedCategorical", "Laplace",
    "Beta", "Gamma", "Dirichlet", "Multinomial", "NormalMixture",
]

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
Names = Sequence[str] | str
Features = int | Sequence[int] | None


def normal_log_density(x: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor,
                       log_scale: torch.Tensor | None = None) -> torch.Tensor:
    """The Gaussian log-density ``log N(x; loc, scale²) = -(x-μ)²/(2σ²) - log σ - ½ log 2π``, elementwise
    (broadcasting); ``log_scale`` saves the logarithm when the caller has it. The one home of this formula.

    >>> float(normal_log_density(torch.tensor(0.0), torch.tensor(0.0), torch.tensor(1.0)))  # -½ log 2π
    -0.9189385175704956
    """
    return -((x - loc) ** 2) / (2 * scale**2) - (scale.log() if log_scale is None else log_scale) - _HALF_LOG_2PI


class Normal(Family):
    """``N(x; loc, scale²)`` elementwise: ``log p = -(x-μ)²/(2σ²) - log σ - ½ log 2π``.

    >>> p = Normal(var=["x"], loc=0.0, scale=1.0, features_shape=[2])
    >>> p.log_prob({"x": torch.zeros(3, 2)}).shape
    torch.Size([3])
    """

    torch_cls = td.Normal
    param_names = ("loc", "scale")
    alternatives = (("loc",), ("scale",))
    value_support = finite

    def __init__(self, var: Names = ("x",), cond_var: Names = (), name: str = "p", *,
                 loc: ParamValue = None, scale: ParamValue = None, features_shape: Features = None,
                 event_ndim: int | None = None, net: nn.Module | None = None) -> None:
        super().__init__(var, cond_var, name, features_shape=features_shape, event_ndim=event_ndim,
                         net=net, params={"loc": loc, "scale": scale})

    def _log_prob_value(self, params: Mapping[str, torch.Tensor], value: torch.Tensor) -> torch.Tensor:
        return normal_log_density(value, params["loc"], params["scale"])

    def _draw_from(self, params: Mapping[str, torch.Tensor], shape: Shape, reparam: bool) -> torch.Tensor:
        loc, scale = params["loc"], params["scale"]
        shape = shape + (loc.shape if loc.shape == scale.shape else torch.broadcast_shapes(loc.shape, scale.shape))
        eps = torch.randn(shape, dtype=loc.dtype, device=loc.device)
        z = loc + eps * scale
        return z if reparam else z.detach()


class Bernoulli(Family):
    """``Bern(x; p)`` elementwise, given ``probs`` or ``logits``; ``x`` may be any value in [0, 1]
    (the continuous relaxation ``x log p + (1-x) log(1-p)`` used for grey-level images).

    A value outside [0, 1] raises :class:`~deepgm.errors.SupportError` naming the variable. It is checked
    at every public ``log_prob(inputs)`` and at the first evaluation of an objective, not on every
    training step (the check costs a pass over the batch); integer and boolean values are converted
    to the parameters' dtype.
    """

    torch_cls = td.Bernoulli
    param_names = ("probs", "logits")
    alternatives = (("probs", "logits"),)
    has_rsample = False
    value_support = constraints.unit_interval

    def __init__(self, var: Names = ("x",), cond_var: Names = (), name: str = "p", *,
                 probs: ParamValue = None, logits: ParamValue = None, features_shape: Features = None,
                 event_ndim: int | None = None, net: nn.Module | None = None) -> None:
        super().__init__(var, cond_var, name, features_shape=features_shape, event_ndim=event_ndim,
                         net=net, params={"probs": probs, "logits": logits})

    def _log_prob_value(self, params: Mapping[str, torch.Tensor], value: torch.Tensor) -> torch.Tensor:
        logits = params.get("logits")
        if logits is None:
            return self.torch_dist(params).log_prob(value)
        if logits.shape != value.shape:
            logits, value = torch.broadcast_tensors(logits, value)
        return -F.binary_cross_entropy_with_logits(logits, value, reduction="none")

    def _draw_from(self, params: Mapping[str, torch.Tensor], shape: Shape, reparam: bool) -> torch.Tensor:
        logits = params.get("logits")
        probs = torch.sigmoid(logits) if logits is not None else params["probs"]
        with torch.no_grad():
            return torch.bernoulli(probs.expand(shape + probs.shape))


class Categorical(Family):
    """A categorical variable with values one-hot vectors (class indices are accepted too):
    ``log p(x) = Σ_k x_k log π_k``. Draws are one-hot and not differentiable."""

    torch_cls = td.OneHotCategorical
    param_names = ("probs", "logits")
    alternatives = (("probs", "logits"),)
    value_event_ndim = 1
    has_rsample = False

    def __init__(self, var: Names = ("x",), cond_var: Names = (), name: str = "p", *,
                 probs: ParamValue = None, logits: ParamValue = None, features_shape: Features = None,
                 event_ndim: int | None = None, net: nn.Module | None = None) -> None:
        super().__init__(var, cond_var, name, features_shape=features_shape, event_ndim=event_ndim,
                         net=net, params={"probs": probs, "logits": logits})

    def _prepare_value(self, value: object, params: Mapping[str, torch.Tensor]) -> torch.Tensor:
        if torch.is_tensor(value) and not value.is_floating_point():
            k = next(iter(params.values())).shape[-1]
            if value.numel() and (int(value.min()) < 0 or int(value.max()) >= k):
                raise ParameterError(f"{self.owner}: class indices of '{self.var[0]}' must lie in [0, {k})")
            value = F.one_hot(value, k).to(next(iter(params.values())).dtype)
        return super()._prepare_value(value, params)


class _Relaxed(Family):
    """Shared by the Gumbel-softmax relaxations: an optional straight-through estimator."""

    straight_through: bool

    def _hard(self, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _draw_from(self, params: Mapping[str, torch.Tensor], shape: Shape, reparam: bool) -> torch.Tensor:
        y = super()._draw_from(params, shape, reparam)
        if self.straight_through:
            return self._hard(y) - y.detach() + y  # this order is exactly 0/1 in floating point
        return y

    def _log_prob_value(self, params: Mapping[str, torch.Tensor], value: torch.Tensor) -> torch.Tensor:
        eps = torch.finfo(value.dtype).tiny
        return self.torch_dist(params).log_prob(value.clamp(eps, 1 - 1e-7))


class RelaxedBernoulli(_Relaxed):
    """The binary Concrete (Gumbel-sigmoid) distribution at ``temperature``; its log-prob is the relaxed
    density. ``straight_through=True`` draws hard 0/1 values with the relaxed gradient."""

    torch_cls = td.RelaxedBernoulli
    param_names = ("temperature", "probs", "logits")
    alternatives = (("temperature",), ("probs", "logits"))
    value_support = constraints.unit_interval

    def __init__(self, var: Names = ("x",), cond_var: Names = (), name: str = "p", *,
                 temperature: ParamValue = 0.5, probs: ParamValue = None, logits: ParamValue = None,
                 straight_through: bool = False, features_shape: Features = None,
                 event_ndim: int | None = None, net: nn.Module | None = None) -> None:
        super().__init__(var, cond_var, name, features_shape=features_shape, event_ndim=event_ndim,
                         net=net, params={"temperature": temperature, "probs": probs, "logits": logits})
        self.straight_through = straight_through

    def _hard(self, y: torch.Tensor) -> torch.Tensor:
        return (y > 0.5).to(y.dtype)


class RelaxedCategorical(_Relaxed):
    """The Concrete / Gumbel-softmax distribution over the simplex at ``temperature``; its log-prob is
    the relaxed density. ``straight_through=True`` draws one-hot vectors with the relaxed gradient."""

    torch_cls = td.RelaxedOneHotCategorical
    param_names = ("temperature", "probs", "logits")
    alternatives = (("temperature",), ("probs", "logits"))
    value_event_ndim = 1

    def __init__(self, var: Names = ("x",), cond_var: Names = (), name: str = "p", *,
                 temperature: ParamValue = 0.5, probs: ParamValue = None, logits: ParamValue = None,
                 straight_through: bool = False, features_shape: Features = None,
                 event_ndim: int | None = None, net: nn.Module | None = None) -> None:
        super().__init__(var, cond_var, name, features_shape=features_shape, event_ndim=event_ndim,
                         net=net, params={"temperature": temperature, "probs": probs, "logits": logits})
        self.straight_through = straight_through

    def _hard(self, y: torch.Tensor) -> torch.Tensor:
        return F.one_hot(y.argmax(-1), y.shape[-1]).to(y.dtype)


class Laplace(Family):
    """``Laplace(x; loc, scale)`` elementwise: ``log p = -|x-μ|/b - log 2b``."""

    torch_cls = td.Laplace
    param_names = ("loc", "scale")
    alternatives = (("loc",), ("scale",))
    value_support = finite

    def __init__(self, var: Names = ("x",), cond_var: Names = (), name: str = "p", *,
                 loc: ParamValue = None, scale: ParamValue = None, features_shape: Features = None,
                 event_ndim: int | None = None, net: nn.Module | None = None) -> None:
        super().__init__(var, cond_var, name, features_shape=features_shape, event_ndim=event_ndim,
                         net=net, params={"loc": loc, "scale": scale})


class Beta(Family):
    """``Beta(x; α=concentration1, β=concentration0)`` elementwise."""

    torch_cls = td.Beta
    param_names = ("concentration1", "concentration0")
    alternatives = (("concentration1",), ("concentration0",))
    value_support = constraints.unit_interval

    def __init__(self, var: Names = ("x",), cond_var: Names = (), name: str = "p", *,
                 concentration1: ParamValue = None, concentration0: ParamValue = None,
                 features_shape: Features = None, event_ndim: int | None = None,
                 net: nn.Module | None = None) -> None:
        super().__init__(var, cond_var, name, features_shape=features_shape, event_ndim=event_ndim,
                         net=net, params={"concentration1": concentration1, "concentration0": concentration0})


class Gamma(Family):
    """``Gamma(x; concentration k, rate θ⁻¹)`` elementwise."""

    torch_cls = td.Gamma
    param_names = ("concentration", "rate")
    alternatives = (("concentration",), ("rate",))
    value_support = constraints.nonnegative

    def __init__(self, var: Names = ("x",), cond_var: Names = (), name: str = "p", *,
                 concentration: ParamValue = None, rate: ParamValue = None, features_shape: Features = None,
                 event_ndim: int | None = None, net: nn.Module | None = None) -> None:
        super().__init__(var, cond_var, name, features_shape=features_shape, event_ndim=event_ndim,
                         net=net, params={"concentration": concentration, "rate": rate})


class Dirichlet(Family):
    """``Dir(x; α)`` over the simplex (the last dimension)."""

    torch_cls = td.Dirichlet
    param_names = ("concentration",)
    alternatives = (("concentration",),)
    value_event_ndim = 1

    def __init__(self, var: Names = ("x",), cond_var: Names = (), name: str = "p", *,
                 concentration: ParamValue = None, features_shape: Features = None,
                 event_ndim: int | None = None, net: nn.Module | None = None) -> None:
        super().__init__(var, cond_var, name, features_shape=features_shape, event_ndim=event_ndim,
                         net=net, params={"concentration": concentration})


class Multinomial(Family):
    """Counts of ``total_count`` draws over categories: ``log p(x) = log n! - Σ log x_k! + Σ x_k log π_k``.

    Draws have exactly ``total_count`` counts, and a value whose counts do not sum to ``total_count``
    has log-probability ``-inf``.
    """

    torch_cls = td.Multinomial
    param_names = ("probs", "logits")
    alternatives = (("probs", "logits"),)
    value_event_ndim = 1
    has_rsample = False

    def __init__(self, var: Names = ("x",), cond_var: Names = (), name: str = "p", *,
                 total_count: int = 1, probs: ParamValue = None, logits: ParamValue = None,
                 features_shape: Features = None, event_ndim: int | None = None,
                 net: nn.Module | None = None) -> None:
        super().__init__(var, cond_var, name, features_shape=features_shape, event_ndim=event_ndim,
                         net=net, params={"probs": probs, "logits": logits})
        if not isinstance(total_count, int) or isinstance(total_count, bool) or total_count < 0:
            raise ParameterError(f"{self.owner}: total_count must be a non-negative int, got {total_count!r}")
        self.total_count = total_count

    def torch_dist(self, params: Mapping[str, torch.Tensor]) -> td.Distribution:
        return td.Multinomial(self.total_count, **params, validate_args=False)

    def _log_prob_value(self, params: Mapping[str, torch.Tensor], value: torch.Tensor) -> torch.Tensor:
        lp = self.torch_dist(params).log_prob(value)
        wrong = (value.sum(-1) - self.total_count).abs() > 1e-6
        return lp.masked_fill(wrong, -math.inf)


class _NormalMixtureTorch(td.MixtureSameFamily):
    """``torch.distributions``' mixture of K Normals per element, from ``logits``/``loc``/``scale``
    ``(..., K)``; its argument constraints are those the family checks."""

    arg_constraints = {"logits": constraints.real, "loc": constraints.real, "scale": constraints.positive}

    def __init__(self, logits: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor,
                 validate_args: bool | None = None) -> None:
        super().__init__(td.Categorical(logits=logits), td.Normal(loc, scale), validate_args=validate_args)


class NormalMixture(Family):
    """A mixture of K Normals for each element (the mixture-density network's likelihood, Bishop 1994, as
    World Models' M uses it per latent dimension):
    ``log p(x) = log Σ_k π_k N(x; μ_k, σ_k²)`` with ``π = softmax(logits)``; the parameters carry the K
    components in a last dimension beyond the value's shape. :meth:`tempered` gives the parameters at a
    sampling temperature τ (``logits/τ``, ``σ·√τ``, as Ha & Schmidhuber's dreams). Draws are not
    differentiable.

    >>> p = NormalMixture(var=["x"], logits=torch.zeros(2), loc=torch.tensor([-1.0, 1.0]), scale=0.5)
    >>> round(float(p.log_prob({"x": torch.tensor([1.0])})), 4)  # log(½ N(1; -1, ¼) + ½ N(1; 1, ¼))
    -0.9186
    """

    torch_cls = _NormalMixtureTorch
    param_names = ("logits", "loc", "scale")
    alternatives = (("logits",), ("loc",), ("scale",))
    has_rsample = False
    value_support = finite

    def __init__(self, var: Names = ("x",), cond_var: Names = (), name: str = "p", *,
                 logits: ParamValue = None, loc: ParamValue = None, scale: ParamValue = None,
                 features_shape: Features = None, event_ndim: int | None = None,
                 net: nn.Module | None = None) -> None:
        super().__init__(var, cond_var, name, features_shape=features_shape,
                         event_ndim=event_ndim if event_ndim is not None or features_shape is not None or net else 0,
                         net=net, params={"logits": logits, "loc": loc, "scale": scale})

    def _prepare_value(self, value: object, params: Mapping[str, torch.Tensor]) -> torch.Tensor:
        # the value's event shape is checked against the parameters' without their components' dimension
        return super()._prepare_value(value, {k: v[..., 0] if v.dim() else v for k, v in params.items()})

    def _log_prob_value(self, params: Mapping[str, torch.Tensor], value: torch.Tensor) -> torch.Tensor:
        loc, scale = params["loc"], params["scale"]
        lp = normal_log_density(value.unsqueeze(-1), loc, scale) + params["logits"].log_softmax(-1)
        return lp.logsumexp(-1)

    def _draw_from(self, params: Mapping[str, torch.Tensor], shape: Shape, reparam: bool) -> torch.Tensor:
        logits, loc, scale = torch.broadcast_tensors(params["logits"], params["loc"], params["scale"])
        with torch.no_grad():
            u = torch.rand(shape + logits.shape, dtype=logits.dtype, device=logits.device)
            k = (logits - (-u.log()).log()).argmax(-1, keepdim=True)  # Gumbel-max: k ~ softmax(logits)
            mu, sigma = loc.expand(u.shape).gather(-1, k), scale.expand(u.shape).gather(-1, k)
            out: torch.Tensor = (mu + sigma * torch.randn_like(mu)).squeeze(-1)
            return out

    @staticmethod
    def tempered(params: Mapping[str, torch.Tensor], temperature: float) -> dict[str, torch.Tensor]:
        """The parameters at sampling temperature τ > 0: ``logits/τ`` and ``scale·√τ`` (τ = 1: unchanged)."""
        if not temperature > 0:
            raise ParameterError(f"NormalMixture: temperature must be > 0, got {temperature!r}")
        return {"logits": params["logits"] / temperature, "loc": params["loc"],
                "scale": params["scale"] * math.sqrt(temperature)}

    def mixture_mean(self, params: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``Σ_k π_k μ_k`` elementwise."""
        return (params["logits"].softmax(-1) * params["loc"]).sum(-1)
