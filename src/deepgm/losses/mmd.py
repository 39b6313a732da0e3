"""Maximum mean discrepancy, in one place: the kernels, the median heuristic, the unbiased estimator, and the
objectives built on them — :class:`MMD` between two distributions (e.g. the aggregate posterior against the
prior) and :class:`MMDMixture`, a generator's objective (GMMN, MMD-GAN).

From ``x_1 … x_n ~ p`` and ``y_1 … y_m ~ q`` and a kernel ``k`` the unbiased estimate of
``MMD²[p, q] = E k(x, x') + E k(y, y') - 2 E k(x, y)`` is

    ``1/(n(n-1)) Σ_{i≠j} k(x_i, x_j) + 1/(m(m-1)) Σ_{i≠j} k(y_i, y_j) - 2/(nm) Σ_{i,j} k(x_i, y_j)``.

The Gaussian kernel is ``k(x, y) = exp(-‖x - y‖² / (2 h²))``. **The median heuristic** (the only one used):
pool the two samples, ``z = (x_1, …, x_n, y_1, …, y_m)``, and take ``h² = median_{i<j} ‖z_i - z_j‖² / 2``
over the ``(n+m)(n+m-1)/2`` distinct pairs (the lower median for an even count), so that
``exp(-‖·‖²/(2h²)) = exp(-‖·‖²/median)``; the bandwidth is a constant of the draws (detached).

>>> x, y = torch.zeros(3, 1), torch.tensor([[0.0], [1.0], [2.0]])
>>> round(median_bandwidth(x, y) ** 2, 6)  # z = (0, 0, 0, 0, 1, 2): of its 15 pairs 6 are at 0, 5 at 1, 4 at 4
0.5
>>> float(mmd2_unbiased(x, x)) == 0.0
True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import nn

from deepgm.distributions.base import Distribution
from deepgm.distributions.env import Env
from deepgm.errors import ObjectiveError
from deepgm.losses.adversarial import AdversarialLoss, Values, flatten_join
from deepgm.losses.core import _check_dist, _count
from deepgm.losses.expr import Loss

__all__ = ["MMD", "MMDMixture", "mmd2_unbiased", "mmd2_mixture", "median_bandwidth", "gaussian_kernel",
           "imq_kernel"]

Kernel = Literal["gaussian", "imq"]


def gaussian_kernel(d2: torch.Tensor, bandwidth: float) -> torch.Tensor:
    """``k(x, y) = exp(-||x-y||² / (2 h²))`` from squared distances."""
    return torch.exp(-d2 / (2 * bandwidth**2))


def imq_kernel(d2: torch.Tensor, scale: float) -> torch.Tensor:
    """The inverse multiquadric ``k(x, y) = C / (C + ||x-y||²)`` with ``C = scale``."""
    return scale / (scale + d2)


def _samples(x: torch.Tensor, y: torch.Tensor, where: str) -> tuple[torch.Tensor, torch.Tensor]:
    if x.dim() != 2 or y.dim() != 2 or x.shape[1] != y.shape[1]:
        raise ObjectiveError(f"{where}: samples must be (n, D) and (m, D), got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.shape[0] < 2 or y.shape[0] < 2:
        raise ObjectiveError(f"{where}: needs at least 2 samples from each side, got {x.shape[0]} and {y.shape[0]}")
    return x, y


def _sq_dists(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The squared distances within ``x``, within ``y`` and between them."""
    return torch.cdist(x, x).pow(2), torch.cdist(y, y).pow(2), torch.cdist(x, y).pow(2)


def _median_from(dxx: torch.Tensor, dyy: torch.Tensor, dxy: torch.Tensor) -> float:
    """The median heuristic's ``h`` (module docstring) from the three blocks of pooled squared distances."""
    n, m = dxx.shape[0], dyy.shape[0]
    ix, iy = torch.triu_indices(n, n, 1, device=dxx.device), torch.triu_indices(m, m, 1, device=dyy.device)
    pairs = torch.cat([dxx[ix[0], ix[1]], dyy[iy[0], iy[1]], dxy.flatten()]).detach()
    return float((pairs.median() / 2).clamp_min(1e-12).sqrt())


