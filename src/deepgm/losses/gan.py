"""Adversarial objectives: a discriminator (critic) estimates how the model ``q`` differs from the data ``p``.

Every objective here is an expression node over two distributions of the same variables: ``p`` (the
data side, usually ``Empirical(["x"])`` standing for the inputs; label "real") and ``q`` (the model side,
e.g. ``p(x) = ∫ p(x|z) p(z) dz``; label "fake"). Evaluated, the node draws a batch from each (``q`` gets as
many draws as ``p`` gave, unless ``batch_n``), runs the discriminator ``D`` on both — ``D`` receives the
variables' values positionally in ``p.var`` order, then the condition variables ``cond`` (e.g. the labels
``y`` of a conditional GAN) — and returns one value per example: the *generator's* objective, to be
minimised (``.mean()`` it). :meth:`AdversarialLoss.discriminator_loss` is the discriminator's own objective
(a scalar, on detached draws) to be minimised by its own optimiser; ``deepgm.models.GAN`` (or
``AuxiliaryObjective``) steps it. With ``r = D(x_p)`` and ``f = D(x_q)``:

==================  ==========================================  ==========================================
objective           discriminator minimises                     generator minimises (per example)
==================  ==========================================  ==========================================
``MinimaxGAN``      ``softplus(-r) + softplus(f)`` (BCE)         ``log σ(r) + log(1 - σ(f))``  (JS form)
``NonSaturatingGAN``  the same BCE                               ``-log(1 - σ(r)) - log σ(f)``
``KLGAN``           the same BCE, so ``r → log p/q``             ``-f`` (``≈ log q/p``: ``D_KL[q||p]``)
``Wasserstein``     ``f - r`` (+ clip or ``λ(‖∇D(x̂)‖ - 1)²``)   ``r - f``
``LeastSquaresGAN`` ``½(r - 1)² + ½ f²``                         ``½ r² + ½(f - 1)²``
``HingeGAN``        ``relu(1 - r) + relu(1 + f)``                ``r - f``
``FGAN``            ``-g_f(r) + f*(g_f(f))``                     ``g_f(r) - f*(g_f(f))``
==================  ==========================================  ==========================================

The generator's terms on the data side (``r``) matter only where ``p`` has parameters (BiGAN/ALI's
encoder): they are evaluated then, or when ``data_terms=True`` (e.g. to read the minimax value
``2 JS - log 4``), and left out otherwise (``data_terms=None``).

Moment matching needs no discriminator: :class:`MMDMixture` is ``MMD²`` with a mixture of Gaussian
kernels (GMMN), optionally on learned features (MMD-GAN, with its critic objective).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from deepgm.distributions.base import Distribution
from deepgm.distributions.env import Env
from deepgm.errors import ObjectiveError
from deepgm.losses.core import Expectation, _check_dist
from deepgm.losses.expr import Loss, as_loss

__all__ = [
    "AdversarialLoss", "MinimaxGAN", "NonSaturatingGAN", "KLGAN", "Wasserstein", "LeastSquaresGAN",
    "HingeGAN", "FGAN", "FDivergence", "F_DIVERGENCES", "gradient_penalty", "MMDMixture",
    "mmd2_mixture", "BatchE", "draw_batch",
]

Values = tuple[torch.Tensor, ...]


def draw_batch(d: Distribution, env: Env, batch_n: int | None, detach: bool = False) -> Values:
    """Draw ``d`` in a child scope of ``env``; its variables' values in ``d.var`` order."""
    scope = env.child()
    d.draw_into(scope, (), batch_n, True)
    out = tuple(scope.values[v] for v in d.var)
    return tuple(t.detach() for t in out) if detach else out


def _batch_size(values: Values) -> int:
    t = values[0]
    if not torch.is_tensor(t) or t.dim() == 0:
        raise ObjectiveError("an adversarial objective needs batched draws (B, ...); got a scalar draw")
    return int(t.shape[0])


