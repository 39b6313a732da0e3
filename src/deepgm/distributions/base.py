"""Distributions over named variables: the evaluation protocol and the joint of several factors.

A distribution ``p(x|z)`` is an :class:`torch.nn.Module` that knows the names of the variables it is
over (``var``) and conditioned on (``cond_var``). Distributions multiply into joints (``p * q``),
rename variables (``replace_var``) and forget them (``marginalize_var``). The public methods
(``sample``, ``log_prob``) take and return plain dicts of tensors; objectives evaluate distributions on
an :class:`~deepgm.distributions.env.Env` through the small protocol below, whose whole mechanism
(versions, memo keys, the sample-sharing rule, what a subclass implements) is explained on one page in
``docs/protocol.md``.

The protocol, in short. :class:`Distribution` owns the memoisation:

* ``draw_into(env, sample_shape, batch_n, reparam)`` (final) draws ``var`` and binds it in ``env``.
  Its memo key is (the distribution, the versions of its conditions, ``sample_shape``, ``batch_n``,
  ``reparam``, ``env.salt``): within one evaluation the same key gives the same draw, bound under the
  same version. On a miss it calls the subclass's ``new_draw`` (or ``new_bindings``).
* ``memo_params(env)`` (final) is ``compute_params(env)``, computed once per evaluation and versions
  of the conditions.

A subclass implements only ``new_draw`` (how to draw), ``log_prob_at`` (how to score) and, where it
has parameters computed from its conditions, ``compute_params``.

>>> import torch
>>> from deepgm.distributions import Env, Normal
>>> q = Normal(var=["z"], loc=0.0, scale=1.0, features_shape=[2])
>>> env = Env()
>>> q.draw_into(env, (3,)); first = env.values["z"]
>>> q.draw_into(env, (3,)); env.values["z"] is first  # same key, same draw
True
"""

from __future__ import annotations

import copy
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar, final

import torch
from torch import nn

from deepgm.distributions.env import Env
from deepgm.errors import DeepGMError, ShapeError

__all__ = [
    "Distribution", "JointDistribution", "MarginalizedDistribution", "Binding", "as_shape", "as_sample_shape",
    "positive_int",
]

Shape = tuple[int, ...]
Binding = tuple[str, torch.Tensor, int, int]
"""One variable bound by a draw: (name, value, leading sample dimensions, version)."""
_D = TypeVar("_D", bound="Distribution")
_FINAL = ("draw_into", "memo_params")


def as_shape(shape: int | Sequence[int] | torch.Size | None) -> Shape:
    """Normalise ``3``, ``[3]``, ``torch.Size([3])`` or ``None`` to a tuple of ints."""
    if shape is None:
        return ()
    if isinstance(shape, int):
        return (shape,)
    return tuple(int(s) for s in shape)


