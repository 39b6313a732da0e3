"""Distributions beyond single parametric families: point masses, data, mixtures, products of experts,
and a wrapper for any ``torch.distributions`` object."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import torch
import torch.distributions as td
from torch import nn

from deepgm.distributions.base import Binding, Distribution, Shape
from deepgm.distributions.env import Env
from deepgm.distributions.families import Normal, normal_log_density
from deepgm.distributions.family import Family, ParamValue
from deepgm.errors import DeepGMError, ParameterError

__all__ = [
    "Deterministic", "Empirical", "MixtureOfNormal", "ProductOfNormal", "MixtureOfExperts", "FromTorch",
]

class Deterministic(Family):
    """A point mass ``δ(x - f(cond))``: draws return ``loc`` (e.g. an RNN state). It has no density; in a
    joint it adds nothing to the log-probability."""

    param_names = ("loc",)
    alternatives = (("loc",),)
    has_density = False

    def __init__(self, var: Sequence[str] | str = ("x",), cond_var: Sequence[str] | str = (),
                 name: str = "p", *, loc: ParamValue = None, features_shape: int | Sequence[int] | None = None,
                 event_ndim: int | None = None, net: nn.Module | None = None) -> None:
        super().__init__(var, cond_var, name, features_shape=features_shape, event_ndim=event_ndim,
                         net=net, params={"loc": loc})

    def torch_dist(self, params: Mapping[str, torch.Tensor]) -> td.Distribution:
        raise DeepGMError(f"{self.owner} is a point mass: it has no torch distribution")

    def _draw_from(self, params: Mapping[str, torch.Tensor], shape: Shape, reparam: bool) -> torch.Tensor:
        loc = params["loc"]
        return loc.expand(shape + loc.shape) if shape else loc

    def log_prob_at(self, env: Env, detach_params: bool = False) -> torch.Tensor:
        raise DeepGMError(f"{self.owner} is a point mass and has no log-density")

    def mean(self, inputs: Mapping[str, Any] | None = None) -> torch.Tensor:
        return self.params(inputs)["loc"]


class Empirical(Distribution):
    """The data distribution ``p_data(x)``: with ``data`` it draws rows of ``data`` uniformly; without,
    it stands for the data given in the inputs (sampling returns them unchanged). No density."""

    has_density = False

    def __init__(self, var: Sequence[str] | str = ("x",), name: str = "p_{data}",
                 data: torch.Tensor | None = None) -> None:
        super().__init__(var, (), name)
        if len(self.var) != 1:
            raise ValueError(f"{self.owner}: is over exactly one variable, got {self.var}")
        self.data: torch.Tensor | None
        if data is not None:
            self.register_buffer("data", torch.as_tensor(data))
        else:
            self.data = None
            self._key_t = tuple(self.var)  # it stands for its variable's given value: a draw is that value

    def new_bindings(
        self, env: Env, sample_shape: Shape, batch_n: int | None, reparam: bool
    ) -> tuple[Binding, ...]:
        if self.data is None:
            x = self.var[0]
            return ((x, env.values[x], env.sdims.get(x, 0), env.versions[x]),)
        return super().new_bindings(env, sample_shape, batch_n, reparam)

    def new_draw(
        self, env: Env, sample_shape: Shape, batch_n: int | None, reparam: bool
    ) -> tuple[torch.Tensor, int]:
        data = self.data
        assert data is not None
        shape = sample_shape + ((batch_n,) if batch_n else ())
        idx = torch.randint(len(data), shape, device=data.device)
        return data[idx], len(sample_shape)

    def replace_var(self, **mapping: str) -> Empirical:
        return self._renamed(mapping)


class MixtureOfNormal(Distribution):
    """``p(x) = Σ_k π_k N(x; μ_k, diag σ_k²)`` with ``loc``/``scale`` of shape ``(K, D)`` and mixing
    ``logits`` or ``probs`` of shape ``(K,)``. ``learnable=True`` makes μ, log σ and the logits parameters
    (a Gaussian-mixture prior learned with the model). ``posterior`` gives ``p(k|x)``."""

    loc: torch.Tensor
    log_scale: torch.Tensor
    logits: torch.Tensor

    def __init__(self, var: Sequence[str] | str = ("x",), name: str = "p", *, loc: torch.Tensor,
                 scale: torch.Tensor | float = 1.0, logits: torch.Tensor | None = None,
                 probs: torch.Tensor | None = None, learnable: bool = False) -> None:
        super().__init__(var, (), name)
        loc = torch.as_tensor(loc, dtype=torch.get_default_dtype())
        if loc.dim() != 2:
            raise ValueError(f"{self.owner}: loc must have shape (K, D), got {tuple(loc.shape)}")
        scale = torch.as_tensor(scale, dtype=loc.dtype).expand_as(loc).clone()
        for n, t in (("loc", loc), ("scale", scale)):
            if not bool(torch.isfinite(t).all()):
                raise ParameterError(f"{self.owner}: {n} must be finite, got {t[~torch.isfinite(t)][:4].tolist()}")
        if not bool((scale > 0).all()):
            raise ParameterError(f"{self.owner}: scale must be > 0")
        k = loc.shape[0]
        if logits is None:
            if probs is None:
                logits = torch.zeros(k)
            else:
                probs = torch.as_tensor(probs, dtype=loc.dtype)
                if bool((probs < 0).any()) or abs(float(probs.sum()) - 1) > 1e-5:
                    raise ParameterError(f"{self.owner}: probs must be a probability vector")
                logits = probs.log()
        logits = torch.as_tensor(logits, dtype=loc.dtype)
        if logits.shape != (k,):
            raise ValueError(f"{self.owner}: logits must have shape ({k},), got {tuple(logits.shape)}")
        tensors = {"loc": loc, "log_scale": scale.log(), "logits": logits}
        for n, t in tensors.items():
            if learnable:
                self.register_parameter(n, nn.Parameter(t.clone()))
            else:
                self.register_buffer(n, t.clone())

    @property
    def n_components(self) -> int:
        """The number of mixture components K."""
        return int(self.loc.shape[0])

    def _component_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``log π_k + log N(x; μ_k, σ_k²)`` with shape ``x.shape[:-1] + (K,)``."""
        log_scale = self.log_scale
        lp = normal_log_density(x.unsqueeze(-2), self.loc, log_scale.exp(), log_scale).sum(-1)
        return lp + self.logits.log_softmax(-1)

    def log_prob_at(self, env: Env, detach_params: bool = False) -> torch.Tensor:
        return self._component_log_prob(env.get(self.var[0], self)).logsumexp(-1)

    def posterior(self, inputs: Mapping[str, Any]) -> torch.Tensor:
        """The responsibilities ``p(k|x) = π_k N(x; μ_k, σ_k²) / p(x)``, shape ``(..., K)``."""
        return self._component_log_prob(Env(inputs, self).get(self.var[0], self.owner)).softmax(-1)

    def new_draw(
        self, env: Env, sample_shape: Shape, batch_n: int | None, reparam: bool
    ) -> tuple[torch.Tensor, int]:
        shape = sample_shape + ((batch_n,) if batch_n else ())
        k = torch.multinomial(self.logits.softmax(-1), max(math.prod(shape), 1), replacement=True)
        k = k.reshape(shape)
        eps = torch.randn(shape + (self.loc.shape[1],), dtype=self.loc.dtype, device=self.loc.device)
        x = self.loc[k] + eps * self.log_scale.exp()[k]
        return (x if reparam else x.detach()), len(sample_shape)

    def replace_var(self, **mapping: str) -> MixtureOfNormal:
        return self._renamed(mapping)


