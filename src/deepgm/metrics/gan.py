"""Evaluating implicit models: FID and Inception Score with a pluggable network, mode coverage on the 2-D
mixtures, and precision/recall for distributions.

Inception weights cannot be downloaded here: the feature network is any callable ``images → features``
(:class:`deepgm.nn.MNISTClassifier`, trained by ``scripts/train_mnist_classifier.py`` and loaded by
:func:`load_mnist_classifier`, defines MNIST-FID and MNIST-IS; :func:`inception_features` wraps
torchvision's Inception v3 when it and its weights are present locally). Scores computed with different
networks are not comparable.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from deepgm.nn.classifier import MNISTClassifier

__all__ = [
    "gaussian_statistics", "frechet_distance", "fid", "inception_score", "mode_coverage",
    "precision_recall", "load_mnist_classifier", "inception_features", "extract",
]

Features = Callable[[torch.Tensor], torch.Tensor]


@torch.no_grad()
def extract(x: torch.Tensor, network: Features | None = None, batch_size: int = 500) -> torch.Tensor:
    """``network(x)`` in batches (eval mode for modules), flattened to ``(n, d)`` float64; ``None``: ``x``."""
    if network is None:
        return x.reshape(x.shape[0], -1).double()
    was = network.training if isinstance(network, nn.Module) else None
    if isinstance(network, nn.Module):
        network.eval()
    try:
        outs = [network(x[i:i + batch_size]) for i in range(0, x.shape[0], batch_size)]
    finally:
        if isinstance(network, nn.Module) and was:
            network.train()
    out = torch.cat(outs)
    return out.reshape(out.shape[0], -1).double()


def gaussian_statistics(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean ``μ`` and covariance ``Σ`` (unbiased) of ``features (n, d)``."""
    if features.dim() != 2 or features.shape[0] < 2:
        raise ValueError(f"gaussian_statistics: needs features (n >= 2, d), got {tuple(features.shape)}")
    f = features.double()
    mu = f.mean(0)
    c = f - mu
    return mu, c.T @ c / (f.shape[0] - 1)


def _sqrtm_psd(a: torch.Tensor) -> torch.Tensor:
    w, v = torch.linalg.eigh((a + a.T) / 2)
    out: torch.Tensor = (v * w.clamp_min(0).sqrt()) @ v.T
    return out


def frechet_distance(mu1: torch.Tensor, sigma1: torch.Tensor, mu2: torch.Tensor, sigma2: torch.Tensor) -> float:
    """``d² = ‖μ₁ - μ₂‖² + tr(Σ₁ + Σ₂ - 2 (Σ₁Σ₂)^{1/2})`` between two Gaussians, with
    ``tr (Σ₁Σ₂)^{1/2} = tr (Σ₁^{1/2} Σ₂ Σ₁^{1/2})^{1/2}`` (symmetric, so computed by eigendecompositions)."""
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"frechet_distance: shapes differ: {tuple(mu1.shape)} vs {tuple(mu2.shape)}")
    mu1, mu2, s1, s2 = (t.double() for t in (mu1, mu2, sigma1, sigma2))
    r1 = _sqrtm_psd(s1)
    cross = torch.linalg.eigvalsh(r1 @ s2 @ r1).clamp_min(0).sqrt().sum()
    d2 = (mu1 - mu2).pow(2).sum() + torch.trace(s1) + torch.trace(s2) - 2 * cross
    return max(float(d2), 0.0)


def fid(x: torch.Tensor, y: torch.Tensor, network: Features | None = None, batch_size: int = 500) -> float:
    """The Fréchet distance between Gaussian fits of ``network`` features of ``x`` and of ``y`` (Heusel et
    al. 2017); with ``network=None`` the raw values are the features."""
    fx, fy = extract(x, network, batch_size), extract(y, network, batch_size)
    return frechet_distance(*gaussian_statistics(fx), *gaussian_statistics(fy))


@torch.no_grad()
def inception_score(x: torch.Tensor, classifier: Features, splits: int = 10,
                    batch_size: int = 500) -> tuple[float, float]:
    """``IS = exp E_x KL(p(y|x) || p(y))`` with ``p(y|x) = softmax(classifier(x))`` and ``p(y)`` the mean
    over each of ``splits`` parts; returns the mean and standard deviation over the parts."""
    logits = extract(x, classifier, batch_size)
    logp = F.log_softmax(logits, -1)
    n = logp.shape[0]
    if splits < 1 or splits > n:
        raise ValueError(f"inception_score: splits must be in [1, {n}], got {splits}")
    scores = []
    for part in torch.tensor_split(logp, splits):
        log_py = torch.logsumexp(part, 0) - math.log(part.shape[0])
        kl = (part.exp() * (part - log_py)).sum(1).mean()
        scores.append(float(kl.exp()))
    t = torch.tensor(scores)
    return float(t.mean()), float(t.std()) if splits > 1 else 0.0


