"""One named variable distributed by a parametric family, its parameters given by a network.

A :class:`Family` is conditioned in one of three ways, freely mixed:

* a subclass overrides ``forward(self, *conditions)`` returning a dict of parameters;
* ``net=module`` is given, with ``module(*conditions)`` returning that dict;
* parameters are given directly: a number or tensor (a constant buffer), an ``nn.Parameter``
  (learnable, e.g. a learnable prior) or a string (the name of another variable).

The network receives the conditioning variables in the order of ``cond_var`` (those not used as a
parameter directly). When conditions carry leading sample dimensions (inside ``E(q, f, K)``) they are
flattened into the batch before the network runs and restored after it, so any network — convolutional
ones included — sees ``(N, ...)`` inputs.

>>> import torch
>>> from deepgm.distributions import Normal
>>> p = Normal(var=["x"], cond_var=["z"], loc="z", scale=1.0)  # p(x|z) = N(x; z, 1): loc names z
>>> p.mean({"z": torch.tensor([[1.0, 2.0]])})
tensor([[1., 2.]])
>>> p.log_prob({"z": torch.zeros(4, 2), "x": torch.zeros(4, 2)})  # -½ log 2π per dimension, summed
tensor([-1.8379, -1.8379, -1.8379, -1.8379])
>>> Normal(var=["x"], loc=0.0, scale=-1.0)
Traceback (most recent call last):
...
deepgm.errors.ParameterError: Normal p(x): parameter 'scale' must satisfy > 0; got [-1.0]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import nn
from torch.distributions import constraints

from deepgm.distributions.base import Distribution, Shape, _rename, as_shape
from deepgm.distributions.env import Env
from deepgm.errors import DeepGMError, NonFiniteParameterError, ParameterError, ShapeError, SupportError
from deepgm.nn.mlp import call

__all__ = ["Family", "finite"]

ParamValue = float | int | torch.Tensor | str | None


class _Finite(constraints.Constraint):
    """Finite numbers: neither NaN nor ±inf (a value a Normal or Laplace can score)."""

    def check(self, value: torch.Tensor) -> torch.Tensor:
        return torch.isfinite(value)


finite = _Finite()


def _prod(shape: Shape) -> int:
    return math.prod(shape)


class Family(Distribution):
    """A distribution over one variable from a ``torch.distributions`` family (see module docstring).

    Class attributes of a family: ``torch_cls`` (the torch distribution), ``param_names`` (accepted
    parameters), ``alternatives`` (groups of which exactly one is needed, e.g. probs/logits),
    ``value_event_ndim`` (event dimensions the torch distribution already sums over),
    ``has_rsample`` (whether draws are differentiable).
    """

    torch_cls: ClassVar[type[torch.distributions.Distribution] | None] = None
    param_names: ClassVar[tuple[str, ...]] = ()
    alternatives: ClassVar[tuple[tuple[str, ...], ...]] = ()
    value_event_ndim: ClassVar[int] = 0
    has_rsample: ClassVar[bool] = True
    has_density: ClassVar[bool] = True
    #: the values the variable may take, checked where a value is scored: at every public
    #: ``log_prob(inputs)`` and at the first evaluation of an objective (not on every training step);
    #: None: not checked
    value_support: ClassVar[constraints.Constraint | None] = None

    def __init__(
        self,
        var: Sequence[str] | str,
        cond_var: Sequence[str] | str = (),
        name: str = "p",
        *,
        features_shape: int | Sequence[int] | None = None,
        event_ndim: int | None = None,
        net: nn.Module | None = None,
        params: Mapping[str, ParamValue] | None = None,
    ) -> None:
        given = {k: v for k, v in (params or {}).items() if v is not None}
        cond = list([cond_var] if isinstance(cond_var, str) else cond_var)
        refs = {k: v for k, v in given.items() if isinstance(v, str)}
        cond.extend(v for v in refs.values() if v not in cond)
        super().__init__(var, cond, name)
        if len(self.var) != 1:
            raise ValueError(f"{self.owner}: a {type(self).__name__} is over exactly one variable, got {self.var}")
        for k in given:
            if k not in self.param_names:
                raise ValueError(f"{self.owner}: unknown parameter '{k}'; expected one of {self.param_names}")
        self.net = net
        self.features_shape: Shape | None = None if features_shape is None else as_shape(features_shape)
        self._refs: dict[str, str] = refs
        self._consts: dict[str, str] = {}
        for k, v in given.items():
            if isinstance(v, str):
                continue
            attr = f"_param_{k}"
            if isinstance(v, nn.Parameter):
                self.register_parameter(attr, v)
            else:
                t = torch.as_tensor(v, dtype=torch.get_default_dtype() if not torch.is_tensor(v) else None)
                if self.features_shape is not None and t.dim() == 0:
                    t = t.expand(self.features_shape).clone()
                self.register_buffer(attr, t)
            self._consts[k] = attr
            self._check_constraint(k, getattr(self, attr))
        self._has_forward = type(self).forward is not Family.forward
        self._net_inputs: tuple[str, ...] = tuple(c for c in self.cond_var if c not in refs.values())
        self._computed = self._has_forward or net is not None
        if not self._computed:
            for group in self.alternatives:
                if not any(g in given for g in group):
                    raise ValueError(
                        f"{self.owner}: needs one of the parameters {group}, or a network (net=... or forward)"
                    )
        if event_ndim is None:
            if self.features_shape is not None:
                event_ndim = len(self.features_shape)
            elif self._computed or self._refs:
                event_ndim = max(1, self.value_event_ndim)
            else:
                shapes = [getattr(self, a).shape for a in self._consts.values()]
                event_ndim = max(len(torch.broadcast_shapes(*shapes)) if shapes else 0, self.value_event_ndim)
        if event_ndim < self.value_event_ndim:
            raise ValueError(f"{self.owner}: event_ndim must be at least {self.value_event_ndim}")
        self.event_ndim = int(event_ndim)
        extra = self.event_ndim - self.value_event_ndim
        self._sum_dims: tuple[int, ...] = tuple(range(-extra, 0))
        # where each constant lives (the module's own _buffers/_parameters dicts, which .to() updates in
        # place), read directly on the hot path instead of through nn.Module.__getattr__
        self._const_slots: dict[str, tuple[dict[str, Any], str]] = {
            k: (self._parameters if a in self._parameters else self._buffers, a) for k, a in self._consts.items()
        }
        self._constant = not self._computed and not self._refs
        self._validated = False
        self._values_checked = self.value_support is None

    # -- parameters ----------------------------------------------------------------------------------
    def forward(self, *conditions: torch.Tensor) -> dict[str, torch.Tensor]:
        """The parameters given the conditions; by default those of ``net``."""
        out: dict[str, torch.Tensor]
        net = self._modules.get("net")  # a dict lookup: nn.Module.__getattr__ is slower
        if net is not None:
            out = call(net, *conditions)
            return out
        fn = self.__dict__.get("net")  # a plain function as the network
        if fn is None:
            return {}
        out = fn(*conditions)
        return out

    def _check_constraint(self, name: str, value: torch.Tensor) -> None:
        if not torch.is_tensor(value):
            return
        c = getattr(self.torch_cls, "arg_constraints", {}).get(name)
        if isinstance(c, constraints._Dependent):
            c = None
        with torch.no_grad():
            ok = c.check(value.detach()) if c is not None else None
            if c is not None and ok is not None and not bool(ok.all()):
                bad = value.detach()[~ok.expand_as(value)] if ok.shape == value.shape else value
                cls = ParameterError if bool(torch.isfinite(bad).all()) else NonFiniteParameterError
                raise cls(
                    f"{self.owner}: parameter '{name}' must satisfy {_describe(c)}; "
                    f"got {bad.flatten()[:4].tolist()}"
                )
            # NaN is outside every constraint; ±inf passes "real" and "> 0" but is no usable location or
            # scale. Only logits may be infinite (a logit of -inf is a probability of 0: a masked class).
            if name != "logits" and value.is_floating_point() and not bool(torch.isfinite(value).all()):
                bad = value.detach()[~torch.isfinite(value.detach())]
                raise NonFiniteParameterError(
                    f"{self.owner}: parameter '{name}' must be finite; got {bad.flatten()[:4].tolist()}"
                )

    def params_at(self, env: Env) -> dict[str, torch.Tensor]:
        """The parameters at the conditions in ``env``, computed once per evaluation (``memo_params``)."""
        if self._constant:
            return {k: store[a] for k, (store, a) in self._const_slots.items()}
        return self.memo_params(env)  # type: ignore[no-any-return]  # compute_params's dict

    def constant_params(self) -> dict[str, torch.Tensor] | None:
        """The parameters when every one is a constant buffer (given as a number or tensor: not learnable,
        not computed by a network, not naming another variable); None otherwise."""
        if not self._constant or any(store is self._parameters for store, _ in self._const_slots.values()):
            return None
        return {k: store[a] for k, (store, a) in self._const_slots.items()}

    def compute_params(self, env: Env) -> dict[str, torch.Tensor]:
        """The network's parameters at the conditions in ``env`` (sample dimensions folded into the batch
        and restored), with the constant and referenced ones."""
        out: dict[str, torch.Tensor]
        if self._computed:
            names = self._net_inputs
            args = [env.values[n] for n in names]
            sdims = env.sdims
            m = max([sdims.get(n, 0) for n in names]) if sdims and names else 0
            if m:
                lead, args = _flatten_samples(args, [sdims.get(n, 0) for n in names], m)
                try:  # free unless it raises (Python >= 3.11)
                    out = self.forward(*args)
                except RuntimeError as err:
                    if _out_of_memory(err):
                        raise
                    raise self._network_error(env, err) from err
                if not self._validated:
                    self._check_out(out)
                n = _prod(lead)
                out = {k: (v.reshape(lead + v.shape[1:]) if v.dim() and v.shape[0] == n else v)
                       for k, v in out.items()}
            else:
                try:
                    out = self.forward(*args)
                except RuntimeError as err:
                    if _out_of_memory(err):
                        raise
                    raise self._network_error(env, err) from err
                if not self._validated:
                    self._check_out(out)
                out = dict(out)
        else:
            out = {}
        for k, (store, a) in self._const_slots.items():
            out[k] = store[a]
        for k, v in self._refs.items():
            out[k] = env.values[v]
        if not self._validated:
            self._validate(out)
        return out

    def _network_error(self, env: Env, err: RuntimeError) -> ShapeError:
        """A torch error raised by the network (wrong width, dtype or rank of a condition) as a
        :class:`ShapeError` naming this distribution and its inputs (out-of-memory errors pass as they are)."""
        module = self.net if self.net is not None else self
        values = [env.values[n] for n in self._net_inputs]
        params = list(module.parameters())
        devices = {str(t.device) for t in values + params if torch.is_tensor(t)}
        where = len(devices) > 1  # name the devices only when they differ

        def describe(t: Any) -> str:
            if not torch.is_tensor(t):
                return type(t).__name__
            text = f"{tuple(t.shape)} {str(t.dtype).replace('torch.', '')}"
            return text + (f" on {t.device}" if where else "")

        given = [f"'{n}' {describe(v)}" for n, v in zip(self._net_inputs, values)]
        dtypes = sorted({str(p.dtype).replace("torch.", "") + (f" on {p.device}" if where else "") for p in params})
        wants = f"; its network's parameters are {'/'.join(dtypes)}" if dtypes else ""
        return ShapeError(
            f"{self.owner}: its network failed on the conditioning variables {', '.join(given) or '(none)'}"
            f"{wants} ({str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__}). "
            "Check each variable's width, dtype and device; deepgm passes conditions to a network unconverted "
            "(a network may take integer indices), so give a float network float inputs (e.g. y.float())"
        )

    def _check_out(self, out: Any) -> None:
        if not isinstance(out, Mapping):
            raise TypeError(
                f"{self.owner}: its network must return a dict of parameters {self.param_names}, "
                f"got {type(out).__name__}"
            )
        for k in out:
            if k not in self.param_names:
                raise ValueError(f"{self.owner}: its network returned unknown parameter '{k}'; "
                                 f"expected {self.param_names}")

    def _validate(self, params: Mapping[str, torch.Tensor]) -> None:
        for group in self.alternatives:
            present = [g for g in group if g in params]
            if len(present) != 1:
                raise ValueError(f"{self.owner}: needs exactly one of {group}, got {present or 'none'}")
        for k, v in params.items():
            if k not in self._consts:
                self._check_constraint(k, v)
        self._validated = True

    # -- the family's maths (fast paths override these) --------------------------------------------
    def torch_dist(self, params: Mapping[str, torch.Tensor]) -> torch.distributions.Distribution:
        """The ``torch.distributions`` object for ``params`` (no argument validation: done once)."""
        cls: Any = self.torch_cls
        if cls is None:
            raise DeepGMError(f"{self.owner} has no torch distribution (its class sets no torch_cls)")
        d: torch.distributions.Distribution = cls(**params, validate_args=False)
        return d

    def _log_prob_value(self, params: Mapping[str, torch.Tensor], value: torch.Tensor) -> torch.Tensor:
        return self.torch_dist(params).log_prob(value)

    def _draw_from(self, params: Mapping[str, torch.Tensor], shape: Shape, reparam: bool) -> torch.Tensor:
        d = self.torch_dist(params)
        out: torch.Tensor = d.rsample(shape) if reparam and self.has_rsample else d.sample(shape)
        return out

    def _prepare_value(self, value: Any, params: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Convert a given value (e.g. class indices to one-hot); check its event shape."""
        if not torch.is_tensor(value):
            value = torch.as_tensor(value, dtype=torch.get_default_dtype())
        elif not value.is_floating_point() and not value.is_complex():
            # integer and boolean values (binary images as uint8, counts) are converted to the
            # parameters' floating dtype: exact for every value a float32 holds (integers up to 2^24)
            ref_t = next(iter(params.values()), None)
            value = value.to(ref_t.dtype if torch.is_tensor(ref_t) and ref_t.is_floating_point()
                             else torch.get_default_dtype())
        checked: torch.Tensor = value
        ne = self.event_ndim
        if ne:
            ref = next(iter(params.values()), None)
            if value.dim() < ne:
                raise ShapeError(
                    f"{self.owner}: variable '{self.var[0]}' has shape {tuple(value.shape)}, "
                    f"expected at least {ne} event dimension(s)"
                )
            if ref is not None and torch.is_tensor(ref) and ref.dim() >= ne:
                ve, pe = value.shape[-ne:], ref.shape[-ne:]
                if ve != pe and any(a != b and a != 1 and b != 1 for a, b in zip(ve, pe)):
                    raise ShapeError(
                        f"{self.owner}: variable '{self.var[0]}' has event shape {tuple(ve)}, "
                        f"expected {tuple(pe)} (from its parameters)"
                    )
        return checked

    # -- the Distribution protocol -----------------------------------------------------------------------
    def new_draw(
        self, env: Env, sample_shape: Shape, batch_n: int | None, reparam: bool
    ) -> tuple[torch.Tensor, int]:
        params = self.params_at(env)
        shape = sample_shape
        if batch_n is not None and not any(c in env.values for c in self.cond_var):
            shape = shape + (batch_n,)  # nothing to take a batch from (e.g. a PoE with no expert given)
        sdims = env.sdims
        base = max([sdims.get(n, 0) for n in self.cond_var]) if sdims and self.cond_var else 0
        return self._draw_from(params, shape, reparam), base + len(sample_shape)

    def log_prob_at(self, env: Env, detach_params: bool = False) -> torch.Tensor:
        params = self.params_at(env)
        if detach_params:
            params = {k: v.detach() for k, v in params.items()}
        value = self._prepare_value(env.get(self.var[0], self), params)
        if not self._values_checked or env.shared.checking:
            self._check_value(value)
        lp = self._log_prob_value(params, value)
        return lp.sum(self._sum_dims) if self._sum_dims else lp

    def _check_value(self, value: torch.Tensor) -> None:
        """Refuse a value outside ``value_support`` (a Bernoulli target of 2, a NaN), naming the variable.
        Runs at the public ``log_prob`` and on the first evaluation of an objective, not every step."""
        c: Any = self.value_support  # torch's Constraint.check is untyped
        if c is not None:
            with torch.no_grad():
                ok: torch.Tensor = c.check(value.detach())
                if not bool(ok.all()):
                    bad = value.detach()[~ok]
                    raise SupportError(
                        f"{self.owner}: variable '{self.var[0]}' must be {_describe(c)}; got "
                        f"{bad.flatten()[:4].tolist()} ({bad.numel()} of {value.numel()} values outside)"
                    )
        self._values_checked = True

    def sum_event(self, t: torch.Tensor) -> torch.Tensor:
        """``t`` summed over the event dimensions that ``log_prob`` sums over."""
        return t.sum(self._sum_dims) if self._sum_dims else t

    # -- public extras -----------------------------------------------------------------------------------
    def params(self, inputs: Mapping[str, Any] | None = None) -> dict[str, torch.Tensor]:
        """The parameters given the conditioning ``inputs`` (validated)."""
        env = Env(inputs, self)
        self._check_inputs(env)
        out = self.params_at(env)
        self._validate(out)
        return out

    def dist(self, inputs: Mapping[str, Any] | None = None) -> torch.distributions.Distribution:
        """The ``torch.distributions`` object at the conditioning ``inputs``."""
        return self.torch_dist(self.params(inputs))

    def log_prob(self, inputs: Mapping[str, Any]) -> torch.Tensor:
        env = Env(inputs, self)
        env.shared.checking = True  # the value against value_support on every public call
        self._check_inputs(env, with_var=True)
        self._validate(self.params_at(env))
        return self.log_prob_at(env)

    def mean(self, inputs: Mapping[str, Any] | None = None) -> torch.Tensor:
        """The mean of ``var`` given ``inputs``."""
        return self.dist(inputs).mean

    def variance(self, inputs: Mapping[str, Any] | None = None) -> torch.Tensor:
        """The variance of ``var`` given ``inputs`` (elementwise)."""
        return self.dist(inputs).variance

    def entropy(self, inputs: Mapping[str, Any] | None = None) -> torch.Tensor:
        """The entropy ``H[p(var|cond)]``, summed over event dimensions."""
        return self.sum_event(self.dist(inputs).entropy())

    def replace_var(self, **mapping: str) -> Family:
        new = self._renamed(mapping)  # shares modules, parameters and buffers with self
        new._refs = {k: mapping.get(v, v) for k, v in self._refs.items()}
        new._net_inputs = tuple(_rename(list(self._net_inputs), mapping))
        return new


