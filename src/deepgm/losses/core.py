"""The basic terms: log-densities, expectations, divergences and entropies.

>>> import torch
>>> from deepgm.distributions import Normal
>>> q = Normal(var=["z"], cond_var=["x"], loc="x", scale=1.0, name="q")  # q(z|x) = N(z; x, 1)
>>> prior = Normal(var=["z"], loc=0.0, scale=1.0, features_shape=[1])
>>> x = torch.tensor([[0.0], [2.0]])
>>> KL(q, prior)(x=x)  # analytic: ½ x²
tensor([0., 2.])
>>> e = E(q, LogProb(prior))
>>> (e - e)(x=x)  # both sides share one draw of z: exactly zero
tensor([0., 0.])
>>> str(KL(q, prior) - e)
'D_KL[q(z|x)||p(z)] - E_{q(z|x)}[log p(z)]'
>>> round(float(Entropy(prior)()), 4)  # ½ log(2πe)
1.4189
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from deepgm.distributions.base import Distribution, as_sample_shape, positive_int
from deepgm.distributions.env import Env
from deepgm.distributions.family import Family
from deepgm.distributions.kl import analytic_kl_fn, has_analytic_kl
from deepgm.errors import ObjectiveError
from deepgm.losses.expr import Loss, as_loss

__all__ = ["LogProb", "Expectation", "E", "KL", "Entropy", "CrossEntropy", "mean_over_samples"]


def _count(value: Any, what: str, minimum: int = 1) -> int:
    """A count option of an objective (``k``, ``batch_n``...), refused at construction below ``minimum``."""
    return positive_int(value, what, minimum, ObjectiveError)


def _check_dist(d: Any, where: str) -> Distribution:
    if not isinstance(d, Distribution):
        raise ObjectiveError(f"{where} needs a distribution, got {type(d).__name__}")
    return d


def mean_over_samples(value: Any, sample_shape: tuple[int, ...]) -> Any:
    """Average the leading ``sample_shape`` dimensions of ``value`` (left alone if it lacks them)."""
    n = len(sample_shape)
    if n and torch.is_tensor(value) and tuple(value.shape[:n]) == sample_shape:
        return value.mean(tuple(range(n))) if n > 1 else value.mean(0)
    return value


class LogProb(Loss):
    """``log p(x|z)`` at the current values of its variables, summed over event dimensions."""

    def __init__(self, p: Distribution) -> None:
        self.p = _check_dist(p, "LogProb")

    def _eval(self, env: Env) -> torch.Tensor:
        return self.p.log_prob_at(env)

    def own_distributions(self) -> tuple[Distribution, ...]:
        return (self.p,)

    def _render(self, latex: bool) -> str:
        return (r"\log " if latex else "log ") + self.p.prob_text


class Expectation(Loss):
    """Shared by the nodes that draw ``q``'s variables and evaluate ``f`` at them (E, REINFORCE,
    Enumerate): ``q`` is drawn (so its variables are not inputs), ``f`` is the child."""

    q: Distribution
    f: Loss

    def children(self) -> tuple[Loss, ...]:
        return (self.f,)

    def own_distributions(self) -> tuple[Distribution, ...]:
        return (self.q,)

    def own_drawn(self) -> tuple[str, ...]:
        return tuple(self.q.var)

    def own_inputs(self) -> tuple[str, ...]:
        return tuple(self.q.cond_var)


class E(Expectation):
    """``E_{q(z|x)}[f]``: draw ``z`` from ``q`` (``sample_shape`` draws at once, vectorised: the draws
    are a leading dimension and every network runs on them as a batch), evaluate ``f``, average.

    Draws are shared with every other node asking for the same draw (see :mod:`deepgm.losses.expr`);
    ``independent=True`` gives this expectation draws of its own.
    """

    def __init__(self, q: Distribution, f: Loss | float, sample_shape: int | Sequence[int] = (),
                 reparam: bool = True, independent: bool = False) -> None:
        self.q = _check_dist(q, "E")
        self.f = as_loss(f)
        self.sample_shape = as_sample_shape(sample_shape, "E: sample_shape", ObjectiveError)
        self.reparam = reparam
        self.independent = independent

    def _eval(self, env: Env) -> Any:
        scope = env.child()
        if self.independent:
            scope.salt = id(self)
        self.q.draw_into(scope, self.sample_shape, None, self.reparam)
        value = self.f._eval(scope)
        return mean_over_samples(value, self.sample_shape) if self.sample_shape else value

    def _render(self, latex: bool) -> str:
        inner = self.f._render(latex)
        if latex:
            return rf"\mathbb{{E}}_{{{self.q.prob_text}}}\left[{inner}\right]"
        return f"E_{{{self.q.prob_text}}}[{inner}]"


class KL(Loss):
    """``D_KL[p||q] = E_p[log p - log q]``: analytic where the pair has a closed form
    (:func:`~deepgm.distributions.kl.has_analytic_kl`; ``analytic`` None or True), by Monte Carlo with
    ``sample_shape`` draws otherwise or when ``analytic=False``."""

    def __init__(self, p: Distribution, q: Distribution, analytic: bool | None = None,
                 sample_shape: int | Sequence[int] = ()) -> None:
        self.p, self.q = _check_dist(p, "KL"), _check_dist(q, "KL")
        if sorted(p.var) != sorted(q.var):
            raise ObjectiveError(
                f"KL({p.prob_text}, {q.prob_text}): both must be over the same variables, got {p.var} and {q.var}"
            )
        available = has_analytic_kl(p, q)
        if analytic and not available:
            raise ObjectiveError(
                f"KL({p.prob_text}, {q.prob_text}): no analytic form for {type(p).__name__} and "
                f"{type(q).__name__}; use analytic=False (Monte Carlo)"
            )
        self.analytic = available if analytic is None else analytic
        # specialised once for the pair (e.g. to a constant N(0, I) prior, the VAE's: fewer operations;
        # the prior's buffers are read here once, see analytic_kl_fn)
        self.analytic_fn = analytic_kl_fn(p, q) if self.analytic else None
        self.sample_shape = as_sample_shape(sample_shape, "KL: sample_shape", ObjectiveError)

    def _eval(self, env: Env) -> Any:
        p, q = self.p, self.q
        fn = self.analytic_fn
        if fn is not None:
            return fn(env)
        scope = env.child()
        p.draw_into(scope, self.sample_shape, None, True)
        return mean_over_samples(p.log_prob_at(scope) - q.log_prob_at(scope), self.sample_shape)

    def own_distributions(self) -> tuple[Distribution, ...]:
        return (self.p, self.q)

    def own_inputs(self) -> tuple[str, ...]:
        return tuple(self.p.cond_var + self.q.cond_var)

    def _render(self, latex: bool) -> str:
        a, b = self.p.prob_text, self.q.prob_text
        if latex:
            return rf"D_{{\mathrm{{KL}}}}\left[{a} \,\middle\|\, {b}\right]"
        return f"D_KL[{a}||{b}]"


class Entropy(Loss):
    """``H[p] = -E_p[log p]``: analytic where the family has it, else by Monte Carlo."""

    def __init__(self, p: Distribution, analytic: bool | None = None,
                 sample_shape: int | Sequence[int] = ()) -> None:
        self.p = _check_dist(p, "Entropy")
        self.analytic = isinstance(p, Family) if analytic is None else analytic
        self.sample_shape = as_sample_shape(sample_shape, "Entropy: sample_shape", ObjectiveError)

    def _eval(self, env: Env) -> Any:
        p = self.p
        if self.analytic:
            assert isinstance(p, Family)
            return p.sum_event(p.torch_dist(p.params_at(env)).entropy())
        scope = env.child()
        p.draw_into(scope, self.sample_shape, None, True)
        return mean_over_samples(-p.log_prob_at(scope), self.sample_shape)

    def own_distributions(self) -> tuple[Distribution, ...]:
        return (self.p,)

    def own_inputs(self) -> tuple[str, ...]:
        return tuple(self.p.cond_var)

    def _render(self, latex: bool) -> str:
        return (rf"H\left[{self.p.prob_text}\right]" if latex else f"H[{self.p.prob_text}]")


class CrossEntropy(Loss):
    """``H[p, q] = -E_p[log q]``; analytic as ``H[p] + D_KL[p||q]`` where both are available, else by
    Monte Carlo with ``sample_shape`` draws."""

    def __init__(self, p: Distribution, q: Distribution, analytic: bool | None = None,
                 sample_shape: int | Sequence[int] = ()) -> None:
        self.p, self.q = _check_dist(p, "CrossEntropy"), _check_dist(q, "CrossEntropy")
        ok = has_analytic_kl(p, q)
        self.analytic = ok if analytic is None else analytic
        if self.analytic and not ok:
            raise ObjectiveError(f"CrossEntropy({p.prob_text}, {q.prob_text}): no analytic form")
        # the analytic terms, built only in analytic mode
        self.terms: tuple[Entropy, KL] | None = (
            (Entropy(p, analytic=True), KL(p, q, analytic=True)) if self.analytic else None
        )
        self.sample_shape = as_sample_shape(sample_shape, "CrossEntropy: sample_shape", ObjectiveError)

    def _eval(self, env: Env) -> Any:
        if self.terms is not None:
            h, kl = self.terms
            return h._eval(env) + kl._eval(env)
        scope = env.child()
        self.p.draw_into(scope, self.sample_shape, None, True)
        return mean_over_samples(-self.q.log_prob_at(scope), self.sample_shape)

    def own_distributions(self) -> tuple[Distribution, ...]:
        return (self.p, self.q)

    def own_inputs(self) -> tuple[str, ...]:
        return tuple(self.p.cond_var + self.q.cond_var)

    def _render(self, latex: bool) -> str:
        a, b = self.p.prob_text, self.q.prob_text
        return rf"H\left[{a}, {b}\right]" if latex else f"H[{a}, {b}]"
