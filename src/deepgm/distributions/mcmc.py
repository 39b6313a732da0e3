"""Gradient-based MCMC for unnormalised densities ``π(x) ∝ exp(-E(x))``, and persistent chains.

A sampler is a small frozen description of a chain (step size, number of steps) whose :meth:`run` takes
an energy ``E: (N, ...) -> (N,)`` (one energy per row, differentiable in ``x``) and the chains' starting
points ``x0`` (one row per chain) and returns the chains' last states, detached:

* :class:`Langevin` — unadjusted Langevin dynamics ``x ← x - (ε/2) ∇E(x) + √ε ξ``; with a
  ``noise_scale`` other than ``√ε`` it is the "stochastic-gradient Langevin" heuristic of EBM training
  (a gradient step plus smaller noise), which does not target ``π`` exactly;
* :class:`MALA` — the same proposal with a Metropolis–Hastings correction, so that ``π`` is invariant for
  any step size; it reports its acceptance rate (``last_acceptance``) and can tune ``ε`` per chain
  during ``adapt`` burn-in steps.

:class:`ReplayBuffer` keeps persistent chains between calls (persistent contrastive divergence): a draw
takes stored states, each replaced by a fresh start with probability ``reinit_prob``, and ``update``
writes the advanced states back. It is an ``nn.Module`` (its states are buffers), so a model that owns
it saves and moves it with its weights.

Langevin on ``N(0, 1)`` (energy ``x²/2``) from far away ends near its mean and variance:

>>> import torch
>>> _ = torch.manual_seed(1)
>>> x = Langevin(step_size=0.05, steps=300).run(lambda x: 0.5 * (x ** 2).sum(-1), torch.full((4000, 1), 5.0))
>>> round(float(x.mean()), 1), round(float(x.var()), 1)
(0.0, 1.0)
>>> Langevin(step_size=0.0, steps=10)
Traceback (most recent call last):
...
deepgm.errors.ConfigError: Langevin: step_size must be a finite number > 0, got 0.0
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from deepgm.errors import ConfigError, NonFiniteLossError, ShapeError

__all__ = ["MCMCSampler", "Langevin", "MALA", "ReplayBuffer", "EnergyFn", "energy_and_grad"]

EnergyFn = Callable[[torch.Tensor], torch.Tensor]
"""``E(x)``: rows of states ``(N, ...)`` to one energy per row ``(N,)``."""


def _positive(owner: str, name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(owner, name, "a finite number > 0", value)
    return float(value)


def _count(owner: str, name: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(owner, name, f"an integer >= {minimum}", value)
    return value


def energy_and_grad(energy: EnergyFn, x: torch.Tensor, owner: str = "sampler") -> tuple[torch.Tensor, torch.Tensor]:
    """``(E(x), ∇_x E(x))`` for rows ``x``, both detached; ``E`` must return one energy per row.

    The gradient is taken with respect to ``x`` only (``torch.autograd.grad``), so the parameters of the
    energy's network collect no gradient. Works inside ``torch.no_grad()``.

    >>> e, g = energy_and_grad(lambda x: (x ** 2).sum(-1), torch.tensor([[1.0, 2.0]]))
    >>> e.tolist(), g.tolist()
    ([5.0], [[2.0, 4.0]])
    """
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        e = energy(x)
        if e.shape != x.shape[:1]:
            raise ShapeError(f"{owner}: the energy must give one value per row, shape ({x.shape[0]},); "
                             f"got shape {tuple(e.shape)} for states of shape {tuple(x.shape)}")
        (g,) = torch.autograd.grad(e.sum(), x)
    return e.detach(), g.detach()


def _check_final(owner: str, x: torch.Tensor, e: torch.Tensor, steps: int) -> None:
    """One check per run (one host synchronisation): a NaN energy or gradient makes every later state NaN."""
    if not bool(torch.isfinite(e).all()) or not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(e)).sum()) if not bool(torch.isfinite(e).all()) else \
            int((~torch.isfinite(x.reshape(len(x), -1)).all(-1)).sum())
        raise NonFiniteLossError(
            f"{owner}: the energy or its gradient became NaN or infinite within {steps} steps ({bad} of {len(x)} "
            "chains); expected a finite energy everywhere the chains go: lower step_size, clip the gradient "
            "(clip_grad) or bound the states (bounds)"
        )


@dataclass(frozen=True, kw_only=True)
class MCMCSampler:
    """What every sampler has: ``steps`` transitions per :meth:`run`, optional ``bounds`` (states clamped
    into ``[lo, hi]`` after each step, e.g. pixel values)."""

    steps: int = 100
    bounds: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        owner = type(self).__name__
        _count(owner, "steps", self.steps, 1)
        if self.bounds is not None and not (len(self.bounds) == 2 and self.bounds[0] < self.bounds[1]):
            raise ConfigError(owner, "bounds", "None or (lo, hi) with lo < hi", self.bounds)

    def with_steps(self, steps: int) -> MCMCSampler:
        """The same sampler with another number of steps."""
        return dataclasses.replace(self, steps=steps)

    def _clamp(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.bounds is None else x.clamp(self.bounds[0], self.bounds[1])

    def run(self, energy: EnergyFn, x0: torch.Tensor) -> torch.Tensor:
        """Advance the chains that start at the rows of ``x0`` by ``steps`` transitions; their last states."""
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class Langevin(MCMCSampler):
    """Unadjusted Langevin dynamics: ``x ← x - (ε/2) ∇E(x) + σ ξ``, ``ξ ~ N(0, I)``, ``σ = √ε`` unless
    ``noise_scale`` is given (the decoupled step of EBM practice, e.g. ε/2 = 10, σ = 0.005 on images);
    ``clip_grad`` clamps each gradient entry into ``[-clip_grad, clip_grad]``.

    With ``σ = √ε`` the chain targets ``π`` up to an ``O(ε)`` bias (no Metropolis correction: see
    :class:`MALA`)."""

    step_size: float = 0.01
    noise_scale: float | None = None
    clip_grad: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive("Langevin", "step_size", self.step_size)
        if self.noise_scale is not None and (not math.isfinite(self.noise_scale) or self.noise_scale < 0):
            raise ConfigError("Langevin", "noise_scale", "None or a finite number >= 0", self.noise_scale)
        if self.clip_grad is not None:
            _positive("Langevin", "clip_grad", self.clip_grad)

    @property
    def sigma(self) -> float:
        """The noise's standard deviation per step."""
        return math.sqrt(self.step_size) if self.noise_scale is None else self.noise_scale

    def run(self, energy: EnergyFn, x0: torch.Tensor) -> torch.Tensor:
        x = x0.detach().clone()
        e = torch.zeros(len(x), dtype=x.dtype, device=x.device)
        for _ in range(self.steps):
            e, g = energy_and_grad(energy, x, "Langevin")
            if self.clip_grad is not None:
                g = g.clamp(-self.clip_grad, self.clip_grad)
            x = self._clamp(x - 0.5 * self.step_size * g + self.sigma * torch.randn_like(x))
        _check_final("Langevin", x, e, self.steps)
        return x


