"""Image-grid views of a model: reconstructions, latent traversals, decoded manifolds."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from deepgm.viz._common import (
    PathLike,
    as_float_tensor,
    check_positive_float,
    check_positive_int,
)
from deepgm.viz.grid import ImageShape, normalize_image_shape, save_image_grid, to_image_batch

Decoder = Callable[[Tensor], Tensor]


def infer_device(fn: Any) -> torch.device:
    """Device of the module behind ``fn`` (a Module or one of its bound methods), else CPU."""
    owner = fn if isinstance(fn, torch.nn.Module) else getattr(fn, "__self__", None)
    if isinstance(owner, torch.nn.Module):
        for tensor in (*owner.parameters(), *owner.buffers()):
            return tensor.device
    return torch.device("cpu")


def _decode(decode: Decoder, z: Tensor, image_shape: ImageShape, batch_size: int) -> Tensor:
    """Decode ``z`` in chunks under no_grad and return (N, C, H, W) images on the CPU."""
    if not callable(decode):
        raise ValueError(f"decode must be callable, got {type(decode).__name__}")  # noqa: TRY004
    chunks = []
    with torch.no_grad():
        for start in range(0, z.shape[0], batch_size):
            zc = z[start : start + batch_size]
            out = decode(zc)
            if not isinstance(out, Tensor):
                raise ValueError(f"decode must return a Tensor, got {type(out).__name__}")  # noqa: TRY004
            if out.dim() < 1 or out.shape[0] != zc.shape[0]:
                raise ValueError(
                    f"decode returned shape {tuple(out.shape)} for a batch of {zc.shape[0]} latents; "
                    "the first dimension must match"
                )
            chunks.append(out.detach().cpu())
    return to_image_batch(torch.cat(chunks), image_shape, name="decode(z)")


def save_reconstructions(
    inputs: Tensor,
    reconstructions: Tensor,
    path: PathLike,
    n: int = 8,
    nrow: int | None = None,
    image_shape: ImageShape | None = None,
    padding: int = 2,
    pad_value: float = 0.0,
) -> Path:
    """Save the first ``n`` inputs in one row with their reconstructions beneath.

    With ``nrow < n`` the images wrap into alternating (inputs, reconstructions) row
    pairs of ``nrow`` images. ``reconstructions`` may be flat if it holds as many
    values per sample as ``inputs``. Returns the PNG path.
    """
    n = check_positive_int(n, "n")
    if nrow is not None:
        nrow = check_positive_int(nrow, "nrow")
    x = to_image_batch(inputs, image_shape, name="inputs")
    r_raw = as_float_tensor(reconstructions, "reconstructions")
    if r_raw.dim() < 1 or r_raw.shape[0] != x.shape[0]:
        raise ValueError(
            f"inputs and reconstructions must have the same length, got {x.shape[0]} and "
            f"{r_raw.shape[0] if r_raw.dim() else 'a scalar'}"
        )
    try:
        r = to_image_batch(r_raw, x.shape[1:], name="reconstructions")
    except ValueError as exc:
        raise ValueError(
            f"reconstructions of shape {tuple(r_raw.shape)} do not match inputs of shape {tuple(x.shape)}"
        ) from exc
    count = min(n, x.shape[0])
    width = min(nrow if nrow is not None else count, count)
    pairs = -(-count // width)
    cells = torch.full((pairs, 2, width, *x.shape[1:]), float(pad_value))
    flat = cells.view(pairs * 2, width, *x.shape[1:])
    for p in range(pairs):
        lo, hi = p * width, min((p + 1) * width, count)
        flat[2 * p, : hi - lo] = x[lo:hi]
        flat[2 * p + 1, : hi - lo] = r[lo:hi]
    grid_batch = cells.reshape(pairs * 2 * width, *x.shape[1:])
    return save_image_grid(grid_batch, path, nrow=width, padding=padding, pad_value=pad_value)


def save_latent_traversal(
    decode: Decoder,
    z0: Tensor,
    path: PathLike,
    dims: Sequence[int] | None = None,
    values: Tensor | Sequence[float] | None = None,
    image_shape: ImageShape = (1, 28, 28),
    padding: int = 2,
    pad_value: float = 0.0,
) -> Path:
    """Save one row per latent dimension in ``dims``, setting ``z0[d]`` to each of ``values``.

    ``values`` defaults to ``torch.linspace(-3, 3, 9)``; ``dims`` defaults to every
    dimension of ``z0``. ``decode`` maps (M, D) latents to images with
    ``prod(image_shape)`` values each, ideally in [0, 1]. Returns the PNG path.
    """
    z = z0.detach() if isinstance(z0, Tensor) else as_float_tensor(z0, "z0")
    if z.dim() == 2 and z.shape[0] == 1:
        z = z[0]
    if z.dim() != 1 or z.shape[0] == 0:
        raise ValueError(f"z0 must be a 1-D latent vector (D,), got shape {tuple(z.shape)}")
    if not z.is_floating_point():
        z = z.float()
    latent_dim = z.shape[0]
    if dims is None:
        dim_list = list(range(latent_dim))
    else:
        dim_list = list(dims)
        if not dim_list:
            raise ValueError("dims must name at least one latent dimension")
        for d in dim_list:
            if isinstance(d, bool) or not isinstance(d, int) or not 0 <= d < latent_dim:
                raise ValueError(f"dims must hold ints in [0, {latent_dim}), got {d!r}")
    vals = torch.linspace(-3.0, 3.0, 9) if values is None else as_float_tensor(values, "values")
    if vals.dim() != 1 or vals.shape[0] == 0:
        raise ValueError(f"values must be a non-empty 1-D sequence, got shape {tuple(vals.shape)}")
    shape = normalize_image_shape(image_shape)
    vals = vals.to(device=z.device, dtype=z.dtype)
    batch = z.repeat(len(dim_list) * vals.shape[0], 1)
    for row, d in enumerate(dim_list):
        batch[row * vals.shape[0] : (row + 1) * vals.shape[0], d] = vals
    images = _decode(decode, batch, shape, batch_size=batch.shape[0])
    return save_image_grid(images, path, nrow=vals.shape[0], padding=padding, pad_value=pad_value)


def save_decoded_manifold(
    decode: Decoder,
    path: PathLike,
    grid: int = 15,
    lim: float = 3.0,
    image_shape: ImageShape = (1, 28, 28),
    padding: int = 0,
    pad_value: float = 0.0,
    batch_size: int = 256,
    device: torch.device | str | None = None,
) -> Path:
    """Decode a ``grid`` x ``grid`` lattice over [-lim, lim]^2 of a 2-D latent space and save it.

    Column ``j`` has ``z1 = linspace(-lim, lim)[j]``; rows run from ``z2 = +lim`` at the
    top to ``-lim`` at the bottom, like a plot's axes. ``device`` defaults to that of
    ``decode``'s module if it is one (or a bound method of one), else CPU. Returns the path.
    """
    grid = check_positive_int(grid, "grid")
    lim = check_positive_float(lim, "lim")
    batch_size = check_positive_int(batch_size, "batch_size")
    shape = normalize_image_shape(image_shape)
    target = torch.device(device) if device is not None else infer_device(decode)
    axis = torch.linspace(-lim, lim, grid)
    z2, z1 = torch.meshgrid(axis.flip(0), axis, indexing="ij")
    z = torch.stack([z1.reshape(-1), z2.reshape(-1)], dim=1).to(target)
    images = _decode(decode, z, shape, batch_size=batch_size)
    return save_image_grid(images, path, nrow=grid, padding=padding, pad_value=pad_value)