def positive_int(value: Any, what: str, minimum: int = 1, error: type[DeepGMError] = ShapeError) -> int:
    """``value`` as an int of at least ``minimum``; otherwise an ``error`` naming ``what`` (e.g.
    ``"IWELBO: k"``): 0 draws would average nothing and give NaN."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise error(f"{what} must be an int >= {minimum}, got {value!r}")
    if int(value) < minimum:
        raise error(f"{what} must be >= {minimum}, got {int(value)}")
    return int(value)


def as_sample_shape(shape: int | Sequence[int] | None, what: str, error: type[DeepGMError] = ShapeError) -> Shape:
    """:func:`as_shape` of numbers of draws, each at least 1 (``sample_shape=0`` draws nothing, and its
    average is NaN); ``what`` names the option in the error, e.g. ``"E: sample_shape"``."""
    if shape is None:
        return ()
    entries = [shape] if not isinstance(shape, Sequence) else list(shape)
    return tuple([positive_int(s, what, 1, error) for s in entries])


def _names(names: str | Iterable[str] | None, what: str, owner: str) -> list[str]:
    if names is None:
        return []
    if isinstance(names, str):
        names = [names]
    out = list(names)
    for n in out:
        if not isinstance(n, str) or not n:
            raise TypeError(f"{owner}: {what} must be a list of non-empty variable names, got {names!r}")
    if len(set(out)) != len(out):
        raise ValueError(f"{owner}: {what} names a variable twice: {out}")
    return out


class Distribution(nn.Module):
    """A distribution over the variables ``var`` given the variables ``cond_var``.

    Subclasses implement ``new_draw`` (or, drawing several variables, ``new_bindings``), ``log_prob_at``
    and, when they have parameters computed from their conditions, ``compute_params``; ``draw_into``
    and ``memo_params`` are the base class's and cannot be overridden (see the module docstring).
    """

    has_density: ClassVar[bool] = True
    """False for point masses and the data distribution: a joint adds nothing to its log-density for them."""
    optional_conditions: ClassVar[bool] = False
    """True when the distribution may be evaluated with some conditions absent (products and mixtures of
    experts leave out the experts whose conditions are missing); an absent condition's version is -1."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in _FINAL:
            if name in cls.__dict__:
                raise TypeError(
                    f"{cls.__name__} overrides {name}, which the Distribution base class owns (it memoises); "
                    "implement new_draw / new_bindings / compute_params instead (see docs/protocol.md)"
                )

    def __init__(
        self, var: Sequence[str] | str, cond_var: Sequence[str] | str = (), name: str = "p"
    ) -> None:
        super().__init__()
        owner = f"{type(self).__name__} '{name}'"
        self.var: list[str] = _names(var, "var", owner)
        self.cond_var: list[str] = _names(cond_var, "cond_var", owner)
        if not self.var:
            raise ValueError(f"{owner}: var must name at least one variable")
        both = set(self.var) & set(self.cond_var)
        if both:
            raise ValueError(f"{owner}: {sorted(both)} cannot be both a variable and a condition")
        self.name = name
        # the names whose versions are the memo keys' "where": the conditions (and, for the data
        # distribution standing for given data, its own variable; a joint adds its factors' such names)
        self._key_t: tuple[str, ...] = tuple(self.cond_var)

    # -- text ------------------------------------------------------------------------------------
    @property
    def prob_text(self) -> str:
        """The factor as text, e.g. ``p(x|z)``."""
        cond = "|" + ",".join(self.cond_var) if self.cond_var else ""
        return f"{self.name}({','.join(self.var)}{cond})"

    @property
    def prob_factorized_text(self) -> str:
        """The factorisation as text; a single factor is its own."""
        return self.prob_text

    @property
    def owner(self) -> str:
        """How error messages name this distribution, e.g. ``Normal q(z|x)``."""
        return f"{type(self).__name__} {self.prob_text}"

    def extra_repr(self) -> str:
        return self.prob_factorized_text

    # -- the evaluation protocol: owned by the base class -----------------------------------------
    @final
    def draw_into(
        self, env: Env, sample_shape: Shape = (), batch_n: int | None = None, reparam: bool = True
    ) -> None:
        """Draw ``var`` given the conditioning values in ``env`` and bind it in ``env``; the same memo
        key in one evaluation gives the same draw, bound under the same version (the sharing rule)."""
        key = (id(self), self.condition_versions(env), sample_shape, batch_n, reparam, env.salt)
        memo = env.shared.samples
        hit: tuple[Binding, ...] | None = memo.get(key)
        if hit is None:
            hit = memo[key] = self.new_bindings(env, sample_shape, batch_n, reparam)
        for name, value, sdim, version in hit:
            env.bind(name, value, sdim, version)

    @final
    def memo_params(self, env: Env) -> Any:
        """``compute_params(env)``, computed once per evaluation and versions of the conditions."""
        key = (id(self), self.condition_versions(env))
        memo = env.shared.params
        out = memo.get(key)
        if out is None:
            out = memo[key] = self.compute_params(env)
        return out

    def condition_versions(self, env: Env) -> tuple[int, ...]:
        """The versions of the conditioning values in ``env`` (the memo keys' part that says *where* the
        distribution is evaluated); -1 for an absent one when ``optional_conditions``."""
        versions = env.versions
        if self.optional_conditions:
            return tuple([versions.get(n, -1) for n in self._key_t])
        try:
            return tuple(map(versions.__getitem__, self._key_t))  # no Python frame: on every draw's path
        except KeyError:
            return env.key(self._key_t, self)  # raises the error naming the missing variable

    # -- what a subclass implements ----------------------------------------------------------------
    def new_draw(
        self, env: Env, sample_shape: Shape, batch_n: int | None, reparam: bool
    ) -> tuple[torch.Tensor, int]:
        """A new draw of the one variable: the value and its number of leading sample dimensions
        (those of the conditions plus ``len(sample_shape)``). Called by ``draw_into`` on a memo miss."""
        raise NotImplementedError(f"{self.owner} cannot be sampled")

    def new_bindings(
        self, env: Env, sample_shape: Shape, batch_n: int | None, reparam: bool
    ) -> tuple[Binding, ...]:
        """The bindings of a new draw of ``var``. By default the one variable's ``new_draw`` under a new
        version; distributions over several variables (joints) override this instead of ``new_draw``."""
        value, sdim = self.new_draw(env, sample_shape, batch_n, reparam)
        return ((self.var[0], value, sdim, env.new_version()),)

    def compute_params(self, env: Env) -> Any:
        """What the distribution computes from its conditions in ``env`` (its parameters); read it through
        ``memo_params``, which computes it once per evaluation."""
        raise NotImplementedError(f"{self.owner} computes no parameters")

    def log_prob_at(self, env: Env, detach_params: bool = False) -> torch.Tensor:
        """``log p(var|cond_var)`` at the values in ``env``, summed over event dimensions
        (``detach_params``: no gradient to the distribution's own parameters)."""
        raise NotImplementedError(f"{self.owner} has no log-density")

    def factors(self) -> list[Distribution]:
        """The primitive factors of this distribution (itself, when it is not a joint)."""
        return [self]

    def _renamed(self: _D, mapping: Mapping[str, str]) -> _D:
        """A shallow copy (sharing modules, parameters and buffers) with ``var``/``cond_var`` renamed."""
        self._check_mapping(mapping)
        new = copy.copy(self)
        new.var = _rename(self.var, mapping)
        new.cond_var = _rename(self.cond_var, mapping)
        new._key_t = tuple([mapping.get(n, n) for n in self._key_t])
        return new

    # -- public API ----------------------------------------------------------------------------------
    def sample(
        self,
        inputs: Mapping[str, Any] | None = None,
        sample_shape: int | Sequence[int] = (),
        batch_n: int | None = None,
        reparam: bool = True,
    ) -> dict[str, torch.Tensor]:
        """Draw ``var`` given ``inputs``; returns the inputs together with the new draws.

        ``sample_shape`` adds leading sample dimensions (``(S, B, D)`` for ``S`` draws of a batch of
        ``B``); ``batch_n`` sets the batch size of a distribution with no condition; ``reparam``
        keeps the draw differentiable where the family allows it.
        """
        env = Env(inputs, self)
        self._check_inputs(env)
        shape = as_sample_shape(sample_shape, f"{self.owner}: sample_shape")
        if batch_n is not None:
            batch_n = positive_int(batch_n, f"{self.owner}: batch_n")
        self.draw_into(env, shape, batch_n, reparam)
        return env.values

    def log_prob(self, inputs: Mapping[str, Any]) -> torch.Tensor:
        """``log p(var|cond_var)`` summed over event dimensions: a ``(S, B, D)`` value gives ``(S, B)``."""
        env = Env(inputs, self)
        env.shared.checking = True  # every value against its family's support, not only the first time
        self._check_inputs(env, with_var=True)
        return self.log_prob_at(env)

    def _check_inputs(self, env: Env, with_var: bool = False) -> None:
        for n in self.cond_var + (self.var if with_var else []):
            env.get(n, self)

    def __mul__(self, other: Distribution) -> JointDistribution:
        if not isinstance(other, Distribution):
            return NotImplemented
        return JointDistribution([self, other])

    def replace_var(self, **mapping: str) -> Distribution:
        """The same distribution (sharing parameters) with variables renamed, e.g. ``x="x_u"``."""
        raise NotImplementedError

    def marginalize_var(self, names: str | Sequence[str]) -> MarginalizedDistribution:
        """The distribution with ``names`` integrated out: they are sampled but not returned."""
        return MarginalizedDistribution(self, _names(names, "marginalize_var", self.owner))

    def _check_mapping(self, mapping: Mapping[str, str]) -> None:
        names = self.var + self.cond_var
        for old, new in mapping.items():
            if old not in names:
                raise ValueError(f"{self.owner}: cannot replace '{old}', which it does not have ({names})")
            if not isinstance(new, str) or not new:
                raise TypeError(f"{self.owner}: replace_var({old}=...) needs a non-empty name, got {new!r}")
        renamed = [mapping.get(n, n) for n in names]
        if len(set(renamed)) != len(renamed):
            raise ValueError(f"{self.owner}: replace_var({dict(mapping)}) would give two variables one name")