@dataclass(frozen=True, kw_only=True)
class MALA(MCMCSampler):
    """Metropolis-adjusted Langevin: the proposal ``x' = x - (ε/2)∇E(x) + √ε ξ`` is accepted with
    probability ``min(1, π(x') q(x|x') / (π(x) q(x'|x)))``, ``q(b|a) = N(b; a - (ε/2)∇E(a), ε I)``.

    ``adapt`` burn-in steps first tune each chain's ``ε`` towards ``target_acceptance`` (Robbins–Monro on
    ``log ε``); the ``steps`` that follow keep it fixed, so they are a valid chain for ``π``.
    ``last_acceptance`` is the acceptance rate over those ``steps`` of the last run (all chains),
    ``last_step_size`` the mean step size they used. ``bounds`` are not allowed: clamping would break
    the detailed balance that the correction restores.
    """

    step_size: float = 0.01
    adapt: int = 0
    target_acceptance: float = 0.574
    stats: dict[str, float] = field(default_factory=dict, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive("MALA", "step_size", self.step_size)
        _count("MALA", "adapt", self.adapt, 0)
        if not 0 < self.target_acceptance < 1:
            raise ConfigError("MALA", "target_acceptance", "in (0, 1)", self.target_acceptance)
        if self.bounds is not None:
            raise ConfigError("MALA", "bounds", "None (clamping breaks the Metropolis correction)", self.bounds)

    @property
    def last_acceptance(self) -> float:
        """The acceptance rate of the last run's non-adaptive steps (NaN before any run)."""
        return self.stats.get("acceptance", math.nan)

    @property
    def last_step_size(self) -> float:
        """The mean step size of the last run's non-adaptive steps (NaN before any run)."""
        return self.stats.get("step_size", math.nan)

    def run(self, energy: EnergyFn, x0: torch.Tensor) -> torch.Tensor:
        x = x0.detach().clone()
        n = len(x)
        lead = (n,) + (1,) * (x.dim() - 1)
        dims = tuple(range(1, x.dim()))
        log_h = torch.full(lead, math.log(self.step_size), dtype=x.dtype, device=x.device)
        e, g = energy_and_grad(energy, x, "MALA")
        accepted = torch.zeros(n, dtype=x.dtype, device=x.device)

        def log_q(to: torch.Tensor, frm: torch.Tensor, g_frm: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
            return -((to - frm + 0.5 * h * g_frm) ** 2).sum(dims) / (2 * h.reshape(n))

        for i in range(self.adapt + self.steps):
            h = log_h.exp()
            prop = x - 0.5 * h * g + h.sqrt() * torch.randn_like(x)
            e_new, g_new = energy_and_grad(energy, prop, "MALA")
            log_alpha = (e - e_new) + log_q(x, prop, g_new, h) - log_q(prop, x, g, h)
            log_alpha = torch.nan_to_num(log_alpha, nan=-math.inf)
            accept = torch.rand(n, dtype=x.dtype, device=x.device).log() < log_alpha
            a = accept.reshape(lead)
            x, g = torch.where(a, prop, x), torch.where(a, g_new, g)
            e = torch.where(accept, e_new, e)
            if i < self.adapt:
                rate = log_alpha.clamp(max=0).exp().reshape(lead)
                log_h = log_h + (rate - self.target_acceptance) / math.sqrt(i + 1)
            else:
                accepted += accept.to(x.dtype)
        _check_final("MALA", x, e, self.adapt + self.steps)
        self.stats["acceptance"] = float(accepted.mean()) / self.steps
        self.stats["step_size"] = float(log_h.exp().mean())
        return x


class ReplayBuffer(nn.Module):
    """``capacity`` persistent chain states of shape ``event_shape`` (a buffer: saved with the model).

    :meth:`draw` returns ``n`` starting points and their slots: stored states, each replaced with
    probability ``reinit_prob`` by a fresh start from ``init(n)`` (the buffer fills itself from ``init``
    on its first draw); :meth:`update` stores the advanced states back into those slots.

    >>> buf = ReplayBuffer(100, (2,), reinit_prob=0.0)
    >>> x0, slots = buf.draw(8, lambda n: torch.zeros(n, 2))
    >>> buf.update(slots, x0 + 1.0)
    >>> int((buf.states[:, 0] == 1).sum()) == len(set(slots.tolist()))  # the drawn slots hold the new states
    True
    """

    states: torch.Tensor
    filled: torch.Tensor

    def __init__(self, capacity: int, event_shape: tuple[int, ...], reinit_prob: float = 0.05) -> None:
        super().__init__()
        _count("ReplayBuffer", "capacity", capacity, 1)
        if not 0.0 <= reinit_prob <= 1.0:
            raise ConfigError("ReplayBuffer", "reinit_prob", "in [0, 1]", reinit_prob)
        self.capacity, self.event_shape, self.reinit_prob = capacity, tuple(event_shape), float(reinit_prob)
        self.register_buffer("states", torch.zeros((capacity, *self.event_shape)))
        self.register_buffer("filled", torch.zeros((), dtype=torch.bool))

    def draw(self, n: int, init: Callable[[int], torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` starting points (stored states, a ``reinit_prob`` share fresh from ``init``) and their slots."""
        if not bool(self.filled):
            fresh = init(self.capacity).detach()
            if tuple(fresh.shape) != (self.capacity, *self.event_shape):
                raise ShapeError(f"ReplayBuffer: init({self.capacity}) must have shape "
                                 f"{(self.capacity, *self.event_shape)}, got {tuple(fresh.shape)}")
            self.states = fresh.to(self.states.dtype).to(self.states.device)
            self.filled.fill_(True)
        slots = torch.randint(0, self.capacity, (n,), device=self.states.device)
        x = self.states[slots].clone()
        if self.reinit_prob > 0:
            renew = torch.rand(n, device=x.device) < self.reinit_prob
            if bool(renew.any()):
                x[renew] = init(int(renew.sum())).detach().to(x.dtype).to(x.device)
        return x, slots

    def update(self, slots: torch.Tensor, x: torch.Tensor) -> None:
        """Store the advanced chain states ``x`` in ``slots`` (those :meth:`draw` returned)."""
        self.states[slots] = x.detach().to(self.states.dtype)

    def extra_repr(self) -> str:
        return f"capacity={self.capacity}, event_shape={self.event_shape}, reinit_prob={self.reinit_prob}"