def _expert_list(modules: nn.ModuleList) -> list[Normal]:
    return [cast(Normal, m) for m in modules]


def _check_experts(experts: Sequence[Normal], owner: str) -> list[Normal]:
    experts = list(experts)
    if not experts:
        raise ValueError(f"{owner}: needs at least one expert")
    var = experts[0].var
    for e in experts:
        if not isinstance(e, Normal):
            raise TypeError(f"{owner}: experts must be Normal distributions, got {type(e).__name__}")
        if e.var != var:
            raise ValueError(f"{owner}: all experts must be over {var}; {e.prob_text} is not")
    return experts


class ProductOfNormal(Normal):
    """The product of Gaussian experts ``q(z|x,y) ∝ p(z) q(z|x) q(z|y)`` (MVAE): precisions add,
    ``T = Σ_i σ_i⁻²``, ``μ = T⁻¹ Σ_i μ_i σ_i⁻²``. Experts whose conditions are missing from the inputs
    are left out, so ``q(z|x)`` of a missing ``y`` is the same module; with ``prior_expert`` the N(0, I)
    expert is always included (``features_shape`` then gives z's shape; alone, it takes the dtype and
    device of the experts' parameters)."""

    optional_conditions = True

    def __init__(self, experts: Sequence[Normal], name: str = "q", prior_expert: bool = True,
                 features_shape: int | Sequence[int] | None = None) -> None:
        experts = _check_experts(experts, f"ProductOfNormal '{name}'")
        cond: list[str] = []
        for e in experts:
            cond.extend(c for c in e.cond_var if c not in cond)
        super().__init__(experts[0].var, cond, name, net=nn.ModuleList(experts),
                         features_shape=features_shape, event_ndim=experts[0].event_ndim)
        self.prior_expert = prior_expert

    @property
    def experts(self) -> list[Normal]:
        """The Gaussian experts whose product this is."""
        assert isinstance(self.net, nn.ModuleList)
        return _expert_list(self.net)

    def _check_inputs(self, env: Env, with_var: bool = False) -> None:
        if with_var:
            env.get(self.var[0], self)

    def compute_params(self, env: Env) -> dict[str, torch.Tensor]:
        present = [e for e in self.experts if all(c in env.values for c in e.cond_var)]
        if not present and not self.prior_expert:
            raise DeepGMError(f"{self.owner}: no expert's conditions {self.cond_var} are in the inputs")
        precision: torch.Tensor | None = None
        weighted: torch.Tensor | None = None
        for e in present:
            p = e.params_at(env)
            t = p["scale"] ** -2
            precision = t if precision is None else precision + t
            weighted = p["loc"] * t if weighted is None else weighted + p["loc"] * t
        if self.prior_expert:
            if precision is None or weighted is None:
                shape = self.features_shape or ()
                ref: torch.Tensor | None = next(iter(self.parameters()), None)
                if ref is None:
                    ref = next(iter(self.buffers()), None)
                dtype, device = (ref.dtype, ref.device) if ref is not None else (None, None)
                return {"loc": torch.zeros(shape, dtype=dtype, device=device),
                        "scale": torch.ones(shape, dtype=dtype, device=device)}
            precision = precision + 1.0
        assert precision is not None and weighted is not None
        return {"loc": weighted / precision, "scale": precision.rsqrt()}