def median_bandwidth(x: torch.Tensor, y: torch.Tensor) -> float:
    """The median-heuristic Gaussian bandwidth ``h`` of the pooled samples ``x (n, D)`` and ``y (m, D)``."""
    x, y = _samples(x, y, "median_bandwidth")
    return _median_from(*_sq_dists(x, y))


def _unbiased(kxx: torch.Tensor, kyy: torch.Tensor, kxy: torch.Tensor) -> torch.Tensor:
    n, m = kxx.shape[0], kyy.shape[0]
    sxx = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
    syy = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return sxx + syy - 2 * kxy.mean()


def _gaussian_mmd2(d: tuple[torch.Tensor, torch.Tensor, torch.Tensor], bandwidths: Sequence[float]) -> torch.Tensor:
    """The unbiased MMD² for the kernel ``Σ_h exp(-‖·‖²/(2h²))`` from the squared distances ``d``."""
    kxx, kyy, kxy = (sum(gaussian_kernel(block, h) for h in bandwidths) for block in d)
    assert isinstance(kxx, torch.Tensor) and isinstance(kyy, torch.Tensor) and isinstance(kxy, torch.Tensor)
    return _unbiased(kxx, kyy, kxy)


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor, kernel: Kernel = "gaussian",
                  bandwidth: float | None = None) -> torch.Tensor:
    """The unbiased ``MMD²`` (module docstring) from ``x (n, D)`` and ``y (m, D)``.

    ``bandwidth``: the Gaussian ``h`` (default: the median heuristic), or the IMQ ``C`` (default ``2 D``).
    """
    x, y = _samples(x, y, "MMD")
    d = _sq_dists(x, y)
    if kernel == "gaussian":
        return _gaussian_mmd2(d, [_median_from(*d) if bandwidth is None else bandwidth])
    if kernel == "imq":
        c = 2.0 * x.shape[1] if bandwidth is None else bandwidth
        kxx, kyy, kxy = (imq_kernel(block, c) for block in d)
        return _unbiased(kxx, kyy, kxy)
    raise ObjectiveError(f"MMD: kernel must be 'gaussian' or 'imq', got {kernel!r}")


def mmd2_mixture(x: torch.Tensor, y: torch.Tensor, bandwidths: Sequence[float] = (0.5, 1.0, 2.0, 4.0),
                 relative: bool = True) -> torch.Tensor:
    """Unbiased ``MMD²`` with the kernel ``k = Σ_h exp(-‖x - y‖² / (2 h²))`` summed over ``bandwidths``.

    ``relative=True`` scales every ``h`` by the median-heuristic bandwidth of the pooled samples (module
    docstring), so the mixture follows the data's scale. ``x (n, ...)`` and ``y (m, ...)`` are flattened."""
    x, y = x.reshape(x.shape[0], -1), y.reshape(y.shape[0], -1)
    if x.shape[1] != y.shape[1]:
        raise ObjectiveError(f"mmd2_mixture: samples have {x.shape[1]} and {y.shape[1]} features")
    x, y = _samples(x, y, "mmd2_mixture")
    if not bandwidths:
        raise ObjectiveError("mmd2_mixture: give at least one bandwidth")
    d = _sq_dists(x, y)
    scale = _median_from(*d) if relative else 1.0
    return _gaussian_mmd2(d, [h * scale for h in bandwidths])


def _positive_bandwidths(what: str, values: Sequence[float]) -> None:
    for h in values:
        if isinstance(h, bool) or not isinstance(h, (int, float)) or not 0 < h < float("inf"):
            raise ObjectiveError(f"{what} must be a positive finite number, got {h!r}")


