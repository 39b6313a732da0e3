"""Sequential Monte Carlo bounds: FIVO (a particle filter) and the sequence IWAE.

A sequential model proposes ``z_t ~ q(z_t | x_t, state)`` and scores it with the log-weight
``w_t = log p(x_t, z_t | state) - log q(z_t | x_t, state)`` (a step expression, evaluated where ``z_t``
is drawn). With ``K`` particles per sequence, :class:`SMCBound` runs the step over ``K × B`` rows
(particle-major: row ``k·B + b``) and returns, per sequence, the log of the particle filter's
estimate of ``p(x_{1:T})``:

* ``resample="systematic"`` (FIVO, Maddison et al. 2017): whenever the effective sample size
  ``1 / Σ_k w̄_k²`` of a sequence's normalised weights falls below ``ess_threshold · K``, its
  estimate gains ``log mean_k exp(log_w_k)`` and its particles (the carried state) are resampled
  systematically; gradients do not flow through the resampling indices.
* ``resample="never"`` (the sequence IWAE bound): ``log mean_k exp Σ_t w_t``.

Both are lower bounds in expectation: ``E[log p̂] ≤ log p(x_{1:T})``, and with ``K = 1`` and no
resampling the value is the single-sample ELBO. Padded steps (``mask_var``) add no weight and never
resample. When every particle of a sequence has weight zero (``-inf``) or a NaN weight, the evaluation
raises :class:`~deepgm.errors.ParticleWeightError` naming the step and the sequence.

A random walk observed exactly (the proposal is the true posterior, so every weight is the same and
the estimate is exact at any ``K``):

>>> import torch
>>> from deepgm.distributions import Deterministic, Normal
>>> from deepgm.losses import E, LogProb
>>> p = Normal(var=["x"], cond_var=["h"], loc="h", scale=1.0)
>>> carry = Deterministic(var=["h_new"], cond_var=["x"], loc="x")
>>> smc = SMCBound(E(carry, LogProb(p)), particles=4, series_var=["x"], update_value={"h_new": "h"},
...                time_dim=1, initial={"h": torch.zeros(1)})
>>> smc(x=torch.tensor([[0.0, 1.0, 3.0]]).unsqueeze(-1))
tensor([-5.2568])
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch

from deepgm.distributions.base import Distribution, positive_int
from deepgm.distributions.env import Env
from deepgm.errors import ObjectiveError, ParticleWeightError
from deepgm.losses.expr import Loss, as_loss
from deepgm.losses.iterative import Scan, ScanLoss

__all__ = ["SMCBound", "fivo", "sequence_iwae", "systematic_resample", "ParticleWeightError"]


def systematic_resample(log_weights: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Ancestor indices ``(K, B)`` for the ``(K, B)`` log-weights (``K`` particles of ``B`` sequences):
    one uniform offset per sequence, ``K`` evenly spaced points through the cumulative weights.

    >>> lw = torch.log(torch.tensor([[0.0], [1.0], [0.0]]))  # all the weight on particle 1
    >>> systematic_resample(lw).flatten().tolist()
    [1, 1, 1]
    """
    k, b = log_weights.shape
    probs = torch.softmax(log_weights.detach(), dim=0)
    cum = probs.cumsum(0).transpose(0, 1).contiguous()  # (B, K)
    cum[:, -1] = 1.0  # guards the rounding of the last cumulative weight
    u = torch.rand(b, 1, generator=generator, dtype=cum.dtype, device=cum.device)
    points = (u + torch.arange(k, dtype=cum.dtype, device=cum.device)) / k  # (B, K)
    return torch.searchsorted(cum, points).clamp_(max=k - 1).transpose(0, 1)