class MixtureOfExperts(Distribution):
    """The mixture of experts ``q(z|x,y) = (1/M) Σ_m q_m(z|x_m)`` (MMVAE) over the experts whose
    conditions are present. A draw picks an expert uniformly per data point and draws from it
    (reparameterised within the expert); ``log_prob`` is ``logsumexp_m log q_m(z|x_m) - log M``."""

    optional_conditions = True
    experts: nn.ModuleList

    def __init__(self, experts: Sequence[Normal], name: str = "q") -> None:
        experts = _check_experts(experts, f"MixtureOfExperts '{name}'")
        cond: list[str] = []
        for e in experts:
            cond.extend(c for c in e.cond_var if c not in cond)
        super().__init__(experts[0].var, cond, name)
        self.experts = nn.ModuleList(experts)

    def _present(self, env: Env) -> list[Normal]:
        present = [e for e in _expert_list(self.experts) if all(c in env.values for c in e.cond_var)]
        if not present:
            raise DeepGMError(f"{self.owner}: no expert's conditions {self.cond_var} are in the inputs")
        return present

    def _check_inputs(self, env: Env, with_var: bool = False) -> None:
        self._present(env)
        if with_var:
            env.get(self.var[0], self)

    def new_draw(
        self, env: Env, sample_shape: Shape, batch_n: int | None, reparam: bool
    ) -> tuple[torch.Tensor, int]:
        present = self._present(env)
        draws: list[torch.Tensor] = []
        sd = 0
        for e in present:
            scope = env.child()
            e.draw_into(scope, sample_shape, batch_n, reparam)
            draws.append(scope.values[self.var[0]])
            sd = max(sd, scope.sdims.get(self.var[0], 0))
        stacked = torch.stack(torch.broadcast_tensors(*draws))  # (M, ..., D)
        ne = present[0].event_ndim
        choice = torch.randint(len(present), stacked.shape[1: stacked.dim() - ne], device=stacked.device)
        pick = torch.nn.functional.one_hot(choice, len(present)).movedim(-1, 0).to(stacked.dtype)
        z = (stacked * pick.reshape(pick.shape + (1,) * ne)).sum(0)
        return z, sd

    def log_prob_at(self, env: Env, detach_params: bool = False) -> torch.Tensor:
        present = self._present(env)
        lps = torch.stack(torch.broadcast_tensors(*[e.log_prob_at(env, detach_params) for e in present]))
        return lps.logsumexp(0) - math.log(len(present))

    def replace_var(self, **mapping: str) -> MixtureOfExperts:
        self._check_mapping(mapping)
        return MixtureOfExperts([cast(Normal, e.replace_var(**{k: v for k, v in mapping.items()
                                                               if k in e.var + e.cond_var}))
                                 for e in _expert_list(self.experts)], self.name)


