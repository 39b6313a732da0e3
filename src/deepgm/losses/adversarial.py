"""Two distributions compared through a discriminator: the machinery of every adversarial objective, and
the logistic density-ratio trick.

:class:`AdversarialLoss` is an expression node over two distributions of the same variables: ``p`` (the
data side, usually ``Empirical(["x"])`` standing for the inputs; label "real") and ``q`` (the model side,
e.g. ``p(x) = ∫ p(x|z) p(z) dz``; label "fake"). Evaluated, the node draws a batch from each (``q`` gets as
many draws as ``p`` gave, unless ``batch_n``), runs the discriminator ``D`` on both — ``D`` receives the
variables' values positionally in ``p.var`` order, then the condition variables ``cond`` (e.g. the labels
``y`` of a conditional GAN) — and returns one value per example: the *generator's* objective, to be
minimised (``.mean()`` it). :meth:`AdversarialLoss.discriminator_loss` is the discriminator's own objective
(a scalar, on detached draws) to be minimised by its own optimiser; ``deepgm.models.GAN`` (or
``AuxiliaryObjective``) steps it. A subclass gives four per-example terms, the generator's and the
discriminator's at ``r = D(x_p)`` and at ``f = D(x_q)`` (the GANs of :mod:`deepgm.losses.gan`).

The generator's terms on the data side (``r``) matter only where ``p`` has parameters (BiGAN/ALI's
encoder): they are evaluated then, or when ``data_terms=True`` (e.g. to read the minimax value
``2 JS - log 4``), and left out otherwise (``data_terms=None``).

**The density-ratio trick** (:class:`LogisticDiscriminator`, its one home): a classifier trained by
logistic regression to tell draws of ``p`` (label 1) from draws of ``q`` (label 0) has, at its optimum,
logit ``T(x) = log p(x)/q(x)``. The minimax, non-saturating and KL GANs are built on it, and so is
:class:`DensityRatio`, the estimate ``T(x)`` at draws of ``p`` (so ``DensityRatio(...).mean()`` estimates
``D_KL[p||q]``). FactorVAE's total correlation is ``DensityRatio(q, T, permute_dims=True)``: ``q(z)``
against the product of its marginals, whose draws are ``q``'s draws with every dimension shuffled
independently across the batch.

>>> from deepgm.distributions import Empirical, Normal
>>> data, model = Empirical(var=["x"]), Normal(var=["x"], loc=0.0, scale=1.0, features_shape=[2])
>>> ratio = DensityRatio(data, torch.nn.Linear(2, 1), q=model)  # log p_data(x)/q(x) at the data
>>> ratio({"x": torch.randn(5, 2)}).shape, ratio.discriminator_loss()({"x": torch.randn(5, 2)}).shape
(torch.Size([5]), torch.Size([]))
>>> str(ratio), str(ratio.discriminator_loss())
('log[p_{data}(x) / p(x)]', 'BCE[log[p_{data}(x) / p(x)]]')
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from deepgm.distributions.base import Distribution
from deepgm.distributions.env import Env
from deepgm.errors import ObjectiveError
from deepgm.losses.core import _check_dist, _count
from deepgm.losses.expr import Loss

__all__ = ["AdversarialLoss", "LogisticDiscriminator", "DensityRatio", "permute_dims", "draw_batch",
           "flatten_join", "batch_size_of", "Values"]

Values = tuple[torch.Tensor, ...]


def draw_batch(d: Distribution, env: Env, batch_n: int | None, detach: bool = False) -> Values:
    """Draw ``d`` in a child scope of ``env``; its variables' values in ``d.var`` order."""
    scope = env.child()
    d.draw_into(scope, (), batch_n, True)
    out = tuple(scope.values[v] for v in d.var)
    return tuple(t.detach() for t in out) if detach else out


def flatten_join(values: Values) -> torch.Tensor:
    """Values ``(B, ...)`` flattened and concatenated to one row per example, ``(B, D)``."""
    return torch.cat([t.reshape(t.shape[0] if t.dim() else 1, -1) for t in values], dim=1)


def batch_size_of(values: Values) -> int:
    """The batch size ``B`` of draws ``(B, ...)``; an error for a scalar draw."""
    t = values[0]
    if not torch.is_tensor(t) or t.dim() == 0:
        raise ObjectiveError("an adversarial objective needs batched draws (B, ...); got a scalar draw")
    return int(t.shape[0])


