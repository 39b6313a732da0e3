"""What the zoo's sequential models share: the scan options of batch-first padded sequences, KL annealing
as a schedule, and the choice of training bound (ELBO, IWAE or FIVO)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import torch
from torch import nn

from deepgm.data import DataInfo
from deepgm.losses import Loss

CLIP_GRAD_NORM = 10.0  # the sequence models' gradient clipping (global norm); --clip-grad-norm overrides it

__all__ = ["CLIP_GRAD_NORM", "flat_input", "shaped_output", "scan_options", "anneal", "sequence_objective", "weighted"]


def scan_options(series: Sequence[str], update: Mapping[str, str | Sequence[str]],
                 initial: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """The :class:`~deepgm.losses.IterativeLoss` options for ``{"x": (N, T, ...), "mask": (N, T)}`` batches."""
    return {"series_var": list(series), "update_value": dict(update), "mask_var": "mask", "time_dim": 1,
            "initial": dict(initial)}


def flat_input(data: DataInfo, net: nn.Module) -> nn.Module:
    """``net`` fed one time step flattened to a vector (video frames ``(1, H, W)``); piano rolls as they are."""
    return net if len(data.x_shape) == 1 else nn.Sequential(nn.Flatten(-len(data.x_shape)), net)


def shaped_output(data: DataInfo, net: nn.Module) -> nn.Module:
    """``net``'s vector output shaped as one time step (a frame); unchanged for piano rolls."""
    return net if len(data.x_shape) == 1 else nn.Sequential(net, nn.Unflatten(-1, data.x_shape))


def weighted(beta: Loss | float, term: Loss) -> Loss:
    """``β · term``, printed as ``term`` alone when ``β`` is the number 1."""
    return term if isinstance(beta, (int, float)) and beta == 1 else beta * term


def anneal(steps: int, start: float) -> Callable[[int], dict[str, float]]:
    """KL annealing: ``β`` from ``start`` to 1 linearly over ``steps`` optimisation steps, then 1.

    >>> schedule = anneal(100, 0.2)
    >>> schedule(0), schedule(50), schedule(1000)
    ({'beta': 0.2}, {'beta': 0.6}, {'beta': 1.0})
    """
    def beta(step: int) -> dict[str, float]:
        if steps <= 0:
            return {"beta": 1.0}
        return {"beta": round(start + (1.0 - start) * min(1.0, step / steps), 6)}

    return beta


def sequence_objective(objective: Literal["elbo", "iwae", "fivo"], elbo: Loss,
                       bound: Callable[[int, Literal["systematic", "never"]], Loss], particles: int) -> Loss:
    """The training loss: the negative per-sequence ``elbo`` (annealed) or IWAE / FIVO bound with
    ``particles`` particles, averaged over the batch's sequences."""
    if objective == "elbo":
        return -elbo.mean()
    if objective == "iwae":
        return -bound(particles, "never").mean()
    if objective == "fivo":
        return -bound(particles, "systematic").mean()
    raise ValueError(f"objective must be 'elbo', 'iwae' or 'fivo', got {objective!r}")
