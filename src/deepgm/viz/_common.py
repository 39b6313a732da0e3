"""Small helpers shared by the plotting modules (argument checking, paths)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

PathLike = str | os.PathLike[str]


def prepare_path(path: PathLike) -> Path:
    """Return ``path`` as a :class:`Path`, creating its parent directories."""
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"path must be a str or os.PathLike, got {type(path).__name__}")  # noqa: TRY004
    out = Path(path)
    if out.name == "":
        raise ValueError(f"path must name a file, got {str(path)!r}")
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def as_float_tensor(x: Any, name: str) -> Tensor:
    """Convert ``x`` to a detached float tensor on the CPU.

    ``uint8`` input is taken to be in [0, 255] and rescaled to [0, 1].
    """
    if isinstance(x, Tensor):
        t = x.detach()
    elif isinstance(x, (list, tuple)) and x and all(isinstance(v, Tensor) for v in x):
        try:
            t = torch.stack([v.detach().cpu() for v in x])
        except RuntimeError as exc:
            raise ValueError(f"{name} holds tensors of different shapes") from exc
    else:
        try:
            t = torch.as_tensor(x)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ValueError(f"{name} must be a Tensor or array-like, got {type(x).__name__}") from exc
    if t.is_complex():
        raise ValueError(f"{name} must be real-valued, got dtype {t.dtype}")
    if t.dtype == torch.uint8:
        return t.cpu().float() / 255.0
    if not t.is_floating_point():
        t = t.float()
    return t.cpu()


def as_points_2d(x: Any, name: str) -> Tensor:
    """Convert ``x`` to a float tensor of shape (N, 2), raising ValueError otherwise."""
    t = as_float_tensor(x, name)
    if t.dim() != 2 or t.shape[1] != 2:
        raise ValueError(f"{name} must have shape (N, 2), got {tuple(t.shape)}")
    if t.shape[0] == 0:
        raise ValueError(f"{name} must contain at least one point")
    return t


def check_positive_int(value: Any, name: str, minimum: int = 1) -> int:
    """Return ``value`` if it is an int >= ``minimum``, else raise ValueError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def check_positive_float(value: Any, name: str) -> float:
    """Return ``value`` as a float if it is a finite number > 0, else raise ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a positive number, got {value!r}")  # noqa: TRY004
    out = float(value)
    if not (out > 0.0 and out < float("inf")):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return out