def _rename(names: list[str], mapping: Mapping[str, str]) -> list[str]:
    return [mapping.get(n, n) for n in names]


def _bindings(env: Env, names: list[str]) -> tuple[Binding, ...]:
    """The bindings of ``names`` in ``env``, with their versions (to be bound again elsewhere)."""
    values, sdims, versions = env.values, env.sdims, env.versions
    return tuple([(n, values[n], sdims.get(n, 0), versions[n]) for n in names])


class JointDistribution(Distribution):
    """The product of factors, ``p(x,z) = p(x|z) p(z)``: sampled in topological order.

    ``log_prob`` sums the factors' log-densities. A variable defined by two factors is an error.
    Deterministic factors (placing all mass on a function of their conditions) add nothing to it.
    A draw of the joint is its factors' draws (each memoised by its own key).
    """

    optional_conditions = True  # a factor that needs an absent condition says so itself

    def __init__(self, factors: Sequence[Distribution], name: str | None = None) -> None:
        flat: list[Distribution] = []
        for f in factors:
            if not isinstance(f, Distribution):
                raise TypeError(f"a joint distribution multiplies distributions, got {type(f).__name__}")
            flat.extend(f.factors())
        defined: dict[str, Distribution] = {}
        for f in flat:
            for v in f.var:
                if v in defined:
                    raise ValueError(
                        f"variable '{v}' is defined twice in the joint: by {defined[v].prob_text} "
                        f"and by {f.prob_text}; rename one with replace_var"
                    )
                defined[v] = f
        var = [v for f in flat for v in f.var]
        cond: list[str] = []
        for f in flat:
            cond.extend(c for c in f.cond_var if c not in defined and c not in cond)
        super().__init__(var, cond, name or flat[0].name)
        self._factors = nn.ModuleList(flat)  # registers them; ``_flat`` is the same, typed
        self._flat: list[Distribution] = flat
        # a factor that reads its own variable (data standing for itself) makes that an input of the joint
        self._key_t = self._key_t + tuple(n for f in flat for n in f._key_t if n in f.var)
        self._order = self._topological(flat, defined)

    @staticmethod
    def _topological(flat: list[Distribution], defined: dict[str, Distribution]) -> list[Distribution]:
        order: list[Distribution] = []
        state: dict[int, int] = {}

        def visit(f: Distribution) -> None:
            s = state.get(id(f), 0)
            if s == 2:
                return
            if s == 1:
                raise ValueError(f"the joint's factors depend on each other in a cycle through {f.prob_text}")
            state[id(f)] = 1
            for c in f.cond_var:
                if c in defined:
                    visit(defined[c])
            state[id(f)] = 2
            order.append(f)

        for f in flat:
            visit(f)
        return order

    def factors(self) -> list[Distribution]:
        return list(self._flat)

    @property
    def prob_factorized_text(self) -> str:
        return f"{self.prob_text} = " + "".join(f.prob_text for f in self._flat)

    def __repr__(self) -> str:
        return self.prob_factorized_text

    def new_bindings(
        self, env: Env, sample_shape: Shape, batch_n: int | None, reparam: bool
    ) -> tuple[Binding, ...]:
        """Each factor draws (and memoises) its own variables into ``env``, in topological order."""
        drawn: set[str] = set()
        for f in self._order:
            own = () if any(c in drawn and env.sdims.get(c, 0) for c in f.cond_var) else sample_shape
            f.draw_into(env, own, batch_n, reparam)
            drawn.update(f.var)
        return _bindings(env, self.var)

    def log_prob_at(self, env: Env, detach_params: bool = False) -> torch.Tensor:
        total: torch.Tensor | None = None
        for f in self._flat:
            if f.has_density:
                lp = f.log_prob_at(env, detach_params)
                total = lp if total is None else total + lp
        if total is None:
            raise DeepGMError(f"{self.prob_factorized_text} has no factor with a density")
        return total

    def replace_var(self, **mapping: str) -> JointDistribution:
        self._check_mapping(mapping)
        parts = []
        for f in self._flat:
            own = {k: v for k, v in mapping.items() if k in f.var or k in f.cond_var}
            parts.append(f.replace_var(**own) if own else f)
        return JointDistribution(parts, self.name)


