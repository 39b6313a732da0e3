"""A dSprites-like dataset rendered on demand with torch: binary sprites with known factors.

Five independent factors, each on a grid (indices in the order below, last one varying fastest):

* ``shape``: square, ellipse, heart;
* ``scale``: ``n_scale`` values in [0.5, 1];
* ``rotation``: ``n_rotation`` angles ``2πk / n_rotation`` (radians, counter-clockwise);
* ``pos_x``, ``pos_y``: ``n_pos`` values in [0, 1] (left to right, top to bottom).

A sprite of scale ``s`` fits in a box of half-side ``s · 0.15`` (in units of the image width)
before rotation; positions are mapped into ``[m, 1 - m]`` with ``m = 0.15 √2 + 0.02`` so every sprite
lies fully inside the image, clear of the border. A pixel is 1 when its centre falls inside the sprite.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset

from .splits import random_split_indices

__all__ = [
    "FACTOR_NAMES",
    "SHAPES",
    "DSprites",
    "dsprites_split",
    "render_sprites",
]

SHAPES = ("square", "ellipse", "heart")
FACTOR_NAMES = ("shape", "scale", "rotation", "pos_x", "pos_y")

_HALF_SIZE = 0.15  # half-side of a scale-1 sprite's box, as a fraction of the image width
# The box's half-diagonal plus a little padding: no rotation or position touches the border.
_MARGIN = _HALF_SIZE * math.sqrt(2.0) + 0.02


def _inside(shape: Tensor, qx: Tensor, qy: Tensor) -> Tensor:
    """Whether local point ``(qx, qy)`` (box [-1, 1]², y up) lies inside sprite ``shape``."""
    square = torch.maximum(qx.abs(), qy.abs()) <= 1.0
    ellipse = qx**2 + (qy / 0.5) ** 2 <= 1.0
    # Heart curve (a² + b² - 1)³ - a² b³ <= 0, which spans a ∈ [-1.14, 1.14], b ∈ [-1, 1.24].
    a, b = 1.14 * qx, 1.12 * qy + 0.12
    heart = (a**2 + b**2 - 1.0) ** 3 - a**2 * b**3 <= 0.0
    shape = shape.view(-1, 1, 1)
    return torch.where(shape == 0, square, torch.where(shape == 1, ellipse, heart))


def render_sprites(
    shape: Tensor, scale: Tensor, rotation: Tensor, pos_x: Tensor, pos_y: Tensor, size: int = 64
) -> Tensor:
    """Render a batch of sprites into binary float images ``(B, 1, size, size)``.

    ``shape`` holds indices into :data:`SHAPES`; the others are factor *values* (scale in
    [0.5, 1], rotation in radians, positions in [0, 1]). A pixel with centre ``p`` is on when
    ``R(-rotation) (p - c) / (0.15 · scale)`` falls inside the unit sprite, ``c`` being the
    sprite centre ``m + pos (1 - 2m)``.
    """
    shape = torch.as_tensor(shape).long().reshape(-1)
    scale, rotation, pos_x, pos_y = (
        torch.as_tensor(v, dtype=torch.float32).reshape(-1, 1, 1) for v in (scale, rotation, pos_x, pos_y)
    )
    coords = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    px = coords.view(1, 1, size)  # column -> x
    py = coords.view(1, size, 1)  # row -> y (downwards)
    cx = _MARGIN + pos_x * (1.0 - 2.0 * _MARGIN)
    cy = _MARGIN + pos_y * (1.0 - 2.0 * _MARGIN)
    dx, dy = px - cx, cy - py  # flip y so that rotation is counter-clockwise on screen
    cos, sin = torch.cos(rotation), torch.sin(rotation)
    half = _HALF_SIZE * scale
    qx = (cos * dx + sin * dy) / half
    qy = (-sin * dx + cos * dy) / half
    return _inside(shape, qx, qy).float().unsqueeze(1)


class DSprites(Dataset[dict[str, Tensor]]):
    """All combinations of the five factors (or a subset of them), rendered on access.

    Items are ``{"x": (1, size, size) or (size*size,), "factors": int64 (5,), "factor_values": (5,)}``,
    ``factors`` being grid indices and ``factor_values`` the values used for rendering
    (shape index, scale, rotation in radians, pos_x, pos_y).

    Args:
        size: image side in pixels (e.g. 32 or 64).
        n_scale, n_rotation, n_pos: grid sizes (``n_pos`` defaults to ``size // 2``).
        indices: restrict the dataset to these flat grid indices (see :meth:`factors_to_index`).
        flatten: serve images as vectors.
    """

    def __init__(
        self,
        size: int = 64,
        n_scale: int = 6,
        n_rotation: int = 40,
        n_pos: int | None = None,
        indices: Tensor | Sequence[int] | None = None,
        flatten: bool = False,
    ) -> None:
        self.size = int(size)
        n_pos = self.size // 2 if n_pos is None else int(n_pos)
        self.factor_values: tuple[Tensor, ...] = (
            torch.arange(len(SHAPES), dtype=torch.float32),
            torch.linspace(0.5, 1.0, n_scale),
            2 * math.pi * torch.arange(n_rotation, dtype=torch.float32) / n_rotation,
            torch.linspace(0.0, 1.0, n_pos),
            torch.linspace(0.0, 1.0, n_pos),
        )
        self.factor_sizes: tuple[int, ...] = tuple(len(v) for v in self.factor_values)
        strides = [1] * 5
        for i in range(3, -1, -1):
            strides[i] = strides[i + 1] * self.factor_sizes[i + 1]
        self._strides = torch.tensor(strides, dtype=torch.long)
        self.n_combinations = math.prod(self.factor_sizes)
        self.indices = None if indices is None else torch.as_tensor(indices, dtype=torch.long)
        self.flatten = flatten

    def __len__(self) -> int:
        return self.n_combinations if self.indices is None else len(self.indices)

    def index_to_factors(self, index: Tensor | int) -> Tensor:
        """Flat grid index (or indices) -> factor indices ``(..., 5)``, int64."""
        index = torch.as_tensor(index, dtype=torch.long)
        sizes = torch.tensor(self.factor_sizes, dtype=torch.long)
        return (index.unsqueeze(-1) // self._strides) % sizes

    def factors_to_index(self, factors: Tensor) -> Tensor:
        """Factor indices ``(..., 5)`` -> flat grid index ``(...)``: ``Σ_i f_i · stride_i``."""
        return (torch.as_tensor(factors, dtype=torch.long) * self._strides).sum(-1)

    def values(self, factors: Tensor) -> Tensor:
        """Factor indices ``(..., 5)`` -> factor values ``(..., 5)`` (float32)."""
        factors = torch.as_tensor(factors, dtype=torch.long)
        return torch.stack([v[factors[..., i]] for i, v in enumerate(self.factor_values)], dim=-1)

    def render(self, factors: Tensor) -> Tensor:
        """Images ``(B, 1, size, size)`` (flattened if ``flatten``) for factor indices ``(B, 5)``."""
        vals = self.values(factors.reshape(-1, 5))
        images = render_sprites(vals[:, 0].long(), vals[:, 1], vals[:, 2], vals[:, 3], vals[:, 4], self.size)
        return images.flatten(1) if self.flatten else images

    def batch(self, index: Tensor | Sequence[int]) -> dict[str, Tensor]:
        """Items ``index`` (positions in this dataset) rendered together as one batch dict."""
        index = torch.as_tensor(index, dtype=torch.long).reshape(-1)
        flat = index if self.indices is None else self.indices[index]
        factors = self.index_to_factors(flat)
        return {"x": self.render(factors), "factors": factors, "factor_values": self.values(factors)}

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        item = self.batch([index % len(self)])
        return {k: v[0] for k, v in item.items()}

    def sample(self, n: int, seed: int | torch.Generator | None = None) -> dict[str, Tensor]:
        """``n`` sprites with each factor index drawn independently and uniformly from its grid."""
        gen = torch.Generator().manual_seed(seed) if isinstance(seed, int) else seed
        factors = torch.stack([torch.randint(k, (n,), generator=gen) for k in self.factor_sizes], dim=1)
        return {"x": self.render(factors), "factors": factors, "factor_values": self.values(factors)}


def dsprites_split(
    split: str,
    size: int = 64,
    valid_fraction: float = 0.05,
    test_fraction: float = 0.05,
    split_seed: int = 0,
    **kwargs: object,
) -> DSprites:
    """A :class:`DSprites` restricted to a seeded train / valid / test partition of the factor grid."""
    full = DSprites(size=size, **kwargs)  # type: ignore[arg-type]
    n = full.n_combinations
    n_valid, n_test = round(valid_fraction * n), round(test_fraction * n)
    test_idx, valid_idx, train_idx = random_split_indices(n, [n_test, n_valid, n - n_test - n_valid], split_seed)
    parts = {
        "train": train_idx,
        "valid": valid_idx,
        "test": test_idx,
        "train+valid": torch.sort(torch.cat([train_idx, valid_idx])).values,
    }
    if split not in parts:
        raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(parts)}")
    full.indices = parts[split]
    return full
