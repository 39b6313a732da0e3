"""Small tensor transforms for generative modelling of images with values in [0, 1].

All are plain callables ``Tensor -> Tensor`` (the logit transform also reports its
log-det-Jacobian), usable per example inside a dataset or on whole batches.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = [
    "Compose",
    "Dequantize",
    "DynamicBinarize",
    "FixedBinarize",
    "Flatten",
    "LogitTransform",
    "binarize_fixed",
    "binarize_threshold",
    "dequantize",
    "logit_transform",
]


class DynamicBinarize:
    """Dynamic binarisation: ``b ~ Bernoulli(x)``, freshly resampled on every call.

    Intended per example (inside ``__getitem__``) or per batch, so each epoch sees new binary images.
    """

    def __init__(self, generator: torch.Generator | None = None) -> None:
        self.generator = generator

    def __call__(self, x: Tensor) -> Tensor:
        return torch.bernoulli(x.clamp(0.0, 1.0), generator=self.generator)

    def __repr__(self) -> str:
        return "DynamicBinarize()"


def binarize_fixed(x: Tensor, seed: int = 0) -> Tensor:
    """Fixed binarisation: one draw ``b ~ Bernoulli(x)`` from a generator seeded with ``seed``.

    The same ``x`` and ``seed`` always give the same ``b``. Apply it once to a whole data tensor:
    calling it per example would reuse the same noise for every example.
    """
    gen = torch.Generator(device=x.device).manual_seed(int(seed))
    return torch.bernoulli(x.clamp(0.0, 1.0), generator=gen)


class FixedBinarize:
    """Callable form of :func:`binarize_fixed` (same input and seed give the same output)."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = int(seed)

    def __call__(self, x: Tensor) -> Tensor:
        return binarize_fixed(x, self.seed)

    def __repr__(self) -> str:
        return f"FixedBinarize(seed={self.seed})"


def binarize_threshold(x: Tensor, threshold: float = 0.5) -> Tensor:
    """Deterministic binarisation ``b = 1[x > threshold]`` as a float tensor."""
    return (x > threshold).to(x.dtype if x.is_floating_point() else torch.get_default_dtype())


def dequantize(x: Tensor, n_bins: int = 256, generator: torch.Generator | None = None) -> Tensor:
    """Uniform dequantisation ``y = (x (K - 1) + u) / K`` with ``u ~ U[0, 1)`` and ``K = n_bins``.

    For 8-bit images (``K = 256``) this is ``(x * 255 + u) / 256``: each of the 256 grey levels is
    spread over its own bin of width 1/256, so ``y`` lies in [0, 1). ``x (K - 1)`` is rounded to
    the nearest level first, so float error in ``x = k / 255`` cannot move a value into a neighbouring bin.
    """
    u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    y = (torch.round(x * (n_bins - 1)) + u) / n_bins
    # (255 + u) / 256 can round up to exactly 1.0 in float32; keep the result strictly below 1.
    return y.clamp(max=1.0 - torch.finfo(y.dtype).eps)


class Dequantize:
    """Callable form of :func:`dequantize`; a fresh ``u`` on every call."""

    def __init__(self, n_bins: int = 256, generator: torch.Generator | None = None) -> None:
        self.n_bins = int(n_bins)
        self.generator = generator

    def __call__(self, x: Tensor) -> Tensor:
        return dequantize(x, self.n_bins, self.generator)

    def __repr__(self) -> str:
        return f"Dequantize(n_bins={self.n_bins})"


def logit_transform(x: Tensor, alpha: float = 0.05, batch_dims: int = 1) -> tuple[Tensor, Tensor]:
    """Logit transform ``y = logit(p)``, ``p = alpha + (1 - 2 alpha) x``, and its log-det-Jacobian.

    The Jacobian is diagonal with ``dy/dx = (1 - 2 alpha) / (p (1 - p))``, so per example

        log|det J| = sum_i [log(1 - 2 alpha) - log p_i - log(1 - p_i)],

    summed over all but the first ``batch_dims`` dimensions (``batch_dims=0``: a scalar for one example).
    """
    p = alpha + (1.0 - 2.0 * alpha) * x
    y = torch.log(p) - torch.log1p(-p)
    elementwise = torch.log1p(torch.full_like(p, -2.0 * alpha)) - torch.log(p) - torch.log1p(-p)
    log_det = elementwise.flatten(batch_dims).sum(-1) if elementwise.dim() > batch_dims else elementwise
    return y, log_det


class LogitTransform:
    """``x -> logit(alpha + (1 - 2 alpha) x)`` with ``log_det`` and ``inverse``.

    ``alpha`` keeps the argument away from 0 and 1 (RealNVP uses 0.05 on CIFAR, 1e-6 on MNIST).
    Calling the object returns ``y`` only; ``forward_and_log_det`` returns ``(y, log|det J|)`` per example.
    """

    def __init__(self, alpha: float = 0.05, batch_dims: int = 1) -> None:
        if not 0.0 <= alpha < 0.5:
            raise ValueError(f"alpha must be in [0, 0.5), got {alpha}")
        self.alpha = float(alpha)
        self.batch_dims = int(batch_dims)

    def __call__(self, x: Tensor) -> Tensor:
        return self.forward_and_log_det(x)[0]

    def forward_and_log_det(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(y, log|det dy/dx|)`` with the log-det summed per example."""
        return logit_transform(x, self.alpha, self.batch_dims)

    def log_det(self, x: Tensor) -> Tensor:
        """Per-example ``log|det dy/dx|`` at ``x``."""
        return self.forward_and_log_det(x)[1]

    def inverse(self, y: Tensor) -> Tensor:
        """``x = (sigmoid(y) - alpha) / (1 - 2 alpha)``."""
        return (torch.sigmoid(y) - self.alpha) / (1.0 - 2.0 * self.alpha)

    def __repr__(self) -> str:
        return f"LogitTransform(alpha={self.alpha})"


class Flatten:
    """Flatten the last ``event_ndim`` dimensions: ``(..., C, H, W) -> (..., C*H*W)`` for ``event_ndim=3``.

    Works the same on one example ``(C, H, W)`` and on a batch ``(B, C, H, W)``.
    """

    def __init__(self, event_ndim: int = 3) -> None:
        self.event_ndim = int(event_ndim)

    def __call__(self, x: Tensor) -> Tensor:
        if x.dim() < self.event_ndim:
            raise ValueError(f"expected at least {self.event_ndim} dims, got shape {tuple(x.shape)}")
        return x.reshape(*x.shape[: x.dim() - self.event_ndim], -1)

    def __repr__(self) -> str:
        return f"Flatten(event_ndim={self.event_ndim})"


class Compose:
    """Apply transforms left to right: ``Compose(f, g)(x) = g(f(x))``."""

    def __init__(self, *transforms: Callable[[Tensor], Tensor]) -> None:
        self.transforms = transforms

    def __call__(self, x: Tensor) -> Tensor:
        for t in self.transforms:
            x = t(x)
        return x

    def __repr__(self) -> str:
        return "Compose(" + ", ".join(map(repr, self.transforms)) + ")"
