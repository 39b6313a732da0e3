"""Metrics of learned representations: active units, disentanglement (MIG, FactorVAE score),
classification and clustering accuracy."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

__all__ = ["active_units", "mutual_information_gap", "factorvae_score", "accuracy", "cluster_accuracy",
           "discrete_mutual_information"]


def active_units(posterior_means: torch.Tensor, threshold: float = 0.01) -> int:
    """The number of latent dimensions whose posterior mean varies over the data: ``Cov_x(E_q[z_d|x]) > δ``
    (Burda et al. 2016, δ = 0.01). ``posterior_means`` is ``(N, D)``."""
    if posterior_means.dim() != 2:
        raise ValueError(f"active_units: posterior_means must be (N, D), got {tuple(posterior_means.shape)}")
    return int((posterior_means.double().var(0, unbiased=False) > threshold).sum())


def _discretize(x: np.ndarray, bins: int) -> np.ndarray:
    out = np.zeros_like(x, dtype=np.int64)
    for j in range(x.shape[1]):
        edges = np.histogram_bin_edges(x[:, j], bins=bins)
        out[:, j] = np.digitize(x[:, j], edges[1:-1])
    return out


def discrete_mutual_information(a: np.ndarray, b: np.ndarray) -> float:
    """``I(a; b)`` in nats of two discrete (integer) samples of equal length, from their joint histogram."""
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    joint = np.zeros((ai.max() + 1, bi.max() + 1))
    np.add.at(joint, (ai, bi), 1.0)
    joint /= joint.sum()
    pa, pb = joint.sum(1, keepdims=True), joint.sum(0, keepdims=True)
    nz = joint > 0
    return float((joint[nz] * np.log(joint[nz] / (pa @ pb)[nz])).sum())


def mutual_information_gap(latents: torch.Tensor, factors: torch.Tensor, bins: int = 20) -> float:
    """MIG (Chen et al. 2018): for every factor ``v_k``, the gap between the two latents most informative
    about it, ``(I(z_(1); v_k) - I(z_(2); v_k)) / H(v_k)``, averaged over factors with more than one value.
    Latents are discretised into ``bins`` equal-width bins; ``factors`` are integer indices ``(N, K)``."""
    z = _discretize(latents.detach().cpu().double().numpy(), bins)
    v = factors.detach().cpu().numpy()
    gaps = []
    for k in range(v.shape[1]):
        h = discrete_mutual_information(v[:, k], v[:, k])
        if h <= 0:
            continue
        mi = sorted((discrete_mutual_information(z[:, j], v[:, k]) for j in range(z.shape[1])), reverse=True)
        gaps.append((mi[0] - (mi[1] if len(mi) > 1 else 0.0)) / h)
    return float(np.mean(gaps)) if gaps else 0.0


def factorvae_score(encode: Callable[[torch.Tensor], torch.Tensor],
                    sample_with_factor: Callable[[int, int, torch.Generator], torch.Tensor],
                    factor_sizes: tuple[int, ...], global_std: torch.Tensor, n_votes: int = 800,
                    batch: int = 64, seed: int = 0) -> float:
    """The FactorVAE disentanglement score (Kim & Mnih 2018): in each vote a factor ``k`` is fixed at a
    random value, ``batch`` images sharing it are encoded, their latents divided by the latents' global
    standard deviation, and the dimension of least variance votes for ``k``; the score is the accuracy of
    the majority-vote classifier from dimension to factor. ``sample_with_factor(k, n, gen)`` returns ``n``
    images whose factor ``k`` is one random value. Dimensions with ``global_std`` below 0.05 (collapsed)
    are left out, as in the paper."""
    gen = torch.Generator().manual_seed(seed)
    active = global_std > 0.05
    if not bool(active.any()):
        return 0.0
    dims = torch.nonzero(active).flatten()
    votes = np.zeros((len(dims), len(factor_sizes)), dtype=np.int64)
    for _ in range(n_votes):
        k = int(torch.randint(len(factor_sizes), (1,), generator=gen))
        if factor_sizes[k] <= 1:
            continue
        with torch.no_grad():
            z = encode(sample_with_factor(k, batch, gen))
        var = (z[:, dims] / global_std[dims]).var(0)
        votes[int(var.argmin()), k] += 1
    total = votes.sum()
    return float(votes.max(1).sum() / total) if total else 0.0


def accuracy(predicted: torch.Tensor, labels: torch.Tensor) -> float:
    """The share of ``predicted`` equal to ``labels``."""
    if predicted.shape != labels.shape:
        raise ValueError(f"accuracy: shapes differ, {tuple(predicted.shape)} vs {tuple(labels.shape)}")
    return float((predicted == labels).float().mean())


def cluster_accuracy(clusters: torch.Tensor, labels: torch.Tensor) -> float:
    """Unsupervised clustering accuracy: the accuracy under the one-to-one matching of clusters to labels
    that maximises it (the Hungarian algorithm, ``scipy.optimize.linear_sum_assignment``)."""
    from scipy.optimize import linear_sum_assignment

    c, y = clusters.cpu().numpy(), labels.cpu().numpy()
    n = int(max(c.max(), y.max())) + 1
    counts = np.zeros((n, n), dtype=np.int64)
    np.add.at(counts, (c, y), 1)
    rows, cols = linear_sum_assignment(-counts)
    return float(counts[rows, cols].sum() / len(c))