class AdversarialLoss(Loss):
    """The common machinery (see the module docstring); subclasses give the four per-example terms."""

    symbol: ClassVar[str] = "GAN"

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
        self.batch_n = batch_n
        self.data_terms = data_terms

    # -- draws and the discriminator ------------------------------------------------------------------
    def _draws(self, env: Env, detach: bool = False) -> tuple[Values, Values, Values]:
        """(data-side values, model-side values, condition values), each in ``p.var`` order."""
        real = draw_batch(self.p, env, self.batch_n, detach)
        n = _batch_size(real)
        scope = env.child()
        self.q.draw_into(scope, (), n, True)
        fake = tuple(scope.values[v] for v in self.p.var)
        if detach:
            fake = tuple(t.detach() for t in fake)
        if _batch_size(fake) != n:
            raise ObjectiveError(
                f"{type(self).__name__}: {self.p.prob_text} gave {n} draws but {self.q.prob_text} gave "
                f"{_batch_size(fake)}; the two sides must have the same batch size"
            )
        cond = tuple(env.get(c, f"{type(self).__name__} (condition of the discriminator)") for c in self.cond)
        return real, fake, cond

    def critic(self, *values: torch.Tensor) -> torch.Tensor:
        """The discriminator's raw output ``v``, one per example ``(B,)``."""
        out = self.discriminator(*values)
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
        """The discriminator's objective: the mean of its per-example loss on detached draws (a scalar)."""
        return _DiscriminatorLoss(self)

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


class _DiscriminatorLoss(Loss):
    def __init__(self, adv: AdversarialLoss) -> None:
        self.adv = adv

    def _eval(self, env: Env) -> Any:
        a = self.adv
        real, fake, cond = a._draws(env, detach=True)
        loss = a.discriminator_real(a.critic(*real, *cond)) + a.discriminator_fake(a.critic(*fake, *cond))
        extra = a.penalty(real, fake, cond)
        if extra is not None:
            loss = loss + extra
        return loss.mean()

    def own_distributions(self) -> tuple[Distribution, ...]:
        return self.adv.own_distributions()

    def own_modules(self) -> tuple[nn.Module, ...]:
        return (self.adv.discriminator,)

    def own_inputs(self) -> tuple[str, ...]:
        return self.adv.own_inputs()

    def _render(self, latex: bool) -> str:
        a, b, s = self.adv.p.prob_text, self.adv.q.prob_text, self.adv.symbol
        if latex:
            return rf"\mathcal{{L}}^{{\mathrm{{{s}}}}}_{{D}}\left[{a}, {b}\right]"
        return f"{s}_D[{a}, {b}]"


class _LogisticDiscriminator(AdversarialLoss):
    """The discriminator is a classifier trained by logistic regression: at its optimum ``D = log p/q``."""

    def discriminator_real(self, r: torch.Tensor) -> torch.Tensor:
        return F.softplus(-r)  # -log σ(r)

    def discriminator_fake(self, f: torch.Tensor) -> torch.Tensor:
        return F.softplus(f)  # -log(1 - σ(f))

    def log_ratio(self, *values: torch.Tensor) -> torch.Tensor:
        return self.critic(*values)


class MinimaxGAN(_LogisticDiscriminator):
    """Goodfellow et al.'s minimax game ``min_G max_D E_p log σ(D) + E_q log(1 - σ(D))``; at the optimal
    ``D`` the value is ``2 JS(p, q) - log 4``."""

    symbol = "JS"

    def generator_real(self, r: torch.Tensor) -> torch.Tensor:
        return -F.softplus(-r)

    def generator_fake(self, f: torch.Tensor) -> torch.Tensor:
        return -F.softplus(f)


class NonSaturatingGAN(_LogisticDiscriminator):
    """The non-saturating generator loss ``-log σ(D(x_q))`` (labels swapped: ``-log(1-σ(D(x_p)))`` on the
    data side, which matters only for an encoder, BiGAN/ALI)."""

    symbol = "NS"

    def generator_real(self, r: torch.Tensor) -> torch.Tensor:
        return F.softplus(r)

    def generator_fake(self, f: torch.Tensor) -> torch.Tensor:
        return F.softplus(-f)