class MMD(Loss):
    """``MMD²[p, q]`` between draws of the same variables from ``p`` and ``q`` (e.g. the aggregate
    posterior ``q(z|x)`` over a batch against the prior ``p(z)``), unbiased, a scalar.

    The draws are flattened to one row per data point. A distribution without conditions draws as many
    points as the other one has (or ``batch_n``).
    """

    def __init__(self, p: Distribution, q: Distribution, kernel: Kernel = "gaussian",
                 bandwidth: float | None = None, batch_n: int | None = None) -> None:
        self.p, self.q = _check_dist(p, "MMD"), _check_dist(q, "MMD")
        if sorted(p.var) != sorted(q.var):
            raise ObjectiveError(f"MMD({p.prob_text}, {q.prob_text}): both must be over the same variables")
        if kernel not in ("gaussian", "imq"):
            raise ObjectiveError(f"MMD: kernel must be 'gaussian' or 'imq', got {kernel!r}")
        _positive_bandwidths("MMD: bandwidth", () if bandwidth is None else (bandwidth,))
        if batch_n is not None:  # the unbiased estimate needs two draws from each side
            batch_n = _count(batch_n, "MMD: batch_n", 2)
        self.kernel, self.bandwidth, self.batch_n = kernel, bandwidth, batch_n

    def _draw(self, d: Distribution, env: Env, batch_n: int | None) -> torch.Tensor:
        scope = env.child()
        d.draw_into(scope, (), batch_n, True)
        return flatten_join(tuple(scope.values[v] for v in self.p.var))

    def _eval(self, env: Env) -> Any:
        first, second = (self.q, self.p) if self.q.cond_var or not self.p.cond_var else (self.p, self.q)
        a = self._draw(first, env, self.batch_n)
        b = self._draw(second, env, self.batch_n or a.shape[0])
        x, y = (b, a) if first is self.q else (a, b)
        return mmd2_unbiased(x, y, self.kernel, self.bandwidth)

    def own_distributions(self) -> tuple[Distribution, ...]:
        return (self.p, self.q)

    def own_drawn(self) -> tuple[str, ...]:
        return tuple(self.p.var)

    def own_inputs(self) -> tuple[str, ...]:
        return tuple(self.p.cond_var + self.q.cond_var)

    def _render(self, latex: bool) -> str:
        a, b = self.p.prob_text, self.q.prob_text
        return rf"\mathrm{{MMD}}^2\left[{a}, {b}\right]" if latex else f"MMD^2[{a}, {b}]"


class MMDMixture(AdversarialLoss):
    """``MMD²[p, q]`` with a mixture of Gaussian kernels (:func:`mmd2_mixture`), a scalar: GMMN (Li et al.
    2015) minimises it. With ``features`` (MMD-GAN, Li et al. 2017) the kernel acts on ``[x, φ(x)]``
    (``include_input``) and φ, the critic, maximises the MMD: its loss is ``-MMD²`` (weights clipped to
    ``clip`` after every step, if given)."""

    symbol = "MMD"

    def __init__(self, p: Distribution, q: Distribution, features: nn.Module | None = None, *,
                 bandwidths: Sequence[float] = (0.5, 1.0, 2.0, 4.0), include_input: bool = True,
                 clip: float | None = None, batch_n: int | None = None) -> None:
        if batch_n is not None:
            batch_n = _count(batch_n, "MMDMixture: batch_n", 2)
        if not tuple(bandwidths):
            raise ObjectiveError("MMDMixture: give at least one bandwidth")
        _positive_bandwidths("MMDMixture: bandwidths", tuple(bandwidths))
        super().__init__(p, q, features if features is not None else nn.Identity(), batch_n=batch_n)
        self.features, self.bandwidths, self.include_input, self.clip = features, tuple(bandwidths), include_input, clip

    def _embed(self, values: Values) -> torch.Tensor:
        flat = flatten_join(tuple(v.to(torch.get_default_dtype()) for v in values))
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
        return super().discriminator_loss()

    def discriminator_value(self, env: Env) -> torch.Tensor:
        """The critic's loss ``-MMD²`` on detached draws."""
        return -self._mmd(env, True)

    @torch.no_grad()
    def after_discriminator_step(self) -> None:
        if self.clip is not None and self.features is not None:
            for w in self.features.parameters():
                w.clamp_(-self.clip, self.clip)

    def _render(self, latex: bool) -> str:
        a, b = self.p.prob_text, self.q.prob_text
        return rf"\mathrm{{MMD}}^2_{{\Sigma k}}\left[{a}, {b}\right]" if latex else f"MMD^2_mix[{a}, {b}]"

    def _render_discriminator(self, latex: bool) -> str:
        return "-" + self._render(latex)
