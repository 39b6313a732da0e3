"""MNIST and Fashion-MNIST from IDX files (torchvision's file names, gzipped or raw).

Splits: ``"train"`` is the first 60k minus a seeded validation set of ``n_valid`` (default 10k)
examples, ``"valid"`` is that validation set, ``"train+valid"`` is all 60k, ``"test"`` is t10k.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch

from .datasets import ImageDataset
from .files import FileSpec, file_md5, locate_files
from .idx import IDXFormatError, read_idx
from .splits import train_valid_indices
from .transforms import binarize_fixed

__all__ = [
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_SPEC",
    "MNIST_SPEC",
    "load_fashion_mnist",
    "load_idx_pair",
    "load_mnist",
    "normalize_split",
]

TRAIN_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
TEST_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip

# md5 of each labels file as stored. Used to skip a folder that holds the *other* dataset under the
# same file names (e.g. DEEPGM_DATA pointing at MNIST while Fashion-MNIST is requested).
# The md5s of raw (un-gzipped) Fashion-MNIST labels are not recorded here, so only its .gz are recognised.
_LABEL_MD5: dict[str, frozenset[str]] = {
    "mnist": frozenset({
        "c65e051d05fdc5c22589d392328c1cde",  # train-labels-idx1-ubyte.gz
        "bad2870d560cabe2e598aa3132b19b9d",  # t10k-labels-idx1-ubyte.gz
        "a25bea736e30d166cdddb491f175f624",  # train-labels-idx1-ubyte
        "27ae3e4e09519cfbb04c329615203637",  # t10k-labels-idx1-ubyte
    }),
    "fashion-mnist": frozenset({
        "25c81989df183df01b3e8a0aad5dffbe",  # train-labels-idx1-ubyte.gz
        "bb300cfdad3c16e7a12a480ee83cd310",  # t10k-labels-idx1-ubyte.gz
    }),
}  # fmt: skip


def _other_dataset_check(name: str, title_of: Mapping[str, str]) -> Callable[[Mapping[str, Path]], str | None]:
    """A ``FileSpec.validate`` that rejects folders whose labels file is another dataset's."""

    def validate(found: Mapping[str, Path]) -> str | None:
        for stem, path in found.items():
            if "labels" not in stem:
                continue
            digest = file_md5(path)
            for other, digests in _LABEL_MD5.items():
                if other != name and digest in digests:
                    return f"{path.name} is {title_of[other]}'s, not {title_of[name]}'s"
        return None

    return validate


_TITLES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}

MNIST_SPEC = FileSpec(
    name="mnist",
    title="MNIST",
    files=TRAIN_FILES + TEST_FILES,
    subdirs=("mnist", "MNIST", "mnist/raw", "MNIST/raw"),
    mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
    md5={
        "train-images-idx3-ubyte.gz": "e3fc4e8c62dc6b44129a6c5dc73f271c",
        "train-labels-idx1-ubyte.gz": "c65e051d05fdc5c22589d392328c1cde",
        "t10k-images-idx3-ubyte.gz": "9f2b5d50995684d23288c2562d709c8e",
        "t10k-labels-idx1-ubyte.gz": "bad2870d560cabe2e598aa3132b19b9d",
    },
    validate=_other_dataset_check("mnist", _TITLES),
)