def _flatten_samples(
    args: list[torch.Tensor], sdims: list[int], m: int
) -> tuple[Shape, list[torch.Tensor]]:
    """Broadcast the leading sample dims of ``args`` to the largest ``m`` and fold them into the batch.

    ``(S..., B, D...)`` becomes ``(S·B, D...)`` when every argument has a batch dimension after its
    sample dimensions and a feature dimension after that; otherwise ``(S..., D)`` becomes ``(S, D)``.
    Returns the leading shape to restore and the folded arguments.
    """
    ref = args[sdims.index(m)]
    lead = tuple(ref.shape[:m])
    expanded = []
    for a, s in zip(args, sdims):
        if s < m:
            a = a.expand(lead[: m - s] + tuple(a.shape))
        expanded.append(a)
    k = m + 1 if all(a.dim() >= m + 2 for a in expanded) else m
    if k > m:
        batch = {a.shape[m] for a in expanded}
        if len(batch) == 1:
            lead = lead + (batch.pop(),)
        else:
            k = m
    return lead, [a.reshape((-1,) + tuple(a.shape[k:])) for a in expanded]


def _out_of_memory(err: RuntimeError) -> bool:
    return isinstance(err, torch.cuda.OutOfMemoryError) or "out of memory" in str(err)


def _describe(c: constraints.Constraint) -> str:
    names = {
        constraints.positive: "> 0",
        constraints.nonnegative: ">= 0",
        finite: "finite (not NaN or ±inf)",
        constraints.unit_interval: "in [0, 1]",
        constraints.real: "real (not NaN)",
        constraints.simplex: "a probability vector (>= 0, summing to 1)",
        constraints.nonnegative_integer: "a non-negative integer",
    }
    for k, v in names.items():
        if c is k:
            return v
    return str(c)
