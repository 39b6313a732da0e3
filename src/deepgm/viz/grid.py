"""Image grids: tile a batch of images into one picture and write it as a PNG."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.image as mpimg
import torch
from torch import Tensor

from deepgm.viz._common import PathLike, as_float_tensor, check_positive_int, prepare_path

ImageShape = Sequence[int]


def normalize_image_shape(image_shape: ImageShape, name: str = "image_shape") -> tuple[int, int, int]:
    """Return ``image_shape`` as ``(C, H, W)``; ``(H, W)`` means one channel."""
    try:
        dims = tuple(image_shape)
    except TypeError as exc:
        raise ValueError(f"{name} must be a sequence of 2 or 3 ints, got {image_shape!r}") from exc
    if len(dims) not in (2, 3) or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in dims):
        raise ValueError(f"{name} must be (H, W) or (C, H, W) with positive ints, got {image_shape!r}")
    if len(dims) == 2:
        return (1, dims[0], dims[1])
    return (dims[0], dims[1], dims[2])


def to_image_batch(images: Any, image_shape: ImageShape | None = None, name: str = "images") -> Tensor:
    """Return ``images`` as a float CPU tensor of shape (N, C, H, W).

    Accepts (N, C, H, W), (N, H, W) (one channel) or, given ``image_shape``, any
    (N, ...) tensor with ``prod(image_shape)`` values per sample (e.g. flat (N, D)).
    """
    t = as_float_tensor(images, name)
    if t.dim() < 1 or t.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one image, got shape {tuple(t.shape)}")
    if image_shape is not None:
        shape = normalize_image_shape(image_shape)
        if t.dim() < 2:
            raise ValueError(f"{name} must have a batch dimension (N, ...), got shape {tuple(t.shape)}")
        per_sample = math.prod(t.shape[1:])
        if per_sample != math.prod(shape):
            raise ValueError(
                f"{name} has {per_sample} values per sample, which does not match "
                f"image_shape={tuple(image_shape)} ({math.prod(shape)} values)"
            )
        return t.reshape(t.shape[0], *shape)
    if t.dim() == 4:
        return t
    if t.dim() == 3:
        return t.unsqueeze(1)
    if t.dim() == 2:
        raise ValueError(f"{name} is flat with shape {tuple(t.shape)}; pass image_shape to reshape it")
    raise ValueError(f"{name} must have shape (N, C, H, W), (N, H, W) or (N, D) with image_shape, got {tuple(t.shape)}")


def make_grid(
    images: Tensor,
    nrow: int = 8,
    padding: int = 2,
    pad_value: float = 0.0,
    image_shape: ImageShape | None = None,
) -> Tensor:
    """Tile a batch of images into one (C, H', W') tensor, ``nrow`` images per row.

    With N images of size (C, H, W), ``ncol = min(nrow, N)`` and ``rows = ceil(N / ncol)``,
    the result has ``H' = rows * (H + padding) + padding`` and
    ``W' = ncol * (W + padding) + padding``. Image ``i`` sits in row ``i // ncol``,
    column ``i % ncol``; padding and unused cells are filled with ``pad_value``.
    Values are not clamped here (``save_image_grid`` clamps to [0, 1]).
    """
    nrow = check_positive_int(nrow, "nrow")
    padding = check_positive_int(padding, "padding", minimum=0)
    if isinstance(pad_value, bool) or not isinstance(pad_value, (int, float)):
        raise ValueError(f"pad_value must be a number, got {pad_value!r}")  # noqa: TRY004
    batch = to_image_batch(images, image_shape)
    n, c, h, w = batch.shape
    ncol = min(nrow, n)
    rows = math.ceil(n / ncol)
    cell_h, cell_w = h + padding, w + padding
    cells = torch.full((rows * ncol, c, cell_h, cell_w), float(pad_value), dtype=batch.dtype)
    cells[:n, :, padding:, padding:] = batch
    tiled = cells.reshape(rows, ncol, c, cell_h, cell_w).permute(2, 0, 3, 1, 4)
    tiled = tiled.reshape(c, rows * cell_h, ncol * cell_w)
    out = torch.full((c, rows * cell_h + padding, ncol * cell_w + padding), float(pad_value), dtype=batch.dtype)
    out[:, : rows * cell_h, : ncol * cell_w] = tiled
    return out


def save_grid_tensor(grid: Tensor, path: PathLike) -> Path:
    """Write a (C, H, W) tensor with C in {1, 3, 4} as a PNG, clamping values to [0, 1]."""
    out = prepare_path(path)
    if grid.dim() != 3 or grid.shape[0] not in (1, 3, 4):
        raise ValueError(f"images must have 1, 3 or 4 channels, got grid of shape {tuple(grid.shape)}")
    arr = torch.nan_to_num(grid.detach().cpu().float(), nan=0.0).clamp(0.0, 1.0)
    if arr.shape[0] == 1:
        mpimg.imsave(out, arr[0].numpy(), cmap="gray", vmin=0.0, vmax=1.0, format="png")
    else:
        mpimg.imsave(out, arr.permute(1, 2, 0).contiguous().numpy(), format="png")
    return out


def save_image_grid(
    images: Tensor,
    path: PathLike,
    nrow: int = 8,
    padding: int = 2,
    pad_value: float = 0.0,
    image_shape: ImageShape | None = None,
) -> Path:
    """Tile ``images`` with :func:`make_grid` and write the grid as a PNG.

    Values are clamped to [0, 1]; one-channel images are written in grey, three or
    four channels as RGB(A). The PNG has exactly the grid's pixel size. Returns the path.
    """
    batch = to_image_batch(images, image_shape)
    if batch.shape[1] not in (1, 3, 4):
        raise ValueError(f"images must have 1, 3 or 4 channels, got {batch.shape[1]} (shape {tuple(batch.shape)})")
    grid = make_grid(batch, nrow=nrow, padding=padding, pad_value=pad_value)
    return save_grid_tensor(grid, path)


def upscale(images: Any, image_shape: ImageShape, min_side: int = 28) -> Tensor:
    """``images`` (any ``(N, ...)`` holding ``prod(image_shape)`` values each, e.g. flat) as ``(N, C, H, W)``
    with every pixel repeated ``max(1, min_side // W)`` times along each axis, so that small images (8×8
    digits) show at about MNIST's size; images at least ``min_side`` wide are only reshaped."""
    batch = to_image_batch(images, image_shape)
    factor = max(1, check_positive_int(min_side, "min_side") // batch.shape[-1])
    return batch.repeat_interleave(factor, -1).repeat_interleave(factor, -2) if factor > 1 else batch
