"""Objectives as expression trees: they evaluate, differentiate (through torch) and print.

Every node implements ``_eval(env) -> Tensor`` and ``_render(latex) -> str``. Arithmetic with numbers
and other expressions builds new nodes; ``str(loss)`` gives a compact text form and ``loss.to_latex()``
the LaTeX one.

**When do expectations share samples?** Within one evaluation, a distribution drawn with the same
conditioning values, sample shape and ``reparam`` flag gives the *same* draw, whichever node asks for it
(``E``, a Monte Carlo ``KL``, ``ELBO``...). So ``E(q, f) - E(q, g)`` equals ``E(q, f - g)`` exactly, and
``E(q, f) - E(q, f)`` is zero. An expectation built with ``independent=True`` draws its own samples.
Nothing is shared between two evaluations: every call draws afresh.

>>> beta = Parameter("beta")
>>> loss = 1 - beta * 3
>>> str(loss), loss.input_var, float(loss(beta=0.5))
('1 - beta * 3', ['beta'], -0.5)
>>> print((maximum(loss, 0.0) / 2).to_latex())
\\max\\left(1 - \\beta \\cdot 3, 0\\right) / 2
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from deepgm.distributions.base import Distribution
from deepgm.distributions.env import Env
from deepgm.errors import ObjectiveError

__all__ = ["Loss", "Constant", "Parameter", "as_loss", "minimum", "maximum"]

Number = int | float

_PREC_ADD, _PREC_MUL, _PREC_UNARY, _PREC_ATOM = 1, 2, 3, 4


class Loss:
    """An objective: evaluate with ``loss(inputs)`` / ``loss.eval(inputs)``; combine with + − × ÷."""

    precedence: int = _PREC_ATOM

    # -- evaluation ---------------------------------------------------------------------------------
    def eval(self, inputs: Mapping[str, Any] | None = None, **values: Any) -> torch.Tensor:
        """The value of the objective at ``inputs`` (a dict of named tensors and parameters)."""
        if values:
            inputs = {**(inputs or {}), **values}
        out = self._eval(Env(inputs, self))
        return out if torch.is_tensor(out) else torch.as_tensor(out)

    __call__ = eval

    def _eval(self, env: Env) -> Any:
        raise NotImplementedError

    # -- structure ------------------------------------------------------------------------------------
    def children(self) -> tuple[Loss, ...]:
        """The sub-expressions of this node."""
        return ()

    def own_distributions(self) -> tuple[Distribution, ...]:
        """The distributions this node itself refers to."""
        return ()

    def own_modules(self) -> tuple[torch.nn.Module, ...]:
        """Modules with parameters that this node itself owns (e.g. a discriminator)."""
        return ()

    def walk(self) -> list[Loss]:
        """Every node of the expression, this one first."""
        out: list[Loss] = [self]
        for c in self.children():
            out.extend(c.walk())
        return out

    @property
    def distributions(self) -> list[Distribution]:
        """The distributions the objective uses, each once."""
        seen: dict[int, Distribution] = {}
        for node in self.walk():
            for d in node.own_distributions():
                seen.setdefault(id(d), d)
        return list(seen.values())

    @property
    def input_var(self) -> list[str]:
        """Names the inputs must provide: conditions not drawn inside the objective, and parameters."""
        needed: list[str] = []
        drawn = {name for node in self.walk() for name in node.own_drawn()}
        for node in self.walk():
            for name in node.own_inputs():
                if name not in drawn and name not in needed:
                    needed.append(name)
        return needed

    def own_drawn(self) -> tuple[str, ...]:
        """Variable names this node draws itself (e.g. ``z`` in ``E(q(z|x), f)``)."""
        return ()

    def own_inputs(self) -> tuple[str, ...]:
        """Variable and parameter names this node reads."""
        names: list[str] = []
        for d in self.own_distributions():
            names.extend(d.cond_var + d.var)
        return tuple(names)

    # -- text -------------------------------------------------------------------------------------------
    def _render(self, latex: bool) -> str:
        raise NotImplementedError

    def _wrapped(self, latex: bool, prec: int) -> str:
        s = self._render(latex)
        if self.precedence < prec:
            return rf"\left({s}\right)" if latex else f"({s})"
        return s

    def to_latex(self) -> str:
        """The objective in LaTeX."""
        return self._render(True)

    def __str__(self) -> str:
        return self._render(False)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._render(False)})"

    def _repr_latex_(self) -> str:
        return f"${self.to_latex()}$"

    # -- algebra ----------------------------------------------------------------------------------------
    def __add__(self, other: Loss | Number) -> Loss:
        return BinaryOp("+", self, as_loss(other))

    def __radd__(self, other: Number) -> Loss:
        return BinaryOp("+", as_loss(other), self)

    def __sub__(self, other: Loss | Number) -> Loss:
        return BinaryOp("-", self, as_loss(other))

    def __rsub__(self, other: Number) -> Loss:
        return BinaryOp("-", as_loss(other), self)

    def __mul__(self, other: Loss | Number) -> Loss:
        return BinaryOp("*", self, as_loss(other))

    def __rmul__(self, other: Number) -> Loss:
        return BinaryOp("*", as_loss(other), self)

    def __truediv__(self, other: Loss | Number) -> Loss:
        return BinaryOp("/", self, as_loss(other))

    def __rtruediv__(self, other: Number) -> Loss:
        return BinaryOp("/", as_loss(other), self)

    def __neg__(self) -> Loss:
        return Unary("neg", self)

    def __abs__(self) -> Loss:
        return Unary("abs", self)

    def abs(self) -> Loss:
        """``|f|`` elementwise."""
        return Unary("abs", self)

    def mean(self) -> Loss:
        """The mean over all remaining (data) dimensions."""
        return Unary("mean", self)

    def sum(self) -> Loss:
        """The sum over all remaining (data) dimensions."""
        return Unary("sum", self)

    def detach(self) -> Loss:
        """The same value, with no gradient flowing through it."""
        return Unary("detach", self)

    def __bool__(self) -> bool:
        raise ObjectiveError("an objective has no truth value; evaluate it with loss(inputs) first")


def as_loss(value: Loss | Number | torch.Tensor) -> Loss:
    """An expression for ``value``: expressions pass through, numbers become constants."""
    if isinstance(value, Loss):
        return value
    if isinstance(value, Distribution):
        raise ObjectiveError(
            f"{value.prob_text} is a distribution, not an objective; did you mean LogProb({value.name})?"
        )
    if isinstance(value, (int, float)) or torch.is_tensor(value):
        return Constant(value)
    raise ObjectiveError(f"cannot use a {type(value).__name__} in an objective")


class Constant(Loss):
    """A number in an expression."""

    def __init__(self, value: Number | torch.Tensor) -> None:
        self.value = value

    def _eval(self, env: Env) -> Any:
        return self.value

    def _render(self, latex: bool) -> str:
        v = self.value
        if torch.is_tensor(v):
            if v.numel() != 1:
                return "c"
            v = v.item()
        return f"{v:g}" if isinstance(v, float) else str(v)


class Parameter(Loss):
    """A named scalar input such as β or an annealing weight: ``loss(inputs, beta=0.5)``."""

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"Parameter needs a non-empty name, got {name!r}")
        self.name = name

    def _eval(self, env: Env) -> Any:
        return env.get(self.name, f"Parameter('{self.name}')")

    def own_inputs(self) -> tuple[str, ...]:
        return (self.name,)

    def _render(self, latex: bool) -> str:
        greek = {"alpha", "beta", "gamma", "delta", "lambda", "mu", "sigma", "tau", "eta", "kappa"}
        return f"\\{self.name}" if latex and self.name in greek else self.name


_BINARY: dict[str, tuple[int, Callable[[Any, Any], Any], str]] = {
    "+": (_PREC_ADD, lambda a, b: a + b, "+"),
    "-": (_PREC_ADD, lambda a, b: a - b, "-"),
    "*": (_PREC_MUL, lambda a, b: a * b, r"\cdot"),
    "/": (_PREC_MUL, lambda a, b: a / b, "/"),
}


class BinaryOp(Loss):
    """``a ∘ b`` for ∘ in + − × ÷ (elementwise, broadcasting)."""

    def __init__(self, op: str, left: Loss, right: Loss) -> None:
        self.op, self.left, self.right = op, left, right
        self.precedence, self._fn, self._latex_op = _BINARY[op]

    def _eval(self, env: Env) -> Any:
        return self._fn(self.left._eval(env), self.right._eval(env))

    def children(self) -> tuple[Loss, ...]:
        return (self.left, self.right)

    def _render(self, latex: bool) -> str:
        p = self.precedence
        left = self.left._wrapped(latex, p)
        # a - (b + c), a / (b * c): the right operand needs brackets at equal precedence
        right = self.right._wrapped(latex, p + (self.op in "-/"))
        op = self._latex_op if latex else self.op
        return f"{left} {op} {right}"


def _mean(x: Any) -> Any:
    return x.mean() if torch.is_tensor(x) else x


def _sum(x: Any) -> Any:
    return x.sum() if torch.is_tensor(x) else x


_UNARY: dict[str, tuple[Callable[[Any], Any], str, str]] = {
    "neg": (lambda x: -x, "-{}", "-{}"),
    "abs": (lambda x: abs(x), "|{}|", r"\left|{}\right|"),
    "mean": (_mean, "mean({})", r"\operatorname{{mean}}\left({}\right)"),
    "sum": (_sum, "sum({})", r"\sum\left({}\right)"),
    "detach": (lambda x: x.detach() if torch.is_tensor(x) else x, "sg[{}]", r"\operatorname{{sg}}\left[{}\right]"),
}


class Unary(Loss):
    """``-f``, ``|f|``, ``mean(f)``, ``sum(f)``, ``sg[f]`` (stop-gradient)."""

    def __init__(self, op: str, arg: Loss) -> None:
        self.op, self.arg = op, arg
        self._fn, self._text, self._latex = _UNARY[op]
        self.precedence = _PREC_UNARY if op == "neg" else _PREC_ATOM

    def _eval(self, env: Env) -> Any:
        return self._fn(self.arg._eval(env))

    def children(self) -> tuple[Loss, ...]:
        return (self.arg,)

    def _render(self, latex: bool) -> str:
        if self.op == "neg":
            return "-" + self.arg._wrapped(latex, _PREC_UNARY + 1)
        inner = self.arg._render(latex)
        return (self._latex if latex else self._text).format(inner)


class _MinMax(Loss):
    def __init__(self, op: str, left: Loss, right: Loss) -> None:
        self.op, self.left, self.right = op, left, right

    def _eval(self, env: Env) -> Any:
        a, b = self.left._eval(env), self.right._eval(env)
        if not torch.is_tensor(a) and not torch.is_tensor(b):
            return min(a, b) if self.op == "min" else max(a, b)
        a, b = torch.as_tensor(a), torch.as_tensor(b)
        return torch.minimum(a, b) if self.op == "min" else torch.maximum(a, b)

    def children(self) -> tuple[Loss, ...]:
        return (self.left, self.right)

    def _render(self, latex: bool) -> str:
        a, b = self.left._render(latex), self.right._render(latex)
        return rf"\{self.op}\left({a}, {b}\right)" if latex else f"{self.op}({a}, {b})"


def minimum(a: Loss | Number, b: Loss | Number) -> Loss:
    """``min(a, b)`` elementwise."""
    return _MinMax("min", as_loss(a), as_loss(b))


def maximum(a: Loss | Number, b: Loss | Number) -> Loss:
    """``max(a, b)`` elementwise."""
    return _MinMax("max", as_loss(a), as_loss(b))