class KLGAN(_LogisticDiscriminator):
    """``D_KL[q||p] = E_q[log q/p] ≈ E_q[-D(x)]`` with ``D ≈ log p/q`` by logistic regression."""

    symbol = "KL"

    def generator_real(self, r: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(r)

    def generator_fake(self, f: torch.Tensor) -> torch.Tensor:
        return -f


def gradient_penalty(critic: Callable[..., torch.Tensor], real: Values, fake: Values, cond: Values = (),
                     target: float = 1.0, eps: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(‖∇_x̂ D(x̂)‖ - target)²`` per example at ``x̂ = ε x_p + (1 - ε) x_q``, ``ε ~ U[0, 1]`` per example
    (the same ε for every variable; conditions are not interpolated). The norm is over all the
    interpolated variables of one example. Returns ``(penalty (B,), gradient norm (B,))``; the graph is
    kept (``create_graph``) so the penalty trains the critic."""
    n = _batch_size(real)
    if eps is None:
        eps = torch.rand(n, device=real[0].device, dtype=real[0].dtype)
    inter = []
    for a, b in zip(real, fake):
        if not a.is_floating_point():
            raise ObjectiveError("gradient_penalty: the interpolated variables must be floating point")
        e = eps.reshape((n,) + (1,) * (a.dim() - 1))
        inter.append((e * a + (1 - e) * b).detach().requires_grad_(True))
    out = critic(*inter, *cond)
    grads = torch.autograd.grad(out.sum(), inter, create_graph=True)
    sq = sum(g.reshape(n, -1).pow(2).sum(1) for g in grads)
    norm = torch.sqrt(sq + 1e-12)
    return (norm - target) ** 2, norm


class Wasserstein(AdversarialLoss):
    """The Wasserstein-1 distance by its dual ``max_{‖D‖_L ≤ 1} E_p D - E_q D``: the critic minimises
    ``E_q D - E_p D``, kept Lipschitz by clipping its weights to ``[-clip, clip]`` after every step (WGAN)
    or by the gradient penalty ``gp_weight · (‖∇D(x̂)‖ - 1)²`` at interpolates (WGAN-GP)."""

    symbol = "W"

    def __init__(self, p: Distribution, q: Distribution, critic: nn.Module, *, clip: float | None = None,
                 gp_weight: float | None = None, cond: Sequence[str] = (), batch_n: int | None = None,
                 data_terms: bool | None = None) -> None:
        super().__init__(p, q, critic, cond=cond, batch_n=batch_n, data_terms=data_terms)
        if clip is None and gp_weight is None:
            raise ObjectiveError("Wasserstein: give clip (WGAN) or gp_weight (WGAN-GP) to keep the critic Lipschitz")
        if clip is not None and clip <= 0:
            raise ObjectiveError(f"Wasserstein: clip must be > 0, got {clip}")
        if gp_weight is not None and gp_weight < 0:
            raise ObjectiveError(f"Wasserstein: gp_weight must be >= 0, got {gp_weight}")
        self.clip, self.gp_weight = clip, gp_weight
        if gp_weight is not None:
            self.symbol = "WGP"

    def generator_real(self, r: torch.Tensor) -> torch.Tensor:
        return r

    def generator_fake(self, f: torch.Tensor) -> torch.Tensor:
        return -f

    def discriminator_real(self, r: torch.Tensor) -> torch.Tensor:
        return -r

    def discriminator_fake(self, f: torch.Tensor) -> torch.Tensor:
        return f

    def penalty(self, real: Values, fake: Values, cond: Values) -> torch.Tensor | None:
        if not self.gp_weight:
            return None
        pen, _ = gradient_penalty(self.critic, real, fake, cond)
        return self.gp_weight * pen

    @torch.no_grad()
    def after_discriminator_step(self) -> None:
        if self.clip is not None:
            for w in self.discriminator.parameters():
                w.clamp_(-self.clip, self.clip)


class LeastSquaresGAN(AdversarialLoss):
    """LSGAN (Mao et al. 2017) with labels ``a = 0`` (fake), ``b = 1`` (real), ``c = 1``: the optimal
    ``D = p/(p + q)``, so ``log D/(1 - D) = log p/q``."""

    symbol = "LS"

    def generator_real(self, r: torch.Tensor) -> torch.Tensor:
        return 0.5 * r.pow(2)

    def generator_fake(self, f: torch.Tensor) -> torch.Tensor:
        return 0.5 * (f - 1).pow(2)

    def discriminator_real(self, r: torch.Tensor) -> torch.Tensor:
        return 0.5 * (r - 1).pow(2)

    def discriminator_fake(self, f: torch.Tensor) -> torch.Tensor:
        return 0.5 * f.pow(2)

    def log_ratio(self, *values: torch.Tensor) -> torch.Tensor:
        d = self.critic(*values).clamp(1e-6, 1 - 1e-6)
        return torch.log(d) - torch.log1p(-d)


class HingeGAN(AdversarialLoss):
    """The hinge loss (Lim & Ye 2017; Miyato et al. 2018): the optimal ``D`` is ``sign(log p/q)``."""

    symbol = "hinge"

    def generator_real(self, r: torch.Tensor) -> torch.Tensor:
        return r

    def generator_fake(self, f: torch.Tensor) -> torch.Tensor:
        return -f

    def discriminator_real(self, r: torch.Tensor) -> torch.Tensor:
        return F.relu(1 - r)

    def discriminator_fake(self, f: torch.Tensor) -> torch.Tensor:
        return F.relu(1 + f)


# -- f-GAN ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FDivergence:
    """``D_f(P||Q) = E_Q f(p/q)`` with its variational bound ``≥ E_P T - E_Q f*(T)``, ``T = g_f(v)``.

    ``f`` the generator function (convex, ``f(1) = 0``), ``f_prime`` its derivative (``T* = f'(p/q)``),
    ``activation`` the output activation ``g_f`` (onto the domain of ``f*``), ``conjugate`` ``f*``, and
    ``log_ratio`` ``log p/q`` as a function of ``T*`` (the inverse of ``f'`` composed with log), and
    ``conjugate_at`` ``v ↦ f*(g_f(v))`` in a numerically stable form (what the objectives evaluate)."""

    name: str
    f: Callable[[torch.Tensor], torch.Tensor]
    f_prime: Callable[[torch.Tensor], torch.Tensor]
    activation: Callable[[torch.Tensor], torch.Tensor]
    conjugate: Callable[[torch.Tensor], torch.Tensor]
    log_ratio: Callable[[torch.Tensor], torch.Tensor]
    conjugate_at: Callable[[torch.Tensor], torch.Tensor]


_LOG2 = math.log(2.0)

F_DIVERGENCES: dict[str, FDivergence] = {
    # KL(P||Q): f = u log u, g_f(v) = v, f*(t) = exp(t - 1), T* = 1 + log(p/q)
    "kl": FDivergence("kl", lambda u: u * torch.log(u), lambda u: 1 + torch.log(u), lambda v: v,
                      lambda t: torch.exp(t - 1), lambda t: t - 1, lambda v: torch.exp(v - 1)),
    # KL(Q||P): f = -log u, g_f(v) = -exp(-v), f*(t) = -1 - log(-t), T* = -q/p
    "reverse_kl": FDivergence("reverse_kl", lambda u: -torch.log(u), lambda u: -1 / u, lambda v: -torch.exp(-v),
                              lambda t: -1 - torch.log(-t), lambda t: -torch.log(-t), lambda v: v - 1),
    # Pearson χ²: f = (u - 1)², g_f(v) = v, f*(t) = t²/4 + t, T* = 2(p/q - 1)
    "pearson": FDivergence("pearson", lambda u: (u - 1) ** 2, lambda u: 2 * (u - 1), lambda v: v,
                           lambda t: t**2 / 4 + t, lambda t: torch.log1p(t / 2), lambda v: v**2 / 4 + v),
    # Jensen–Shannon: f = -(u + 1) log((1 + u)/2) + u log u, g_f(v) = log 2 - log(1 + e^{-v}),
    # f*(t) = -log(2 - e^t), T* = log(2u/(1 + u))
    "js": FDivergence("js", lambda u: -(u + 1) * torch.log((1 + u) / 2) + u * torch.log(u),
                      lambda u: torch.log(2 * u / (1 + u)), lambda v: _LOG2 - F.softplus(-v),
                      lambda t: -torch.log(2 - torch.exp(t)), lambda t: t - torch.log(2 - torch.exp(t)),
                      lambda v: F.softplus(v) - _LOG2),
}


class FGAN(AdversarialLoss):
    """f-GAN (Nowozin et al. 2016): ``min_q max_T E_p[T] - E_q[f*(T)]``, ``T = g_f(D(x))``, a lower bound
    of ``D_f(p||q)`` tight at ``T* = f'(p/q)``. ``divergence`` is one of ``kl``, ``reverse_kl``,
    ``pearson``, ``js`` (see :data:`F_DIVERGENCES`)."""

    def __init__(self, p: Distribution, q: Distribution, discriminator: nn.Module, divergence: str = "js", *,
                 cond: Sequence[str] = (), batch_n: int | None = None, data_terms: bool | None = None) -> None:
        super().__init__(p, q, discriminator, cond=cond, batch_n=batch_n, data_terms=data_terms)
        if divergence not in F_DIVERGENCES:
            raise ObjectiveError(f"FGAN: unknown divergence {divergence!r}; expected one of {sorted(F_DIVERGENCES)}")
        self.fdiv = F_DIVERGENCES[divergence]
        self.symbol = f"f-{divergence}".replace("_", "-")

    def T(self, *values: torch.Tensor) -> torch.Tensor:
        """The variational function ``T(x) = g_f(D(x))``."""
        return self.fdiv.activation(self.critic(*values))

    def generator_real(self, r: torch.Tensor) -> torch.Tensor:
        return self.fdiv.activation(r)

    def generator_fake(self, f: torch.Tensor) -> torch.Tensor:
        return -self.fdiv.conjugate_at(f)

    def discriminator_real(self, r: torch.Tensor) -> torch.Tensor:
        return -self.fdiv.activation(r)

    def discriminator_fake(self, f: torch.Tensor) -> torch.Tensor:
        return self.fdiv.conjugate_at(f)

    def log_ratio(self, *values: torch.Tensor) -> torch.Tensor:
        return self.fdiv.log_ratio(self.T(*values))


# -- moment matching ----------------------------------------------------------------------------------------
def mmd2_mixture(x: torch.Tensor, y: torch.Tensor, bandwidths: Sequence[float] = (0.5, 1.0, 2.0, 4.0),
                 relative: bool = True) -> torch.Tensor:
    """Unbiased ``MMD²`` with the kernel ``k = Σ_h exp(-‖x - y‖² / (2 h²))`` summed over ``bandwidths``.

    ``relative=True`` scales every ``h`` by the median-heuristic bandwidth of ``y`` (``h₀² = median ‖·‖²/2``,
    detached), so the mixture follows the data's scale. ``x (n, ...)`` and ``y (m, ...)`` are flattened."""
    x, y = x.reshape(x.shape[0], -1), y.reshape(y.shape[0], -1)
    if x.shape[1] != y.shape[1]:
        raise ObjectiveError(f"mmd2_mixture: samples have {x.shape[1]} and {y.shape[1]} features")
    n, m = x.shape[0], y.shape[0]
    if n < 2 or m < 2:
        raise ObjectiveError(f"mmd2_mixture: needs at least 2 samples from each side, got {n} and {m}")
    if not bandwidths:
        raise ObjectiveError("mmd2_mixture: give at least one bandwidth")
    dxx, dyy, dxy = torch.cdist(x, x).pow(2), torch.cdist(y, y).pow(2), torch.cdist(x, y).pow(2)
    scale = 1.0
    if relative:
        off = dyy.detach()[~torch.eye(m, dtype=torch.bool, device=y.device)]
        scale = float((off.median() / 2).clamp_min(1e-12).sqrt())
    kxx = kyy = kxy = 0.0
    for h in bandwidths:
        g = 1.0 / (2 * (h * scale) ** 2)
        kxx = kxx + torch.exp(-g * dxx)
        kyy = kyy + torch.exp(-g * dyy)
        kxy = kxy + torch.exp(-g * dxy)
    assert torch.is_tensor(kxx) and torch.is_tensor(kyy) and torch.is_tensor(kxy)
    sxx = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
    syy = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return sxx + syy - 2 * kxy.mean()


class MMDMixture(AdversarialLoss):
    """``MMD²[p, q]`` with a mixture of Gaussian kernels (:func:`mmd2_mixture`), a scalar: GMMN (Li et al.
    2015) minimises it. With ``features`` (MMD-GAN, Li et al. 2017) the kernel acts on ``[x, φ(x)]``
    (``include_input``) and φ, the critic, maximises the MMD: its loss is ``-MMD²`` (weights clipped to
    ``clip`` after every step, if given)."""

    symbol = "MMD"

    def __init__(self, p: Distribution, q: Distribution, features: nn.Module | None = None, *,
                 bandwidths: Sequence[float] = (0.5, 1.0, 2.0, 4.0), include_input: bool = True,
                 clip: float | None = None, batch_n: int | None = None) -> None:
        super().__init__(p, q, features if features is not None else nn.Identity(), batch_n=batch_n)
        self.features, self.bandwidths, self.include_input, self.clip = features, tuple(bandwidths), include_input, clip

    def _embed(self, values: Values) -> torch.Tensor:
        flat = torch.cat([v.reshape(v.shape[0], -1).to(torch.get_default_dtype()) for v in values], 1)
        if self.features is None:
            return flat
        phi = self.features(*values)
        phi = phi.reshape(phi.shape[0], -1)
        return torch.cat([flat, phi], 1) if self.include_input else phi

    def _mmd(self, env: Env, detach: bool) -> torch.Tensor:
        real, fake, _ = self._draws(env, detach)
        return mmd2_mixture(self._embed(fake), self._embed(real), self.bandwidths)

    def _eval(self, env: Env) -> Any:
        return self._mmd(env, False)

    def discriminator_loss(self) -> Loss:
        if self.features is None:
            raise ObjectiveError("MMDMixture: without features (GMMN) there is no critic to train")
        return _MMDCriticLoss(self)

    @torch.no_grad()
    def after_discriminator_step(self) -> None:
        if self.clip is not None and self.features is not None:
            for w in self.features.parameters():
                w.clamp_(-self.clip, self.clip)

    def _render(self, latex: bool) -> str:
        a, b = self.p.prob_text, self.q.prob_text
        return rf"\mathrm{{MMD}}^2_{{\Sigma k}}\left[{a}, {b}\right]" if latex else f"MMD^2_mix[{a}, {b}]"


class _MMDCriticLoss(Loss):
    def __init__(self, mmd: MMDMixture) -> None:
        self.mmd = mmd

    def _eval(self, env: Env) -> Any:
        return -self.mmd._mmd(env, True)

    def own_distributions(self) -> tuple[Distribution, ...]:
        return self.mmd.own_distributions()

    def own_modules(self) -> tuple[nn.Module, ...]:
        return (self.mmd.discriminator,)

    def own_inputs(self) -> tuple[str, ...]:
        return self.mmd.own_inputs()

    def _render(self, latex: bool) -> str:
        return "-" + self.mmd._render(latex)


# -- expectations over a batch of draws -----------------------------------------------------------------------
class BatchE(Expectation):
    """``E_{q}[f]`` drawing one batch from ``q``: as many draws as the input ``batch_like`` has rows (for a
    ``q`` without conditions, e.g. a GAN's generator), per example. ``detach=True`` stops gradients from
    ``f`` into the draws (to train only the networks of ``f``, e.g. InfoGAN's ``Q`` on generated images)."""

    def __init__(self, q: Distribution, f: Loss | float, batch_like: str = "x", detach: bool = False) -> None:
        self.q = _check_dist(q, "BatchE")
        self.f = as_loss(f)
        self.batch_like, self.detach = batch_like, detach

    def _eval(self, env: Env) -> Any:
        ref = env.get(self.batch_like, f"BatchE (batch size from '{self.batch_like}')")
        scope = env.child()
        self.q.draw_into(scope, (), int(ref.shape[0]), True)
        if self.detach:
            for v in self.q.var:
                scope.set(v, scope.values[v].detach(), scope.sdims.get(v, 0))
        return self.f._eval(scope)

    def own_inputs(self) -> tuple[str, ...]:
        return tuple(self.q.cond_var) + (self.batch_like,)

    def _render(self, latex: bool) -> str:
        inner = self.f._render(latex)
        sg = (r"\operatorname{sg}" if latex else "sg") if self.detach else ""
        if latex:
            return rf"\mathbb{{E}}_{{{sg}{self.q.prob_text}}}\left[{inner}\right]"
        return f"E_{{{sg}{self.q.prob_text}}}[{inner}]"
