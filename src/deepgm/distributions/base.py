"""Distributions over named variables: the common interface and the joint of several factors.

A distribution ``p(x|z)`` is an :class:`torch.nn.Module` that knows the names of the variables it is
over (``var``) and conditioned on (``cond_var``). Distributions multiply into joints (``p * q``),
rename variables (``replace_var``) and forget them (``marginalize_var``). Internally every method works
on an :class:`~deepgm.distributions.env.Env`; the public methods (``sample``, ``log_prob``) take and
return plain dicts of tensors.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from deepgm.distributions.env import Env
from deepgm.errors import DeepGMError

__all__ = ["Distribution", "JointDistribution", "MarginalizedDistribution", "as_shape"]

Shape = tuple[int, ...]


def as_shape(shape: int | Sequence[int] | torch.Size | None) -> Shape:
    """Normalise ``3``, ``[3]``, ``torch.Size([3])`` or ``None`` to a tuple of ints."""
    if shape is None:
        return ()
    if isinstance(shape, int):
        return (shape,)
    return tuple(int(s) for s in shape)


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

    Subclasses implement ``draw_into`` and ``log_prob_at``; everything else is shared.
    """

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

    # -- the internal interface (one evaluation, one Env) -----------------------------------------
    def draw_into(
        self, env: Env, sample_shape: Shape = (), batch_n: int | None = None, reparam: bool = True
    ) -> None:
        """Draw ``var`` given the conditioning values in ``env`` and bind them in ``env``."""
        raise NotImplementedError

    def log_prob_at(self, env: Env, detach_params: bool = False) -> torch.Tensor:
        """``log p(var|cond_var)`` at the values in ``env``, summed over event dimensions."""
        raise NotImplementedError(f"{self.owner} has no log-density")

    def factors(self) -> list[Distribution]:
        """The primitive factors of this distribution (itself, when it is not a joint)."""
        return [self]

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
        env = Env(inputs)
        self._check_inputs(env)
        self.draw_into(env, as_shape(sample_shape), batch_n, reparam)
        return env.values

    def log_prob(self, inputs: Mapping[str, Any]) -> torch.Tensor:
        """``log p(var|cond_var)`` summed over event dimensions: a ``(S, B, D)`` value gives ``(S, B)``."""
        env = Env(inputs)
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


class JointDistribution(Distribution):
    """The product of factors, ``p(x,z) = p(x|z) p(z)``: sampled in topological order.

    ``log_prob`` sums the factors' log-densities. A variable defined by two factors is an error.
    Deterministic factors (placing all mass on a function of their conditions) add nothing to it.
    """

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
        self._factors = nn.ModuleList(flat)
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
        return list(self._factors)

    @property
    def prob_factorized_text(self) -> str:
        return f"{self.prob_text} = " + "".join(f.prob_text for f in self._factors)

    def __repr__(self) -> str:
        return self.prob_factorized_text

    def draw_into(
        self, env: Env, sample_shape: Shape = (), batch_n: int | None = None, reparam: bool = True
    ) -> None:
        drawn: set[str] = set()
        for f in self._order:
            own = () if any(c in drawn and env.sdims.get(c, 0) for c in f.cond_var) else sample_shape
            f.draw_into(env, own, batch_n, reparam)
            drawn.update(f.var)

    def log_prob_at(self, env: Env, detach_params: bool = False) -> torch.Tensor:
        total: torch.Tensor | None = None
        for f in self._factors:
            if getattr(f, "has_density", True):
                lp = f.log_prob_at(env, detach_params)
                total = lp if total is None else total + lp
        if total is None:
            raise DeepGMError(f"{self.prob_factorized_text} has no factor with a density")
        return total

    def replace_var(self, **mapping: str) -> JointDistribution:
        self._check_mapping(mapping)
        parts = []
        for f in self._factors:
            own = {k: v for k, v in mapping.items() if k in f.var or k in f.cond_var}
            parts.append(f.replace_var(**own) if own else f)
        return JointDistribution(parts, self.name)


class MarginalizedDistribution(Distribution):
    """``p(x) = ∫ p(x, z) dz`` by sampling: ``sample`` draws all and returns the kept variables.

    Its log-density is not available in closed form; use ``log_likelihood`` to estimate it.
    """

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

    @property
    def prob_factorized_text(self) -> str:
        inner = self.base.prob_factorized_text.split(" = ")[-1]
        return f"{self.prob_text} = \\int {inner} d{','.join(self.marginalized)}"

    def draw_into(
        self, env: Env, sample_shape: Shape = (), batch_n: int | None = None, reparam: bool = True
    ) -> None:
        scope = env.child()
        self.base.draw_into(scope, sample_shape, batch_n, reparam)
        for v in self.var:
            env.set(v, scope.values[v], scope.sdims.get(v, 0))

    def replace_var(self, **mapping: str) -> MarginalizedDistribution:
        self._check_mapping(mapping)
        return MarginalizedDistribution(self.base.replace_var(**mapping), self.marginalized)
