"""The GAN games: each an :class:`~deepgm.losses.adversarial.AdversarialLoss` (how the two sides are drawn
and the discriminator is called is explained there), giving the generator's and the discriminator's
per-example terms. With ``r = D(x_p)`` (data) and ``f = D(x_q)`` (model):

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

The first three share the logistic discriminator of the density-ratio trick
(:class:`~deepgm.losses.adversarial.LogisticDiscriminator`). Moment matching needs no discriminator:
:class:`~deepgm.losses.mmd.MMDMixture` (GMMN, MMD-GAN) lives with the other MMD estimators.
:class:`BatchE` is the expectation over one batch of a generator's draws (InfoGAN's and ACGAN's terms).

>>> from deepgm.distributions import Empirical, Normal
>>> data, model = Empirical(var=["x"]), Normal(var=["x"], loc=0.0, scale=1.0, features_shape=[2])
>>> gan = NonSaturatingGAN(data, model, torch.nn.Linear(2, 1))
>>> x = torch.randn(4, 2)
>>> str(gan), gan({"x": x}).shape, gan.discriminator_loss()({"x": x}).shape
('NS_G[p_{data}(x), p(x)]', torch.Size([4]), torch.Size([]))
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from deepgm.distributions.base import Distribution
from deepgm.distributions.env import Env
from deepgm.errors import ObjectiveError
from deepgm.losses.adversarial import AdversarialLoss, LogisticDiscriminator, Values, batch_size_of
from deepgm.losses.core import Expectation, _check_dist
from deepgm.losses.expr import Loss, as_loss

__all__ = [
    "MinimaxGAN", "NonSaturatingGAN", "KLGAN", "Wasserstein", "LeastSquaresGAN", "HingeGAN", "FGAN",
    "FDivergence", "F_DIVERGENCES", "gradient_penalty", "BatchE",
]


class MinimaxGAN(LogisticDiscriminator):
    """Goodfellow et al.'s minimax game ``min_G max_D E_p log σ(D) + E_q log(1 - σ(D))``; at the optimal
    ``D`` the value is ``2 JS(p, q) - log 4``."""

    symbol = "JS"

    def generator_real(self, r: torch.Tensor) -> torch.Tensor:
        return -F.softplus(-r)

    def generator_fake(self, f: torch.Tensor) -> torch.Tensor:
        return -F.softplus(f)


class NonSaturatingGAN(LogisticDiscriminator):
    """The non-saturating generator loss ``-log σ(D(x_q))`` (labels swapped: ``-log(1-σ(D(x_p)))`` on the
    data side, which matters only for an encoder, BiGAN/ALI)."""

    symbol = "NS"

    def generator_real(self, r: torch.Tensor) -> torch.Tensor:
        return F.softplus(r)

    def generator_fake(self, f: torch.Tensor) -> torch.Tensor:
        return F.softplus(-f)


class KLGAN(LogisticDiscriminator):
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
    n = batch_size_of(real)
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
    sq = torch.stack([g.reshape(n, -1).pow(2).sum(1) for g in grads]).sum(0)
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


# -- expectations over a batch of draws -----------------------------------------------------------------------
class BatchE(Expectation):
    """``E_{q}[f]`` drawing one batch from ``q``: as many draws as the input ``batch_like`` has rows (for a
    ``q`` without conditions, e.g. a GAN's generator), per example. ``detach=True`` stops gradients from
    ``f`` into the draws (to train only the networks of ``f``, e.g. InfoGAN's ``Q`` on generated images)."""

    def __init__(self, q: Distribution, f: Loss | float, batch_like: str = "x", detach: bool = False) -> None:
        self.q = _check_dist(q, "BatchE")
        self.f = as_loss(f)
        self.batch_like, self.detach_draws = batch_like, detach  # not `detach`: that is Loss.detach()

    def _eval(self, env: Env) -> Any:
        ref = env.get(self.batch_like, f"BatchE (batch size from '{self.batch_like}')")
        scope = env.child()
        self.q.draw_into(scope, (), int(ref.shape[0]), True)
        if self.detach_draws:
            for v in self.q.var:
                scope.set(v, scope.values[v].detach(), scope.sdims.get(v, 0))
        return self.f._eval(scope)

    def own_inputs(self) -> tuple[str, ...]:
        return tuple(self.q.cond_var) + (self.batch_like,)

    def _render(self, latex: bool) -> str:
        inner = self.f._render(latex)
        sg = (r"\operatorname{sg}" if latex else "sg") if self.detach_draws else ""
        if latex:
            return rf"\mathbb{{E}}_{{{sg}{self.q.prob_text}}}\left[{inner}\right]"
        return f"E_{{{sg}{self.q.prob_text}}}[{inner}]"