class FromTorch(Distribution):
    """Any ``torch.distributions`` object over one named variable: ``fn(*conditions)`` returns it
    (a module or a callable). ``event_ndim`` trailing dimensions of its batch shape are summed in
    ``log_prob`` besides its own event dimensions.

    >>> p = FromTorch(["x"], fn=lambda: td.StudentT(3.0, torch.zeros(2), torch.ones(2)), event_ndim=1)
    >>> p.log_prob({"x": torch.zeros(5, 2)}).shape
    torch.Size([5])
    """

    def __init__(self, var: Sequence[str] | str, cond_var: Sequence[str] | str = (), name: str = "p", *,
                 fn: Callable[..., td.Distribution], event_ndim: int = 0) -> None:
        super().__init__(var, cond_var, name)
        if len(self.var) != 1:
            raise ValueError(f"{self.owner}: is over exactly one variable, got {self.var}")
        self.fn = fn
        self.event_ndim = event_ndim

    def compute_params(self, env: Env) -> td.Distribution:
        """The torch distribution ``fn(*conditions)`` (read it through ``memo_params``)."""
        d = self.fn(*[env.values[c] for c in self.cond_var])
        if not isinstance(d, td.Distribution):
            raise TypeError(f"{self.owner}: fn must return a torch Distribution, got {type(d).__name__}")
        return d

    def dist_at(self, env: Env) -> td.Distribution:
        """The torch distribution at the conditions in ``env``, made once per evaluation."""
        d: td.Distribution = self.memo_params(env)
        return d

    def dist(self, inputs: Mapping[str, Any] | None = None) -> td.Distribution:
        """The torch distribution at the conditioning ``inputs``."""
        return self.dist_at(Env(inputs, self))

    def new_draw(
        self, env: Env, sample_shape: Shape, batch_n: int | None, reparam: bool
    ) -> tuple[torch.Tensor, int]:
        d = self.dist_at(env)
        shape = sample_shape + ((batch_n,) if batch_n and not self.cond_var else ())
        x = d.rsample(shape) if reparam and d.has_rsample else d.sample(shape)
        base = max([env.sdims.get(c, 0) for c in self.cond_var], default=0)
        return x, base + len(sample_shape)

    def log_prob_at(self, env: Env, detach_params: bool = False) -> torch.Tensor:
        lp = self.dist_at(env).log_prob(env.get(self.var[0], self))
        return lp.sum(tuple(range(-self.event_ndim, 0))) if self.event_ndim else lp

    def replace_var(self, **mapping: str) -> FromTorch:
        return self._renamed(mapping)
