"""One picture of a model's samples, whatever they are: a grid for images, a scatter for 2-D points."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deepgm.viz._common import PathLike, as_float_tensor
from deepgm.viz.grid import ImageShape, save_image_grid, upscale
from deepgm.viz.plots import save_samples_2d

__all__ = ["save_samples"]


def save_samples(samples: Any, path: PathLike, image_shape: ImageShape | None = None, nrow: int = 8,
                 min_side: int = 28) -> Path:
    """Write ``samples`` as a PNG: with ``image_shape`` a grid of ``nrow`` images a row (small images
    upscaled to ``min_side`` pixels, values clamped to [0, 1]); without, ``(N, 2)`` points as a scatter.
    Anything else raises ``ValueError`` naming its shape. Returns the path."""
    if image_shape is not None:
        return save_image_grid(upscale(samples, image_shape, min_side), path, nrow=nrow)
    t = as_float_tensor(samples, "samples")
    if t.dim() == 2 and t.shape[1] == 2:
        return save_samples_2d(t, path)
    raise ValueError(f"samples of shape {tuple(t.shape)} are neither images (pass image_shape) nor 2-D points (N, 2)")
