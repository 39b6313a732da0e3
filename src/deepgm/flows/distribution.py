"""A flow as a distribution over a named variable: ``p(x) = p_u(f(x)) |det ∂f/∂x|``.

:class:`Flow` turns a base distribution over a latent ``u`` (any deepgm distribution, possibly
conditional, e.g. ``N(u; μ(x), σ(x))``) and transforms ``f`` (data → latent) into a distribution over
``x``: ``log_prob`` is exact by the change of variables, ``sample`` runs ``f⁻¹`` on base draws
(differentiable when the base's draws are), and a draw remembers its own log-density, so a posterior
whose transforms only run in the sampling direction (IAF, planar) scores its own samples for free.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from deepgm.distributions.base import Distribution, Shape, as_shape
from deepgm.distributions.env import Env
from deepgm.distributions.family import Family
from deepgm.errors import ShapeError
from deepgm.flows.base import Compose, Transform

__all__ = ["Flow", "StandardLogistic"]


class Flow(Distribution):
    """``p(x|c) = p_u(f(x; c)|c) |det ∂f/∂x|`` over the one variable ``var``.

    ``base``: a distribution over one latent variable (its name is private to the flow); its conditions
    become conditions of the flow. ``transforms``: a :class:`Transform` or a list of them, composed in
    order, mapping data to latent. ``cond_var``: the variables given to the transforms as their context,
    concatenated along the last dimension (vectors), through ``context_net`` when given. ``event_shape``:
    the shape of one ``x``; by default the base's ``features_shape``.

    >>> from deepgm.distributions import Normal
    >>> from deepgm.flows import AffineCoupling, alternating_mask
    >>> base = Normal(var=["u"], loc=0.0, scale=1.0, features_shape=[2])
    >>> flow = Flow(var=["x"], base=base, transforms=[AffineCoupling(alternating_mask(2))])
    >>> flow.log_prob({"x": torch.zeros(5, 2)}).shape
    torch.Size([5])
    """

    def __init__(self, var: Sequence[str] | str, cond_var: Sequence[str] | str = (), name: str = "p", *,
                 base: Distribution, transforms: Transform | Sequence[Transform],
                 event_shape: int | Sequence[int] | None = None, context_net: nn.Module | None = None) -> None:
        if not isinstance(base, Distribution):
            raise TypeError(f"Flow '{name}': base must be a deepgm distribution, got {type(base).__name__}")
        if len(base.var) != 1:
            raise ValueError(f"Flow '{name}': the base must be over one latent variable, got {base.var}")
        context = list([cond_var] if isinstance(cond_var, str) else cond_var)
        cond = context + [c for c in base.cond_var if c not in context]
        super().__init__(var, cond, name)
        if len(self.var) != 1:
            raise ValueError(f"{self.owner}: a Flow is over exactly one variable, got {self.var}")
        if self.var[0] in base.cond_var:
            raise ValueError(f"{self.owner}: the base cannot be conditioned on the flow's own variable '{self.var[0]}'")
        self.context_var = context
        self.base = base
        if isinstance(transforms, Transform):
            self.transform = transforms if isinstance(transforms, Compose) else Compose([transforms])
        else:
            self.transform = Compose(transforms)
        if event_shape is None:
            fs = base.features_shape if isinstance(base, Family) else getattr(base, "event_shape", None)
            if fs is None:
                raise ValueError(f"{self.owner}: give event_shape (the base has no features_shape)")
            event_shape = fs
        self.event_shape: Shape = as_shape(event_shape)
        self.context_net = context_net

    # -- helpers ---------------------------------------------------------------------------------------
    def _lead(self, x: torch.Tensor) -> Shape:
        ne = len(self.event_shape)
        if x.dim() < ne or tuple(x.shape[x.dim() - ne:]) != self.event_shape:
            raise ShapeError(f"{self.owner}: variable '{self.var[0]}' has shape {tuple(x.shape)}, expected "
                             f"(..., {', '.join(map(str, self.event_shape))})")
        return tuple(x.shape[: x.dim() - ne])

    def _context(self, values: Mapping[str, Any], lead: Shape) -> torch.Tensor | None:
        if not self.context_var:
            return None
        parts = []
        for c in self.context_var:
            v = values[c]
            if not torch.is_tensor(v):
                v = torch.as_tensor(v, dtype=torch.get_default_dtype())
            if v.dim() == 0 or v.dim() - 1 > len(lead):
                raise ShapeError(f"{self.owner}: context '{c}' of shape {tuple(v.shape)} does not fit the batch {lead}")
            parts.append(v.expand(lead + v.shape[-1:]))
        ctx = torch.cat(parts, -1) if len(parts) > 1 else parts[0]
        ctx = ctx.reshape(-1, ctx.shape[-1])
        return self.context_net(ctx) if self.context_net is not None else ctx

    def _context_batch(self, env: Env) -> tuple[Shape, int] | None:
        """The leading shape (and its sample dimensions) of the widest context value, when the base has
        no condition of its own to take a batch from; else None."""
        if self.base.cond_var or not self.context_var:
            return None
        widest = max(self.context_var, key=lambda c: env.get(c, self).dim())
        v = env.values[widest]
        return tuple(v.shape[:-1]), env.sdims.get(widest, 0)

    def _run(self, fn: Any, x: torch.Tensor, ctx: torch.Tensor | None,
             detach: bool) -> tuple[torch.Tensor, torch.Tensor]:
        out: tuple[torch.Tensor, torch.Tensor]
        if not detach:
            out = fn(x, ctx)
        else:
            params = {k: v.detach() for k, v in self.transform.named_parameters()}
            out = torch.func.functional_call(self.transform, params, (x, ctx))
        return out

    # -- the Distribution interface ---------------------------------------------------------------------
    def log_prob_at(self, env: Env, detach_params: bool = False) -> torch.Tensor:
        x = env.get(self.var[0], self)
        if not detach_params:
            known = env.recall_log_prob(self, x)
            if known is not None:
                return known
        if not torch.is_tensor(x):
            x = torch.as_tensor(x, dtype=torch.get_default_dtype())
        lead = self._lead(x)
        for c in self.cond_var:
            env.get(c, self)
        ctx = self._context(env.values, lead)
        u, ld = self._run(self.transform, x.reshape((-1,) + self.event_shape), ctx, detach_params)
        scope = env.child()
        scope.set(self.base.var[0], u.reshape(lead + tuple(u.shape[1:])), env.sdims.get(self.var[0], 0))
        return self.base.log_prob_at(scope, detach_params) + ld.reshape(lead)

    def new_draw(
        self, env: Env, sample_shape: Shape, batch_n: int | None, reparam: bool
    ) -> tuple[torch.Tensor, int]:
        """A base draw (memoised by the base) through ``f⁻¹``; a reparameterised draw remembers its
        log-density, computed along the way."""
        scope = env.child()
        uname = self.base.var[0]
        batch = self._context_batch(env)
        if batch is None:
            self.base.draw_into(scope, sample_shape, batch_n, reparam)
            sdim = scope.sdims.get(uname, 0)
        else:  # an unconditional base takes its batch from the transforms' context
            shape, csdim = batch
            self.base.draw_into(scope, sample_shape + shape, None, reparam)
            sdim = len(sample_shape) + csdim
        u = scope.values[uname]
        lead = self._lead(u)
        ctx = self._context(env.values, lead)
        x, ld = self.transform.inverse(u.reshape((-1,) + self.event_shape), ctx)
        x = x.reshape(lead + tuple(x.shape[1:]))
        if not reparam:
            x = x.detach()
        if reparam or not torch.is_grad_enabled():
            # the density along the draw is log q(x) itself; with gradients on, a draw that is not
            # reparameterised needs log q's gradient at fixed x, which only the data direction gives
            env.remember_log_prob(self, x, self.base.log_prob_at(scope) - ld.reshape(lead))
        return x, sdim

    def replace_var(self, **mapping: str) -> Flow:
        new = self._renamed(mapping)  # shares transforms and parameters with self
        new._modules = dict(self._modules)
        own = {k: v for k, v in mapping.items() if k in self.base.cond_var}
        if own:
            new._modules["base"] = self.base.replace_var(**own)
        new.context_var = [mapping.get(n, n) for n in self.context_var]
        return new

    # -- public extras ------------------------------------------------------------------------------------
    def inverse(self, x: torch.Tensor, **conditions: torch.Tensor) -> torch.Tensor:
        """The latent ``u = f(x)`` of data ``x`` (``(..., *event_shape)``) given the conditions."""
        lead = self._lead(x)
        u: torch.Tensor
        u, _ = self.transform(x.reshape((-1,) + self.event_shape), self._context(conditions, lead))
        return u.reshape(lead + tuple(u.shape[1:]))

    def from_latent(self, u: torch.Tensor, **conditions: torch.Tensor) -> torch.Tensor:
        """The data ``x = f⁻¹(u)`` of latent values ``u``."""
        lead = self._lead(u)
        x, _ = self.transform.inverse(u.reshape((-1,) + self.event_shape), self._context(conditions, lead))
        return x.reshape(lead + tuple(x.shape[1:]))

    def sample_with_log_prob(self, inputs: Mapping[str, Any] | None = None, sample_shape: int | Sequence[int] = (),
                             batch_n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterised draw of ``x`` and its log-density, computed along the sampling direction."""
        env = Env(inputs)
        self._check_inputs(env)
        self.draw_into(env, as_shape(sample_shape), batch_n, True)
        return env.values[self.var[0]], self.log_prob_at(env)