def permute_dims(z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shuffle every feature of ``z (B, D)`` independently across the batch: draws of ``Π_d q(z_d)``."""
    b = z.shape[0]
    flat = z.reshape(b, -1)
    idx = torch.argsort(torch.rand(flat.shape, generator=generator, device=z.device), dim=0)
    return flat.gather(0, idx).reshape(z.shape)


class AdversarialLoss(Loss):
    """The common machinery (see the module docstring); subclasses give the four per-example terms."""

    symbol: str = "GAN"

    def __init__(self, p: Distribution, q: Distribution, discriminator: nn.Module, *,
                 cond: Sequence[str] = (), batch_n: int | None = None, data_terms: bool | None = None) -> None:
        name = type(self).__name__
        self.p, self.q = _check_dist(p, name), _check_dist(q, name)
        if sorted(p.var) != sorted(q.var):
            raise ObjectiveError(
                f"{name}({p.prob_text}, {q.prob_text}): both must be over the same variables, got {p.var} and {q.var}"
            )
        if not isinstance(discriminator, nn.Module):
            raise ObjectiveError(f"{name}: the discriminator must be an nn.Module, got {type(discriminator).__name__}")
        self.discriminator = discriminator
        self.cond = tuple([cond] if isinstance(cond, str) else cond)
        self.batch_n = None if batch_n is None else _count(batch_n, f"{name}: batch_n")
        self.data_terms = data_terms

    # -- draws and the discriminator ------------------------------------------------------------------
    def _draws(self, env: Env, detach: bool = False) -> tuple[Values, Values, Values]:
        """(data-side values, model-side values, condition values), each in ``p.var`` order."""
        real = draw_batch(self.p, env, self.batch_n, detach)
        n = batch_size_of(real)
        scope = env.child()
        self.q.draw_into(scope, (), n, True)
        fake = tuple(scope.values[v] for v in self.p.var)
        if detach:
            fake = tuple(t.detach() for t in fake)
        if batch_size_of(fake) != n:
            raise ObjectiveError(
                f"{type(self).__name__}: {self.p.prob_text} gave {n} draws but {self.q.prob_text} gave "
                f"{batch_size_of(fake)}; the two sides must have the same batch size"
            )
        cond = tuple(env.get(c, f"{type(self).__name__} (condition of the discriminator)") for c in self.cond)
        return real, fake, cond

    def critic(self, *values: torch.Tensor) -> torch.Tensor:
        """The discriminator's raw output ``v``, one per example ``(B,)``."""
        out: torch.Tensor = self.discriminator(*values)
        if out.dim() > 1 and out[0].numel() != 1:
            raise ObjectiveError(
                f"{type(self).__name__}: the discriminator must return one value per example, got shape "
                f"{tuple(out.shape)}"
            )
        return out.reshape(out.shape[0])

    # -- the objective's terms (per example) --------------------------------------------------------------
    def generator_real(self, r: torch.Tensor) -> torch.Tensor:
        """The generator's term at ``r = D(x_p)``."""
        raise NotImplementedError

    def generator_fake(self, f: torch.Tensor) -> torch.Tensor:
        """The generator's term at ``f = D(x_q)``."""
        raise NotImplementedError

    def discriminator_real(self, r: torch.Tensor) -> torch.Tensor:
        """The discriminator's loss at ``r = D(x_p)``."""
        raise NotImplementedError

    def discriminator_fake(self, f: torch.Tensor) -> torch.Tensor:
        """The discriminator's loss at ``f = D(x_q)``."""
        raise NotImplementedError

    def penalty(self, real: Values, fake: Values, cond: Values) -> torch.Tensor | None:
        """An extra (per-example) term of the discriminator's loss, e.g. a gradient penalty."""
        return None

    def after_discriminator_step(self) -> None:
        """Called after every optimiser step of the discriminator (weight clipping)."""

    def log_ratio(self, *values: torch.Tensor) -> torch.Tensor:
        """``log p(x)/q(x)`` read off an optimal discriminator (where the objective defines it)."""
        raise ObjectiveError(f"{type(self).__name__}: its optimal discriminator does not give the density ratio")

    # -- the Loss interface ----------------------------------------------------------------------------
    def _uses_data_terms(self) -> bool:
        if self.data_terms is not None:
            return self.data_terms
        return any(w.requires_grad for w in self.p.parameters())

    def _eval(self, env: Env) -> Any:
        real, fake, cond = self._draws(env)
        out = self.generator_fake(self.critic(*fake, *cond))
        if self._uses_data_terms():
            out = out + self.generator_real(self.critic(*real, *cond))
        return out

    def discriminator_loss(self) -> Loss:
        """The discriminator's objective (a scalar) as an expression: :meth:`discriminator_value`."""
        return _DiscriminatorLoss(self)

    def discriminator_value(self, env: Env) -> torch.Tensor:
        """The discriminator's objective at ``env``: the mean of its per-example loss on detached draws."""
        real, fake, cond = self._draws(env, detach=True)
        loss = self.discriminator_real(self.critic(*real, *cond)) + self.discriminator_fake(self.critic(*fake, *cond))
        extra = self.penalty(real, fake, cond)
        if extra is not None:
            loss = loss + extra
        return loss.mean()

    def own_distributions(self) -> tuple[Distribution, ...]:
        return (self.p, self.q)

    def own_drawn(self) -> tuple[str, ...]:
        return tuple(self.p.var)

    def own_inputs(self) -> tuple[str, ...]:
        return tuple(self.p.cond_var + self.q.cond_var) + self.cond

    def _render(self, latex: bool) -> str:
        a, b = self.p.prob_text, self.q.prob_text
        if latex:
            return rf"\mathcal{{L}}^{{\mathrm{{{self.symbol}}}}}_{{G}}\left[{a}, {b}\right]"
        return f"{self.symbol}_G[{a}, {b}]"

    def _render_discriminator(self, latex: bool) -> str:
        a, b, s = self.p.prob_text, self.q.prob_text, self.symbol
        if latex:
            return rf"\mathcal{{L}}^{{\mathrm{{{s}}}}}_{{D}}\left[{a}, {b}\right]"
        return f"{s}_D[{a}, {b}]"


class _DiscriminatorLoss(Loss):
    def __init__(self, adv: AdversarialLoss) -> None:
        self.adv = adv

    def _eval(self, env: Env) -> Any:
        return self.adv.discriminator_value(env)

    def own_distributions(self) -> tuple[Distribution, ...]:
        return self.adv.own_distributions()

    def own_modules(self) -> tuple[nn.Module, ...]:
        return (self.adv.discriminator,)

    def own_inputs(self) -> tuple[str, ...]:
        return self.adv.own_inputs()

    def _render(self, latex: bool) -> str:
        return self.adv._render_discriminator(latex)


class LogisticDiscriminator(AdversarialLoss):
    """The density-ratio trick: the discriminator is a classifier trained by logistic regression, ``p``
    labelled 1 and ``q`` labelled 0 (``-log σ(r) - log(1 - σ(f))``), so at its optimum ``D = log p/q``."""

    def discriminator_real(self, r: torch.Tensor) -> torch.Tensor:
        return F.softplus(-r)  # -log σ(r)

    def discriminator_fake(self, f: torch.Tensor) -> torch.Tensor:
        return F.softplus(f)  # -log(1 - σ(f))

    def log_ratio(self, *values: torch.Tensor) -> torch.Tensor:
        return self.critic(*values)


class DensityRatio(LogisticDiscriminator):
    """``T(x) = log p(x)/q(x)`` at ``x ~ p`` as estimated by the classifier ``discriminator`` (a module
    mapping the variables' values, flattened and concatenated, to one logit per example). ``q`` is a
    distribution over the same variables, or the product of ``p``'s marginals (``permute_dims=True``:
    ``p``'s draws with every feature shuffled across the batch). Its :meth:`discriminator_loss` is the
    logistic loss that trains ``T``, with its own optimiser (:class:`deepgm.models.AuxiliaryObjective`).
    ``batch_n``: how many draws of ``p`` when it has no conditions to set the batch size."""

    def __init__(self, p: Distribution, discriminator: nn.Module, q: Distribution | None = None,
                 permute_dims: bool = False, batch_n: int | None = None) -> None:
        if (q is None) == (not permute_dims):
            raise ObjectiveError("DensityRatio: give either q or permute_dims=True")
        super().__init__(p, p if q is None else q, discriminator, batch_n=batch_n, data_terms=True)
        self.permute = permute_dims

    def _draws(self, env: Env, detach: bool = False) -> tuple[Values, Values, Values]:
        if not self.permute:
            return super()._draws(env, detach)
        real = draw_batch(self.p, env, self.batch_n, detach)
        return real, tuple(permute_dims(t) for t in real), ()

    def critic(self, *values: torch.Tensor) -> torch.Tensor:
        return super().critic(flatten_join(values))

    def generator_real(self, r: torch.Tensor) -> torch.Tensor:
        return r

    def generator_fake(self, f: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(f)

    def _eval(self, env: Env) -> Any:
        return self.critic(*draw_batch(self.p, env, self.batch_n))  # only p's side: T at x ~ p

    def own_distributions(self) -> tuple[Distribution, ...]:
        return (self.p,) if self.permute else (self.p, self.q)

    def own_inputs(self) -> tuple[str, ...]:
        return tuple(self.p.cond_var if self.permute else self.p.cond_var + self.q.cond_var)

    def _render(self, latex: bool) -> str:
        ref = r"\prod_j " + self.p.prob_text if self.permute else self.q.prob_text
        if latex:
            return rf"\log \frac{{{self.p.prob_text}}}{{{ref}}}"
        return f"log[{self.p.prob_text} / {ref.replace(chr(92), '')}]"

    def _render_discriminator(self, latex: bool) -> str:
        inner = self._render(latex)
        return rf"\mathrm{{BCE}}\left[{inner}\right]" if latex else f"BCE[{inner}]"