class MarginalizedDistribution(Distribution):
    """``p(x) = ∫ p(x, z) dz`` by sampling: ``sample`` draws all and returns the kept variables.

    Its log-density is not available in closed form; use ``log_likelihood`` to estimate it.
    """

    optional_conditions = True  # the base says which conditions it needs

    def __init__(self, base: Distribution, names: list[str]) -> None:
        for n in names:
            if n not in base.var:
                raise ValueError(f"{base.owner}: cannot marginalise '{n}', which is not one of {base.var}")
        kept = [v for v in base.var if v not in names]
        if not kept:
            raise ValueError(f"{base.owner}: marginalising {names} leaves no variable")
        super().__init__(kept, base.cond_var, base.name)
        self.base = base
        self.marginalized = names
        self._key_t = base._key_t

    @property
    def prob_factorized_text(self) -> str:
        inner = self.base.prob_factorized_text.split(" = ")[-1]
        return f"{self.prob_text} = \\int {inner} d{','.join(self.marginalized)}"

    def new_bindings(
        self, env: Env, sample_shape: Shape, batch_n: int | None, reparam: bool
    ) -> tuple[Binding, ...]:
        """The base draws in a scope of its own; only the kept variables are bound."""
        scope = env.child()
        self.base.draw_into(scope, sample_shape, batch_n, reparam)
        return _bindings(scope, self.var)

    def replace_var(self, **mapping: str) -> MarginalizedDistribution:
        self._check_mapping(mapping)
        return MarginalizedDistribution(self.base.replace_var(**mapping), self.marginalized)