class StandardLogistic(Distribution):
    """``p(u) = Π σ(u_i)(1 - σ(u_i))``, ``log p = -Σ (softplus(u) + softplus(-u))``: NICE's prior."""

    _ref: torch.Tensor  # a buffer: the dtype and device of the draws

    def __init__(self, var: Sequence[str] | str = ("u",), name: str = "p_u", *,
                 features_shape: int | Sequence[int]) -> None:
        super().__init__(var, (), name)
        self.features_shape: Shape = as_shape(features_shape)
        self.register_buffer("_ref", torch.zeros(()))

    def new_draw(
        self, env: Env, sample_shape: Shape, batch_n: int | None, reparam: bool
    ) -> tuple[torch.Tensor, int]:
        shape = sample_shape + ((batch_n,) if batch_n else ()) + self.features_shape
        v = torch.rand(shape, dtype=self._ref.dtype, device=self._ref.device).clamp(1e-6, 1 - 1e-6)
        return torch.log(v) - torch.log1p(-v), len(sample_shape)

    def log_prob_at(self, env: Env, detach_params: bool = False) -> torch.Tensor:
        u = env.get(self.var[0], self)
        lp = -(F.softplus(u) + F.softplus(-u))
        return lp.sum(tuple(range(-len(self.features_shape), 0))) if self.features_shape else lp

    def replace_var(self, **mapping: str) -> StandardLogistic:
        return self._renamed(mapping)