class SMCBound(ScanLoss):
    """``log p̂_K(x_{1:T})`` per sequence from ``K = particles`` particles (see the module docstring).

    ``step_log_weight`` is the step's log-weight expression (e.g. ``E(q, LogProb(p_x) + LogProb(p_z) -
    LogProb(q))`` — it draws ``z_t`` from the proposal). The scan options (``series_var``,
    ``update_value``, ``mask_var``, ``time_dim``, ``initial``, ``max_iter``, ``timestep_var``) are those
    of :class:`~deepgm.losses.IterativeLoss`; every series slice, mask row and initial state is repeated
    over the particles, and the carried state is what resampling permutes.
    """

    def __init__(self, step_log_weight: Loss, particles: int, series_var: Sequence[str] = (),
                 update_value: Mapping[str, str | Sequence[str]] | None = None, mask_var: str | None = None,
                 time_dim: int = 0,
                 initial: Mapping[str, torch.Tensor] | None = None, max_iter: int | None = None,
                 timestep_var: str | None = None, resample: Literal["systematic", "never"] = "systematic",
                 ess_threshold: float = 0.5, slice_step: Distribution | None = None) -> None:
        self.step = as_loss(step_log_weight)
        self.particles = positive_int(particles, "SMCBound: particles", 1, ObjectiveError)
        if resample not in ("systematic", "never"):
            raise ObjectiveError(f"SMCBound: resample must be 'systematic' or 'never', got {resample!r}")
        if not (isinstance(ess_threshold, (int, float)) and 0.0 <= ess_threshold <= 1.0):
            raise ObjectiveError(f"SMCBound: ess_threshold must be a number in [0, 1], got {ess_threshold!r}")
        self.resample = resample
        self.ess_threshold = float(ess_threshold)
        self.scan = Scan(series_var, update_value, max_iter, timestep_var, slice_step, mask_var, time_dim,
                         initial, owner="SMCBound")

    def _eval(self, env: Env) -> torch.Tensor:
        k = self.particles
        log_w: torch.Tensor | None = None  # (K, B) weights since the last resampling
        log_z: Any = 0.0  # (B,) the estimate so far
        increments: list[torch.Tensor] = []  # per step (K, B): only read to locate a dead filter
        resampled: dict[int, torch.Tensor] = {}  # step -> (B,) the sequences resampled after it
        offsets = identity = None
        for view in self.scan.run(env, particles=k):
            batch = view.batch
            if batch is None:
                raise ObjectiveError("SMCBound needs batched sequences (a mask or a series with a batch dimension)")
            w = self.step._eval(view.env)
            if not torch.is_tensor(w) or w.dim() != 1 or w.shape[0] != k * batch:
                raise ObjectiveError(f"SMCBound: the step's log-weight must have one value per particle and "
                                     f"sequence ({k * batch} rows), got shape {tuple(getattr(w, 'shape', ()))}")
            w = w.reshape(k, batch)
            m = None if view.mask is None else view.mask.reshape(k, batch)[0]
            if m is not None:  # padded steps add nothing, whatever the step computed there
                w = torch.where(m, w, 0.0)
            increments.append(w)
            log_w = w if log_w is None else log_w + w
            if self.resample == "never":
                continue
            total = torch.logsumexp(log_w, 0)
            normalised = (log_w - total).detach()
            ess = torch.exp(-torch.logsumexp(2 * normalised, 0))  # (B,)
            need = ess < self.ess_threshold * k
            if m is not None:
                need = need & m
            if w.device.type == "cpu" and not bool(need.any()):
                continue  # nothing to resample (on a CPU, asking costs no synchronisation)
            resampled[view.t] = need
            log_z = log_z + torch.where(need, total - math.log(k), 0.0)
            ancestors = systematic_resample(log_w)
            if identity is None or offsets is None:
                identity = torch.arange(k, device=w.device).unsqueeze(1).expand(k, batch)
                offsets = torch.arange(batch, device=w.device)
            ancestors = torch.where(need.unsqueeze(0), ancestors, identity)
            log_w = torch.where(need.unsqueeze(0), 0.0, log_w)
            view.permute = (ancestors * batch + offsets).reshape(-1)  # the scan carries the resampled particles
        if log_w is None:
            raise ObjectiveError("SMCBound: the sequences have no step")
        log_z = log_z + torch.logsumexp(log_w, 0) - math.log(k)
        if not bool(torch.isfinite(log_z.detach()).all()):
            raise self._dead(increments, resampled, log_z)
        estimate: torch.Tensor = log_z
        return estimate

    @staticmethod
    def _dead(increments: list[torch.Tensor], resampled: dict[int, torch.Tensor], log_z: torch.Tensor
              ) -> ParticleWeightError:
        """The error naming the first step and sequence left without a live particle (found by replaying the
        weights), or the sequence whose estimate is not finite."""
        with torch.no_grad():
            cum = torch.zeros_like(increments[0])
            for t, w in enumerate(increments):
                cum = cum + w
                dead = ~torch.isfinite(torch.logsumexp(cum, 0))
                if bool(dead.any()):
                    b = int(dead.nonzero()[0])
                    return ParticleWeightError(
                        f"SMCBound: at step {t} every particle of sequence {b} has weight zero or a non-finite "
                        f"log-weight (log-weights {cum[:, b].tolist()}); the proposal puts no mass where the model "
                        f"does, or the model's densities overflowed")
                if t in resampled:
                    cum = torch.where(resampled[t].unsqueeze(0), 0.0, cum)
            b = int((~torch.isfinite(log_z)).nonzero()[0])
            return ParticleWeightError(f"SMCBound: the estimate of sequence {b} is {float(log_z[b])}: its weights "
                                       f"overflowed")

    def children(self) -> tuple[Loss, ...]:
        return (self.step,)

    def _render(self, latex: bool) -> str:
        inner = self.scan.wrap(self.step._render(latex), latex)
        top = self.scan.render_top()
        name = "FIVO" if self.resample == "systematic" else "IWAE"
        if latex:
            head = rf"\log \hat{{p}}^{{\mathrm{{{name}}}}}_{{K={self.particles}}}"
            return rf"{head} \left[\sum_{{t=1}}^{{{top}}} {inner}\right]"
        return f"log p^{name}_K={self.particles}[sum_(t=1..{top}) {inner}]"


def fivo(step_log_weight: Loss, particles: int = 4, ess_threshold: float = 0.5, **scan: Any) -> SMCBound:
    """The FIVO bound: :class:`SMCBound` with systematic resampling."""
    return SMCBound(step_log_weight, particles, resample="systematic", ess_threshold=ess_threshold, **scan)


def sequence_iwae(step_log_weight: Loss, particles: int = 4, **scan: Any) -> SMCBound:
    """The sequence IWAE bound ``log mean_k exp Σ_t w_t``: :class:`SMCBound` without resampling."""
    return SMCBound(step_log_weight, particles, resample="never", **scan)
