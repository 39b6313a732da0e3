"""``load_dataset``: one entry point for every dataset in :mod:`deepgm.data`."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from torch import Tensor
from torch.utils.data import Dataset

from .datasets import BinarizeMode
from .digits import load_digits
from .dsprites import dsprites_split
from .mnist import load_fashion_mnist, load_mnist, normalize_split
from .toy import toy_2d_dataset, toy_2d_names

__all__ = ["dataset_names", "load_dataset"]

_IMAGE_DATASETS = ("mnist", "fashion-mnist", "digits", "dsprites")
_FILE_DATASETS = ("mnist", "fashion-mnist")  # the ones read from files (data_dir applies)
_ALIASES = {
    "fashion_mnist": "fashion-mnist",
    "fashionmnist": "fashion-mnist",
    "fmnist": "fashion-mnist",
    "two_moons": "moons",
    "ring8": "8gaussians",
    "grid25": "25gaussians",
    "circles": "rings",
    "spirals": "2spirals",
    "two_spirals": "2spirals",
}
_TOY_SIZES = {"train": 50_000, "valid": 10_000, "test": 10_000}


def dataset_names() -> tuple[str, ...]:
    """Every name accepted by :func:`load_dataset` (aliases aside)."""
    return _IMAGE_DATASETS + toy_2d_names()


def load_dataset(
    name: str,
    split: str = "train",
    data_dir: str | os.PathLike[str] | None = None,
    *,
    flatten: bool = False,
    binarize: BinarizeMode = None,
    halves: bool = False,
    transform: Callable[[Tensor], Tensor] | None = None,
    download: bool = False,
    seed: int = 0,
    n_samples: int | None = None,
    **kwargs: Any,
) -> Dataset[dict[str, Tensor]]:
    """Load dataset ``name``'s ``split`` (``"train"``, ``"valid"``, ``"test"``, ``"train+valid"``).

    * ``"mnist"``, ``"fashion-mnist"``: 28×28 images in [0, 1] with labels, from IDX files
      (in ``data_dir`` when given, which is then used or refused; else ``$DEEPGM_DATA``, then
      ``~/.cache/deepgm``; ``download=True`` fetches them);
      train/valid is a 50k/10k split of the 60k training images by ``seed``.
    * ``"digits"``: scikit-learn's 8×8 digits in [0, 1] with labels.
    * ``"dsprites"``: procedurally rendered sprites with factor labels (``size=64`` or ``32``).
    * toy 2-D densities (:func:`deepgm.data.toy_2d_names`): ``n_samples`` points (default 50k
      train, 10k valid/test) drawn with a seed derived from ``(seed, split)``.

    Image options: ``flatten`` (vectors), ``binarize`` (``"dynamic"``, ``"fixed"``, ``"threshold"``),
    ``halves`` (``{"x_top", "x_bottom"}`` instead of ``"x"``), ``transform`` (per image).
    Further ``kwargs`` go to the dataset's own loader (e.g. ``n_valid``, ``binarize_seed``, ``size``).
    Unknown names raise ``ValueError`` listing the valid ones, and so does a ``data_dir`` given for a
    dataset that reads no files (it would be ignored).
    """
    key = name.lower().strip()
    key = _ALIASES.get(key, key)
    split = normalize_split(split)
    if data_dir is not None and key not in _FILE_DATASETS and key in dataset_names():
        # a folder given is used or refused, never silently ignored
        raise ValueError(f"data_dir={str(data_dir)!r} given for {name!r}, which reads no files (it is built in); "
                         f"data_dir applies to {', '.join(_FILE_DATASETS)}")
    image_opts: dict[str, Any] = {"flatten": flatten, "binarize": binarize, "halves": halves, "transform": transform}
    if key == "mnist":
        return load_mnist(split, data_dir, download=download, split_seed=seed, **image_opts, **kwargs)
    if key == "fashion-mnist":
        return load_fashion_mnist(split, data_dir, download=download, split_seed=seed, **image_opts, **kwargs)
    if key == "digits":
        return load_digits(split, split_seed=seed, **image_opts, **kwargs)
    if key == "dsprites":
        if binarize is not None or halves or transform is not None:
            raise ValueError("dsprites images are already binary; only flatten applies")
        return dsprites_split(split, split_seed=seed, flatten=flatten, **kwargs)
    if key in toy_2d_names():
        if binarize is not None or halves or flatten or transform is not None:
            raise ValueError(f"{name!r} is a 2-D point dataset; image options do not apply")
        if split == "train+valid":
            raise ValueError("toy densities have train, valid and test splits only")
        n = _TOY_SIZES[split] if n_samples is None else n_samples
        return toy_2d_dataset(key, n, seed=seed, split=split, **kwargs)
    raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(dataset_names())}")
