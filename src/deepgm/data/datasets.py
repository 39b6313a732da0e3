"""Map-style datasets whose items are dicts of named tensors (``{"x": image, "y": label}``).

PyTorch's default collate turns a list of such dicts into a dict of stacked tensors, so a
``DataLoader`` over these datasets yields batches like ``{"x": (B, 1, 28, 28), "y": (B,)}``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Literal

import torch
from torch import Tensor
from torch.utils.data import Dataset

from .transforms import binarize_fixed, binarize_threshold

__all__ = ["BinarizeMode", "ImageDataset", "TensorDictDataset", "collate_dicts"]

BinarizeMode = Literal["dynamic", "fixed", "threshold"] | None
_BINARIZE_MODES = ("dynamic", "fixed", "threshold", None)

Index = int | Sequence[int] | Tensor | slice


def collate_dicts(items: Sequence[Mapping[str, Tensor]]) -> dict[str, Tensor]:
    """Stack a list of ``{name: tensor}`` items into one ``{name: batch}`` dict.

    Equivalent to ``torch.utils.data.default_collate`` for these datasets, without its generality.
    """
    if not items:
        raise ValueError("cannot collate an empty list")
    return {key: torch.stack([torch.as_tensor(item[key]) for item in items]) for key in items[0]}


class TensorDictDataset(Dataset[dict[str, Tensor]]):
    """Rows of several tensors sharing their first dimension, served as ``{name: row}`` dicts."""

    def __init__(self, tensors: Mapping[str, Tensor]) -> None:
        if not tensors:
            raise ValueError("need at least one tensor")
        sizes = {name: t.shape[0] for name, t in tensors.items()}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"tensors differ in their first dimension: {sizes}")
        self.tensors = dict(tensors)
        self._n = next(iter(sizes.values()))

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return {name: t[index] for name, t in self.tensors.items()}

    def batch(self, index: Index | None = None) -> dict[str, Tensor]:
        """Several rows at once (all rows when ``index`` is None), as a dict of batched tensors."""
        if index is None:
            return dict(self.tensors)
        return {name: t[index] for name, t in self.tensors.items()}


class ImageDataset(Dataset[dict[str, Tensor]]):
    """Images in [0, 1] with optional int64 labels, served as ``{"x": image, "y": label}``.

    Args:
        images: float tensor ``(N, C, H, W)`` with values in [0, 1].
        labels: int64 tensor ``(N,)`` or None (then items carry no ``"y"``).
        binarize: ``"dynamic"`` draws ``x ~ Bernoulli(image)`` afresh on every access;
            ``"fixed"`` draws once at construction from a generator seeded with ``binarize_seed``;
            ``"threshold"`` uses ``1[image > 0.5]``; None keeps grey levels.
        flatten: serve images as ``(C*H*W,)`` vectors instead of ``(C, H, W)``.
        halves: serve ``{"x_top", "x_bottom"}`` (the first ``H // 2`` rows and the rest) instead of
            ``"x"``, e.g. two 14-row modalities of a 28×28 digit.
        transform: applied to each ``(C, H, W)`` image after binarisation, before halving/flattening.
        generator: random source for dynamic binarisation (default: torch's global generator,
            which ``DataLoader`` seeds differently in each worker).
    """

    def __init__(
        self,
        images: Tensor,
        labels: Tensor | None = None,
        *,
        binarize: BinarizeMode = None,
        binarize_seed: int = 0,
        flatten: bool = False,
        halves: bool = False,
        transform: Callable[[Tensor], Tensor] | None = None,
        generator: torch.Generator | None = None,
        classes: Sequence[str] | None = None,
    ) -> None:
        if images.dim() != 4:
            raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
        if labels is not None and labels.shape[0] != images.shape[0]:
            raise ValueError(f"{images.shape[0]} images but {labels.shape[0]} labels")
        if binarize not in _BINARIZE_MODES:
            raise ValueError(f"binarize must be one of {_BINARIZE_MODES}, got {binarize!r}")
        images = images.float()
        if binarize == "fixed":
            images = binarize_fixed(images, binarize_seed)
        elif binarize == "threshold":
            images = binarize_threshold(images)
        self.images = images
        self.labels = labels.long() if labels is not None else None
        self.binarize = binarize
        self.flatten = flatten
        self.halves = halves
        self.transform = transform
        self.generator = generator
        self.classes = tuple(classes) if classes is not None else None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one stored image (before halving or flattening)."""
        c, h, w = self.images.shape[1:]
        return (c, h, w)

    def __len__(self) -> int:
        return self.images.shape[0]

    def _format(self, x: Tensor) -> dict[str, Tensor]:
        # x is (..., C, H, W): one image or a batch.
        if self.binarize == "dynamic":
            x = torch.bernoulli(x, generator=self.generator)
        if self.transform is not None:
            x = self.transform(x)
        if self.halves:
            h = x.shape[-2] // 2
            parts = {"x_top": x[..., :h, :], "x_bottom": x[..., h:, :]}
        else:
            parts = {"x": x}
        if self.flatten:
            parts = {k: v.reshape(*v.shape[:-3], -1) for k, v in parts.items()}
        return parts

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        item = self._format(self.images[index])
        if self.labels is not None:
            item["y"] = self.labels[index]
        return item

    def batch(self, index: Index | None = None) -> dict[str, Tensor]:
        """Several examples at once, formatted as ``__getitem__`` would (all when ``index`` is None).

        The transform, if any, receives the whole ``(B, C, H, W)`` batch.
        """
        images = self.images if index is None else self.images[index]
        out = self._format(images)
        if self.labels is not None:
            out["y"] = self.labels if index is None else self.labels[index]
        return out

    def __repr__(self) -> str:
        return (
            f"ImageDataset(n={len(self)}, shape={self.image_shape}, labels={self.labels is not None}, "
            f"binarize={self.binarize!r}, flatten={self.flatten}, halves={self.halves})"
        )
