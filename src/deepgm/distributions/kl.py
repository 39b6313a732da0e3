"""Analytic Kullback-Leibler divergences between two families: which pairs have one, and its value.

``has_analytic_kl(p, q)`` says whether ``D_KL[p||q]`` has a closed form; ``analytic_kl_fn(p, q)`` returns
the function of an :class:`~deepgm.distributions.env.Env` that computes it, summed over the event
dimensions. Two pairs have formulas of their own, on every VAE's hot path: a Normal against the constant
standard normal ``N(0, I)`` and a Normal against a Normal. Every other pair uses torch's KL registry.

Which pairs torch knows is found through its public API only: ``torch.distributions.kl_divergence`` is
tried once on two tiny instances of the pair's torch classes (their parameters built from each
parameter's constraint by ``torch.distributions.biject_to``) and the answer is cached per pair of deepgm
classes; ``NotImplementedError`` (or an instance that cannot be built) means no closed form. A KL
registered with ``torch.distributions.register_kl`` is therefore seen if it is registered before the
first objective that asks for that pair is built.

>>> import torch
>>> from deepgm.distributions import Env, Normal
>>> q = Normal(var=["z"], loc=torch.ones(2), scale=torch.ones(2))
>>> prior = Normal(var=["z"], loc=0.0, scale=1.0, features_shape=[2])
>>> has_analytic_kl(q, prior), is_standard_normal(prior)
(True, True)
>>> float(analytic_kl(q, prior, Env()))  # ½ μ² summed over two dimensions
1.0
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.distributions as td
from torch.distributions import constraints

from deepgm.distributions.base import Distribution
from deepgm.distributions.env import Env
from deepgm.distributions.families import Normal
from deepgm.distributions.family import Family

__all__ = [
    "has_analytic_kl", "analytic_kl", "analytic_kl_fn", "is_standard_normal", "kl_normal", "kl_normal_std",
]

KLFn = Callable[[Env], torch.Tensor]
_AVAILABLE: dict[tuple[type, type], bool] = {}


def kl_normal_std(loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``KL(N(μ,σ²) || N(0,1)) = ½(σ² + μ² - 1) - log σ``, elementwise."""
    return 0.5 * (scale**2 + loc**2 - 1) - scale.log()


def kl_normal(loc1: torch.Tensor, scale1: torch.Tensor, loc2: torch.Tensor, scale2: torch.Tensor) -> torch.Tensor:
    """``KL(N(μ₁,σ₁²) || N(μ₂,σ₂²)) = ½(σ₁²/σ₂² + (μ₁-μ₂)²/σ₂² - 1 - log σ₁²/σ₂²)``, elementwise."""
    var_ratio = (scale1 / scale2) ** 2
    t1 = ((loc1 - loc2) / scale2) ** 2
    return 0.5 * (var_ratio + t1 - 1 - var_ratio.log())


def is_standard_normal(d: Distribution) -> bool:
    """Whether ``d`` is a Normal whose loc and scale are constant buffers equal to 0 and 1 (``N(0, I)``)."""
    if not isinstance(d, Normal):
        return False
    params = d.constant_params()
    if params is None or set(params) != {"loc", "scale"}:
        return False
    loc, scale = params["loc"], params["scale"]
    if loc.requires_grad or scale.requires_grad:
        return False
    return bool((loc == 0).all()) and bool((scale == 1).all())


def _example(f: Family) -> td.Distribution:
    """A tiny instance of ``f``'s torch distribution: one parameter of each alternative group, made from its
    constraint (``biject_to`` of zeros)."""
    assert f.torch_cls is not None
    arg_constraints = getattr(f.torch_cls, "arg_constraints", {})
    params: dict[str, torch.Tensor] = {}
    for group in f.alternatives:
        name = group[0]
        c = arg_constraints.get(name, constraints.positive)
        params[name] = td.biject_to(c)(torch.zeros(2))
    return f.torch_dist(params)


def _registered(p: Family, q: Family) -> bool:
    try:
        td.kl_divergence(_example(p), _example(q))
    except Exception:  # NotImplementedError: not in the registry; anything else: no tiny instances
        return False
    return True


def has_analytic_kl(p: Distribution, q: Distribution) -> bool:
    """Whether ``D_KL[p||q]`` has a closed form here: both are families, and a formula of ours or torch's
    registry covers the pair (decided once per pair of classes, see the module docstring)."""
    if not (isinstance(p, Family) and isinstance(q, Family)):
        return False
    if p.torch_cls is None or q.torch_cls is None:
        return False
    if isinstance(p, Normal) and isinstance(q, Normal):
        return True
    key = (type(p), type(q))
    hit = _AVAILABLE.get(key)
    if hit is None:
        hit = _AVAILABLE[key] = _registered(p, q)
    return hit


def analytic_kl_fn(p: Distribution, q: Distribution) -> KLFn:
    """The function ``env -> D_KL[p||q]`` (summed over event dimensions), specialised once for the pair.

    A constant ``N(0, I)`` ``q`` is recognised here, once: its buffers are read now, so a prior whose
    buffers change later should be an ``nn.Parameter`` or a new distribution. Raises ``ValueError`` for a
    pair with no closed form (see ``has_analytic_kl``).
    """
    if not has_analytic_kl(p, q):
        raise ValueError(f"no analytic KL between {type(p).__name__} {p.prob_text} and "
                         f"{type(q).__name__} {q.prob_text}")
    assert isinstance(p, Family) and isinstance(q, Family)
    if isinstance(p, Normal) and isinstance(q, Normal):
        if is_standard_normal(q):
            return _std_normal_fn(p, q)

        def normal(env: Env) -> torch.Tensor:
            pp, qp = p.params_at(env), q.params_at(env)
            return p.sum_event(kl_normal(pp["loc"], pp["scale"], qp["loc"], qp["scale"]))

        return normal

    def registry(env: Env) -> torch.Tensor:
        return p.sum_event(td.kl_divergence(p.torch_dist(p.params_at(env)), q.torch_dist(q.params_at(env))))

    return registry


def _std_normal_fn(p: Normal, prior: Normal) -> KLFn:
    params = prior.constant_params()
    assert params is not None
    shape = params["loc"].shape  # the prior's shape is part of the KL's
    ndim = max(len(shape), 1)

    def std_normal(env: Env) -> torch.Tensor:
        pp = p.params_at(env)
        kl = kl_normal_std(pp["loc"], pp["scale"])
        if kl.shape[-ndim:] != shape:
            kl = kl.expand(torch.broadcast_shapes(kl.shape, shape))
        return p.sum_event(kl)

    return std_normal


def analytic_kl(p: Distribution, q: Distribution, env: Env) -> torch.Tensor:
    """``D_KL[p||q]`` at the conditions in ``env``, summed over event dimensions (``analytic_kl_fn(p, q)(env)``;
    an objective evaluated many times keeps the function instead)."""
    return analytic_kl_fn(p, q)(env)
