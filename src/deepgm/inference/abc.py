"""Rejection approximate Bayesian computation: draw ``θ ~ p(θ)``, simulate ``s ~ p(s|θ)``, keep the
``θ`` whose summaries fall nearest the observed ones, ``‖(s - s_obs)/scale‖ ≤ ε`` with ``ε`` the
``accept``-quantile of the distances (Pritchard et al. 1999)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["ABCResult", "rejection_abc"]


@dataclass
class ABCResult:
    """Accepted parameters ``(k, d)``, their distances, the threshold ε, and simulations used."""

    samples: torch.Tensor
    distances: torch.Tensor
    epsilon: float
    simulations: int

    def summary(self, level: float = 0.9) -> dict[str, list[float]]:
        """Posterior mean and the central ``level`` interval of every parameter."""
        lo, hi = (1 - level) / 2, (1 + level) / 2
        q = torch.quantile(self.samples.double(), torch.tensor([lo, hi], dtype=torch.float64), dim=0)
        return {"mean": self.samples.mean(0).tolist(), "lower": q[0].tolist(), "upper": q[1].tolist()}


@torch.no_grad()
def rejection_abc(simulate: Callable[[torch.Tensor], torch.Tensor], sample_prior: Callable[[int], torch.Tensor],
                  observed: torch.Tensor, n_simulations: int, accept: float = 0.01,
                  scale: torch.Tensor | None = None, batch_size: int = 1000) -> ABCResult:
    """Rejection ABC with a budget of ``n_simulations``: ``simulate(θ (B, d)) → summaries (B, m)`` (NaN
    rows, e.g. failed runs, are rejected), ``sample_prior(B) → θ``; distances are Euclidean after dividing
    each summary by ``scale`` (default: its standard deviation over the simulations)."""
    if not 0 < accept <= 1:
        raise ValueError(f"rejection_abc: accept must be in (0, 1], got {accept}")
    if n_simulations < 1:
        raise ValueError(f"rejection_abc: n_simulations must be >= 1, got {n_simulations}")
    thetas, stats = [], []
    done = 0
    while done < n_simulations:
        n = min(batch_size, n_simulations - done)
        th = sample_prior(n)
        thetas.append(th)
        stats.append(simulate(th).reshape(n, -1).float())
        done += n
    theta, s = torch.cat(thetas), torch.cat(stats)
    obs = observed.reshape(1, -1).float()
    good = torch.isfinite(s).all(1)
    if scale is None:
        scale = s[good].std(0).clamp_min(1e-8) if int(good.sum()) > 1 else torch.ones(s.shape[1])
    d = ((s - obs) / scale).pow(2).sum(1).sqrt()
    d = torch.where(good, d, torch.inf)
    k = max(1, int(round(accept * n_simulations)))
    dist, idx = torch.topk(d, k, largest=False)
    return ABCResult(theta[idx], dist, float(dist[-1]), n_simulations)