@torch.no_grad()
def mode_coverage(samples: torch.Tensor, modes: torch.Tensor, std: float, n_std: float = 3.0,
                  min_count: int = 1) -> dict[str, Any]:
    """Mode coverage of a mixture with centres ``modes (K, D)`` and component std ``std``.

    A sample is *high quality* when within ``n_std · std`` of its nearest centre; a mode is *captured*
    when at least ``min_count`` high-quality samples fall at it. Returns ``modes_captured`` (count),
    ``n_modes``, ``high_quality`` (share of samples), ``counts`` (high-quality samples per mode) and
    ``mode_kl``: ``KL(histogram of high-quality samples over modes || uniform)``, 0 for an even spread.
    """
    if samples.dim() != 2 or modes.dim() != 2 or samples.shape[1] != modes.shape[1]:
        raise ValueError(f"mode_coverage: samples (n, D) and modes (K, D) expected, got "
                         f"{tuple(samples.shape)} and {tuple(modes.shape)}")
    d = torch.cdist(samples.double(), modes.double())
    dist, nearest = d.min(1)
    hq = dist <= n_std * std
    counts = torch.bincount(nearest[hq], minlength=modes.shape[0])
    k = modes.shape[0]
    total = int(counts.sum())
    if total:
        h = counts.double() / total
        nz = h > 0
        mode_kl = float((h[nz] * (h[nz] * k).log()).sum())
    else:
        mode_kl = math.inf
    return {"modes_captured": int((counts >= min_count).sum()), "n_modes": k,
            "high_quality": float(hq.double().mean()), "counts": counts.tolist(), "mode_kl": mode_kl}


@torch.no_grad()
def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> dict[str, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019): each set's manifold is the union of
    balls around its points with radius the distance to their ``k``-th nearest neighbour; precision is
    the share of ``fake`` inside the real manifold, recall the share of ``real`` inside the fake one.
    Inputs are feature vectors ``(n, d)`` (flattened otherwise)."""
    real, fake = real.reshape(real.shape[0], -1).double(), fake.reshape(fake.shape[0], -1).double()
    if min(real.shape[0], fake.shape[0]) <= k:
        raise ValueError(f"precision_recall: needs more than k={k} points per set")

    def radii(a: torch.Tensor) -> torch.Tensor:
        return torch.cdist(a, a).kthvalue(k + 1, dim=1).values  # the 0th neighbour is the point itself

    def inside(points: torch.Tensor, centres: torch.Tensor, r: torch.Tensor) -> float:
        return float((torch.cdist(points, centres) <= r[None, :]).any(1).double().mean())

    return {"precision": inside(fake, real, radii(real)), "recall": inside(real, fake, radii(fake))}


def load_mnist_classifier(path: str | os.PathLike[str]) -> MNISTClassifier:
    """The :class:`~deepgm.nn.MNISTClassifier` saved at ``path`` (a ``state_dict`` written by
    ``scripts/train_mnist_classifier.py``; loaded with ``weights_only=True``), in eval mode."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no MNIST classifier checkpoint at {path}; train one with "
                                f"scripts/train_mnist_classifier.py")
    model = MNISTClassifier()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()


def inception_features(weights: str | os.PathLike[str]) -> Features:
    """Inception-v3 pool features (2048-d) from torchvision with weights read from the local file
    ``weights`` (an optional dependency: torchvision). Images ``(n, C, H, W)`` in [0, 1], grey ones
    repeated to three channels, resized to 299×299."""
    try:
        from torchvision.models import inception_v3  # type: ignore[import-not-found, unused-ignore]
    except ImportError as err:
        raise ImportError("inception_features needs torchvision (pip install torchvision)") from err
    if not Path(weights).exists():
        raise FileNotFoundError(f"no Inception-v3 weights at {weights}; they cannot be downloaded here")
    net = inception_v3(weights=None, aux_logits=True, init_weights=False)
    net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    net.fc = nn.Identity()
    net.eval()

    def features(x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            side = int(round(math.sqrt(x.shape[1])))
            x = x.reshape(-1, 1, side, side)
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        x = F.interpolate(x.float(), size=(299, 299), mode="bilinear", align_corners=False)
        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        sd = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        out: torch.Tensor = net((x - mean) / sd)
        return out

    return features
