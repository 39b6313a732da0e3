"""Data ready for a model: what a builder needs to know of it (:class:`DataInfo`), the train/valid/test
tensors and the training transform (:func:`load_splits`), and the one square-image rule
(:func:`square_image_shape`).

The rules that make a run reproducible live here, not in the command line: MNIST and Fashion-MNIST
are *dynamically binarised* for models with a Bernoulli likelihood (every training batch is a fresh
draw ``x ~ Bernoulli(grey levels)``; the validation and test images are binarised once, with the
fixed seeds :data:`VALID_BINARIZE_SEED` and :data:`TEST_BINARIZE_SEED`), and fed as grey levels in
[0, 1] otherwise (flows dequantise them, GANs generate them). The 8×8 digits are always grey levels.

Sequence datasets (piano rolls, videos: :data:`~deepgm.data.load.SEQUENCE_DATASETS`) give padded splits
``{"x": (N, T_max, *step_shape), "mask": (N, T_max)}``; their :class:`DataInfo` has ``sequence=True`` and
``x_shape`` the shape of one time step (``(88,)``, ``(1, H, W)``). They are not binarised.

>>> square_image_shape(784), square_image_shape(64), square_image_shape(2)
((1, 28, 28), (1, 8, 8), None)
>>> DataInfo("toy", (2,)).image_shape is None
True
>>> DataInfo("jsb", (88,), sequence=True).image_shape, DataInfo("bouncing-balls", (1, 32, 32), sequence=True).x_dim
(None, 1024)
>>> resolve_binarize("auto", "binary"), resolve_binarize("auto", "grey"), resolve_binarize("none", "binary")
('dynamic', 'none', 'none')
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from .load import SEQUENCE_DATASETS, dataset_names, load_dataset
from .transforms import binarize_fixed

__all__ = ["DataConfig", "DataInfo", "PreparedData", "load_splits", "resolve_binarize", "square_image_shape",
           "MNIST_LIKE", "VALID_BINARIZE_SEED", "TEST_BINARIZE_SEED"]

Binarize = Literal["auto", "dynamic", "none"]
Pixels = Literal["binary", "grey"]
Batch = dict[str, Tensor]

MNIST_LIKE = ("mnist", "fashion-mnist")  # 28×28 grey images: binarised dynamically for Bernoulli likelihoods
_FLAT_IMAGES = ("mnist", "fashion-mnist", "digits")  # loaded as flat vectors
_UNIT_INTERVAL = ("mnist", "fashion-mnist", "digits", "dsprites")  # values in [0, 1]
VALID_BINARIZE_SEED = 1239  # the fixed binarisation of the validation images
TEST_BINARIZE_SEED = 1238  # ... and of the test images (the values every earlier run used)


def square_image_shape(dim: int) -> tuple[int, int, int] | None:
    """``(1, s, s)`` when ``dim = s²`` with ``s >= 2`` (flat MNIST, 8×8 digits), else None (2-D points)."""
    s = math.isqrt(dim) if dim > 0 else 0
    return (1, s, s) if s >= 2 and s * s == dim else None


@dataclass(frozen=True)
class DataInfo:
    """What a builder needs to know of the data: one example's shape, labels, value type, and whether
    examples are sequences (then ``x_shape`` is the shape of one time step and the splits are padded
    ``{"x": (N, T_max, *x_shape), "mask": (N, T_max)}``)."""

    name: str
    x_shape: tuple[int, ...]
    n_classes: int | None = None
    binary: bool = True  # values in [0, 1] read as Bernoulli probabilities
    sequence: bool = False  # examples are padded sequences of x_shape steps

    @property
    def x_dim(self) -> int:
        """The number of values in one example (in one time step for sequences)."""
        return math.prod(self.x_shape)

    @property
    def image_shape(self) -> tuple[int, int, int] | None:
        """``(C, H, W)`` of an example (of a time step for sequences) when it is an image: ``x_shape`` of
        3 dims, or, for non-sequences, a square count of values; None otherwise."""
        if len(self.x_shape) == 3:
            c, h, w = self.x_shape
            return (c, h, w)
        return None if self.sequence else square_image_shape(self.x_dim)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DataInfo:
        """The :class:`DataInfo` of ``dataclasses.asdict(info)`` (e.g. read back from a run's JSON)."""
        return cls(str(d["name"]), tuple(int(s) for s in d["x_shape"]), d.get("n_classes"), bool(d.get("binary", True)),
                   bool(d.get("sequence", False)))


@dataclass
class DataConfig:
    """Which data to train on (each field is a ``deepgm train`` option)."""

    dataset: str = "digits"
    data_dir: str | None = None
    # auto: dynamic binarisation for models with a Bernoulli likelihood, the grey levels for flows and GANs
    binarize: Binarize = "auto"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Refuse an unknown dataset or binarisation, and an empty ``data_dir`` (``ValueError``)."""
        if self.dataset not in dataset_names():
            raise ValueError(f"unknown dataset {self.dataset!r}; valid: {', '.join(dataset_names())}")
        if self.binarize not in ("auto", "dynamic", "none"):
            raise ValueError(f"binarize must be 'auto', 'dynamic' or 'none', got {self.binarize!r}")
        if self.data_dir is not None and not str(self.data_dir).strip():
            raise ValueError("data_dir must name a folder (or be None: the default places), got ''")


def resolve_binarize(binarize: Binarize, pixels: Pixels, dataset: str | None = None) -> Literal["dynamic", "none"]:
    """``binarize`` with ``"auto"`` decided by what the model expects: ``"dynamic"`` for ``"binary"``
    pixels (Bernoulli likelihoods), ``"none"`` for ``"grey"`` ones — and ``"none"`` for the sequence
    datasets (``dataset``), whose values are used as they are."""
    if binarize == "auto":
        if dataset is not None and dataset in SEQUENCE_DATASETS:
            return "none"
        return "dynamic" if pixels == "binary" else "none"
    if binarize not in ("dynamic", "none"):
        raise ValueError(f"binarize must be 'auto', 'dynamic' or 'none', got {binarize!r}")
    return binarize


def _dynamic_binarize(batch: Batch) -> Batch:
    """A fresh Bernoulli draw of the batch's images (the training transform of binarised MNIST)."""
    return {**batch, "x": torch.bernoulli(batch["x"])}


@dataclass
class PreparedData:
    """The splits of one dataset, its description and the transform every training batch goes through."""

    info: DataInfo
    splits: dict[str, Batch]  # "train", "valid", "test": dicts of tensors ({"x", "y"}; {"x", "mask"} for sequences)
    transform: Callable[[Batch], Batch] | None = None

    @property
    def train(self) -> Batch:
        return self.splits["train"]

    @property
    def valid(self) -> Batch:
        return self.splits["valid"]

    @property
    def test(self) -> Batch:
        return self.splits["test"]


def load_splits(dataset: str, data_dir: str | os.PathLike[str] | None = None,
                binarize: Binarize = "none", pixels: Pixels = "grey") -> PreparedData:
    """The train, valid and test tensors of ``dataset`` (flat images), its :class:`DataInfo` and the
    training transform; ``binarize="auto"`` is resolved by ``pixels`` (:func:`resolve_binarize`).

    Sequence datasets give padded ``{"x", "mask"}`` splits, a ``DataInfo`` with ``sequence=True`` and the
    step shape, and no transform; only ``binarize="auto"`` or ``"none"`` is accepted for them.

    Raises ``ValueError`` naming the valid datasets for an unknown one, and
    :class:`~deepgm.data.DatasetNotFoundError` naming the files when MNIST's are missing.
    """
    if dataset not in dataset_names():
        raise ValueError(f"unknown dataset {dataset!r}; valid: {', '.join(dataset_names())}")
    if dataset == "dsprites":  # 737,280 rendered images: too many to hold as one tensor per split
        raise ValueError("dsprites is rendered on demand and too large to load whole; use "
                         "deepgm.data.load_dataset('dsprites', split) and its batch(index) in Python")
    if dataset in SEQUENCE_DATASETS:
        return _sequence_splits(dataset, data_dir, binarize)
    mode = resolve_binarize(binarize, pixels)
    kw: dict[str, Any] = {"flatten": True} if dataset in _FLAT_IMAGES else {}
    splits: dict[str, Batch] = {
        split: load_dataset(dataset, split, data_dir, seed=0, **kw).batch()  # type: ignore[attr-defined]
        for split in ("train", "valid", "test")
    }
    transform = None
    if dataset in MNIST_LIKE and mode == "dynamic":
        splits["valid"]["x"] = binarize_fixed(splits["valid"]["x"], seed=VALID_BINARIZE_SEED)
        splits["test"]["x"] = binarize_fixed(splits["test"]["x"], seed=TEST_BINARIZE_SEED)
        transform = _dynamic_binarize
    train = splits["train"]
    n_classes = int(train["y"].max()) + 1 if "y" in train else None
    info = DataInfo(dataset, tuple(train["x"].shape[1:]), n_classes, binary=dataset in _UNIT_INTERVAL)
    return PreparedData(info, splits, transform)


def _sequence_splits(dataset: str, data_dir: str | os.PathLike[str] | None, binarize: Binarize) -> PreparedData:
    if binarize not in ("auto", "none"):
        raise ValueError(f"binarize={binarize!r} applies to MNIST-like images ({', '.join(MNIST_LIKE)}); "
                         f"{dataset!r} is a sequence dataset: use binarize 'auto' or 'none'")
    splits: dict[str, Batch] = {
        split: load_dataset(dataset, split, data_dir, seed=0).batch()  # type: ignore[attr-defined]
        for split in ("train", "valid", "test")
    }
    info = DataInfo(dataset, tuple(splits["train"]["x"].shape[2:]), None, binary=True, sequence=True)
    return PreparedData(info, splits, None)