# md5s as published in the Fashion-MNIST README (zalandoresearch/fashion-mnist).
FASHION_MNIST_SPEC = FileSpec(
    name="fashion-mnist",
    title="Fashion-MNIST",
    files=TRAIN_FILES + TEST_FILES,
    subdirs=("fashion-mnist", "fashion_mnist", "FashionMNIST", "fashion-mnist/raw", "FashionMNIST/raw"),
    mirrors=(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
    md5={
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
    validate=_other_dataset_check("fashion-mnist", _TITLES),
)

_SPLIT_ALIASES = {
    "train": "train",
    "valid": "valid",
    "validation": "valid",
    "val": "valid",
    "test": "test",
    "train+valid": "train+valid",
    "trainval": "train+valid",
    "full_train": "train+valid",
}


def normalize_split(split: str) -> str:
    """Canonical split name: ``"train"``, ``"valid"``, ``"test"`` or ``"train+valid"``."""
    key = split.lower().strip()
    if key not in _SPLIT_ALIASES:
        raise ValueError(f"unknown split {split!r}; valid splits: {sorted(set(_SPLIT_ALIASES))}")
    return _SPLIT_ALIASES[key]


@functools.lru_cache(maxsize=8)
def _read_idx_cached(path: str, mtime_ns: int, size: int) -> np.ndarray:
    array = read_idx(path)
    array.setflags(write=False)
    return array


def _read(path: Path) -> np.ndarray:
    st = os.stat(path)
    return _read_idx_cached(str(path), st.st_mtime_ns, st.st_size)


def load_idx_pair(
    spec: FileSpec,
    part: str,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 (N, 28, 28), labels int64 (N,))`` of the ``"train"`` (60k) or ``"test"`` (10k) files."""
    names = TRAIN_FILES if part == "train" else TEST_FILES
    found = locate_files(spec, names, data_dir=data_dir, download=download)
    images, labels = _read(found[names[0]]), _read(found[names[1]])
    if images.ndim != 3 or images.dtype != np.uint8 or images.shape[1:] != (28, 28):
        raise IDXFormatError(f"{found[names[0]]}: expected uint8 images (N, 28, 28), got {images.dtype} {images.shape}")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise IDXFormatError(f"{found[names[1]]}: expected {images.shape[0]} labels, got array of shape {labels.shape}")
    if labels.size and (int(labels.min()) < 0 or int(labels.max()) > 9):
        raise IDXFormatError(f"{found[names[1]]}: expected class labels 0..9, got values from "
                             f"{int(labels.min())} to {int(labels.max())}")
    return images, labels.astype(np.int64)


def _mnist_like(
    spec: FileSpec,
    split: str,
    data_dir: str | os.PathLike[str] | None,
    download: bool,
    n_valid: int,
    split_seed: int,
    binarize_seed: int,
    classes: tuple[str, ...],
    dataset_kwargs: Mapping[str, object],
) -> ImageDataset:
    split = normalize_split(split)
    part = "test" if split == "test" else "train"
    images_np, labels_np = load_idx_pair(spec, part, data_dir=data_dir, download=download)
    images = torch.from_numpy(images_np.astype(np.float32) / 255.0).unsqueeze(1)
    labels = torch.from_numpy(labels_np)
    kwargs = dict(dataset_kwargs)
    fixed = kwargs.get("binarize") == "fixed"
    if fixed:
        # One draw over all 60k training images (so "train", "valid" and "train+valid" agree);
        # the test images get their own noise stream (seed + 1).
        images = binarize_fixed(images, binarize_seed + 1 if part == "test" else binarize_seed)
        kwargs["binarize"] = None
    if split in ("train", "valid"):
        train_idx, valid_idx = train_valid_indices(images.shape[0], n_valid, seed=split_seed)
        idx = train_idx if split == "train" else valid_idx
        images, labels = images[idx], labels[idx]
    dataset = ImageDataset(images, labels, classes=classes, **kwargs)  # type: ignore[arg-type]
    if fixed:
        dataset.binarize = "fixed"
    return dataset


def load_mnist(
    split: str = "train",
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = False,
    n_valid: int = 10_000,
    split_seed: int = 0,
    binarize_seed: int = 0,
    **dataset_kwargs: object,
) -> ImageDataset:
    """MNIST digits as an :class:`ImageDataset` of ``(1, 28, 28)`` images in [0, 1] (pixel / 255).

    ``dataset_kwargs`` go to :class:`ImageDataset` (``binarize``, ``flatten``, ``halves``, ``transform``).
    """
    return _mnist_like(
        MNIST_SPEC, split, data_dir, download, n_valid, split_seed, binarize_seed,
        tuple(str(d) for d in range(10)), dataset_kwargs,
    )  # fmt: skip


def load_fashion_mnist(
    split: str = "train",
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = False,
    n_valid: int = 10_000,
    split_seed: int = 0,
    binarize_seed: int = 0,
    **dataset_kwargs: object,
) -> ImageDataset:
    """Fashion-MNIST as an :class:`ImageDataset` of ``(1, 28, 28)`` images in [0, 1]; see :func:`load_mnist`."""
    return _mnist_like(
        FASHION_MNIST_SPEC, split, data_dir, download, n_valid, split_seed, binarize_seed,
        FASHION_MNIST_CLASSES, dataset_kwargs,
    )  # fmt: skip
