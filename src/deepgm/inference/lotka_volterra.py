"""The stochastic Lotka–Volterra predator–prey model, a Markov jump process simulated exactly by
Gillespie's algorithm, vectorised over a batch of parameter sets.

With predators ``X`` and prey ``Y`` and rates ``θ = (θ₁, θ₂, θ₃, θ₄)`` the four reactions are
``X → X+1`` at rate ``θ₁XY`` (a predator is born), ``X → X-1`` at ``θ₂X`` (one dies), ``Y → Y+1`` at
``θ₃Y`` (a prey is born), ``Y → Y-1`` at ``θ₄XY`` (one is eaten). Gillespie's algorithm draws the time to
the next reaction ``~ Exp(Σ rates)`` and which one with probability ``rate/Σ rates``. As in Papamakarios
& Murray (2016), ``X₀ = 50``, ``Y₀ = 100``, the state is recorded every 0.2 time units up to 30, the prior
is uniform on ``log θ ∈ [-5, 2]⁴``, the true ``θ = (0.01, 0.5, 1, 0.01)``, a run stops after 10,000
reactions (flagged unfinished), and the data are summarised by 9 statistics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["LotkaVolterra", "gillespie_lotka_volterra", "lv_summaries", "LV_TRUE_LOG_THETA"]

LV_TRUE_LOG_THETA = torch.tensor([math.log(0.01), math.log(0.5), math.log(1.0), math.log(0.01)])
_CHANGES = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])


@torch.no_grad()
def gillespie_lotka_volterra(log_theta: torch.Tensor, x0: tuple[float, float] = (50.0, 100.0),
                             t_max: float = 30.0, dt: float = 0.2, max_events: int = 10_000,
                             generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Simulate ``B`` runs for ``log_theta (B, 4)``; returns the states at ``t = 0, dt, …, t_max``,
    ``(B, T, 2)`` (predators, prey), and ``finished (B,)``: False where ``max_events`` reactions ran out
    before ``t_max`` (the rest of that run is left at its last state)."""
    if log_theta.dim() != 2 or log_theta.shape[1] != 4:
        raise ValueError(f"gillespie_lotka_volterra: log_theta must be (B, 4), got {tuple(log_theta.shape)}")
    theta = log_theta.double().exp()
    b = theta.shape[0]
    grid = torch.arange(0, round(t_max / dt) + 1, dtype=torch.float64) * dt
    g = grid.shape[0]
    cols = torch.arange(g)
    state = torch.tensor(x0, dtype=torch.float64).expand(b, 2).clone()
    out = state[:, None, :].expand(b, g, 2).clone()
    t = torch.zeros(b, dtype=torch.float64)
    filled = torch.zeros(b, dtype=torch.long)
    alive = torch.ones(b, dtype=torch.bool)
    changes = _CHANGES.double()
    for _ in range(max_events):
        if not bool(alive.any()):
            break
        x, y = state[:, 0], state[:, 1]
        rates = torch.stack([theta[:, 0] * x * y, theta[:, 1] * x, theta[:, 2] * y, theta[:, 3] * x * y], 1)
        total = rates.sum(1)
        u = torch.rand(b, 2, generator=generator, dtype=torch.float64)
        wait = torch.where(total > 0, -torch.log1p(-u[:, 0]) / total.clamp_min(1e-300), math.inf)
        t_new = t + wait
        n_new = torch.searchsorted(grid, t_new.contiguous()).clamp_max(g)  # grid points before the reaction
        mask = (cols >= filled[:, None]) & (cols < n_new[:, None]) & alive[:, None]
        out = torch.where(mask[..., None], state[:, None, :], out)
        filled = torch.where(alive, n_new, filled)
        k = (rates.cumsum(1) < (u[:, 1] * total)[:, None]).sum(1).clamp_max(3)
        step = alive & (total > 0)
        state = state + torch.where(step[:, None], changes[k], 0.0)
        t = t_new
        alive = alive & (filled < g)
    return out.float(), filled >= g


def lv_summaries(traj: torch.Tensor) -> torch.Tensor:
    """The 9 statistics of runs ``(B, T, 2)``: per series the mean, ``log(variance + 1)``, the
    autocorrelations at lags 1 and 2; and the correlation between the two series."""
    x = traj.double()
    mean = x.mean(1)
    c = x - mean[:, None, :]
    var = c.pow(2).mean(1)
    sd = var.clamp_min(1e-8).sqrt()
    z = c / sd[:, None, :]

    def auto(lag: int) -> torch.Tensor:
        return (z[:, lag:] * z[:, :-lag]).sum(1) / (x.shape[1] - 1)

    cross = (z[:, :, 0] * z[:, :, 1]).mean(1)
    s = torch.cat([mean, torch.log1p(var), auto(1), auto(2), cross[:, None]], 1)
    return s.float()


@dataclass
class LotkaVolterra:
    """The simulator with its prior and settings; ``calls`` counts the parameter sets simulated."""

    t_max: float = 30.0
    dt: float = 0.2
    max_events: int = 10_000
    low: float = -5.0
    high: float = 2.0
    calls: int = 0

    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``log θ ~ U[low, high]⁴``, ``(n, 4)``."""
        return self.low + (self.high - self.low) * torch.rand(n, 4, generator=generator)

    def simulate(self, log_theta: torch.Tensor,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(summaries (B, 9), finished (B,))``; unfinished runs' summaries are those of their partial path."""
        self.calls += int(log_theta.shape[0])
        traj, ok = gillespie_lotka_volterra(log_theta, t_max=self.t_max, dt=self.dt, max_events=self.max_events,
                                            generator=generator)
        return lv_summaries(traj), ok
