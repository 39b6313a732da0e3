"""``load_dataset``: one entry point for every dataset in :mod:`deepgm.data`."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from .datasets import BinarizeMode
from .digits import load_digits
from .dsprites import dsprites_split
from .mnist import load_fashion_mnist, load_mnist, normalize_split
from .polyphonic import load_polyphonic, polyphonic_names
from .scenes import SCENE_SIZES, load_scenes
from .sequences import SequenceDataset, bouncing_balls, moving_mnist, split_seed
from .toy import toy_2d_dataset, toy_2d_names

__all__ = ["SCENE_DATASETS", "SEQUENCE_DATASETS", "dataset_names", "load_dataset"]

_IMAGE_DATASETS = ("mnist", "fashion-mnist", "digits", "dsprites")
_VIDEO_DATASETS = ("moving-mnist", "bouncing-balls")  # generated, seeded
SEQUENCE_DATASETS = polyphonic_names() + _VIDEO_DATASETS  # padded {"x", "mask"} splits
SCENE_DATASETS = tuple(f"scenes-{s}" for s in SCENE_SIZES)  # generated rooms: {"x": (N, V, 3, H, W), "v": (N, V, 7)}
# the ones read from files (data_dir applies; moving-mnist reads MNIST's)
_FILE_DATASETS = ("mnist", "fashion-mnist", *polyphonic_names(), "moving-mnist")
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
    "jsb_chorales": "jsb",
    "jsb-chorales": "jsb",
    "piano_midi": "piano-midi",
    "pianomidi": "piano-midi",
    "muse": "musedata",
    "moving_mnist": "moving-mnist",
    "bouncing_balls": "bouncing-balls",
    "scenes": "scenes-32",
    "scenes32": "scenes-32",
    "scenes_32": "scenes-32",
    "scenes64": "scenes-64",
    "scenes_64": "scenes-64",
}
_TOY_SIZES = {"train": 50_000, "valid": 10_000, "test": 10_000}
# sequences per split; moving-mnist's 800 + 100 + 100 videos of 20 64×64 frames take 328 MB as float32
_VIDEO_SIZES = {
    "moving-mnist": {"train": 800, "valid": 100, "test": 100},
    "bouncing-balls": {"train": 1000, "valid": 100, "test": 100},
}


def dataset_names() -> tuple[str, ...]:
    """Every name accepted by :func:`load_dataset` (aliases aside)."""
    return _IMAGE_DATASETS + toy_2d_names() + SEQUENCE_DATASETS + SCENE_DATASETS


def _load_sequences(key: str, split: str, data_dir: str | os.PathLike[str] | None, download: bool, seed: int,
                    n_samples: int | None, kwargs: dict[str, Any]) -> SequenceDataset:
    """A sequence dataset's split (the image options were refused before)."""
    if key in polyphonic_names():
        if download:
            raise ValueError(f"{key!r} cannot be downloaded; put its .mat file in a folder named by $DEEPGM_DATA "
                             "(or its 'polyphonic' sub-folder) or pass data_dir")
        extra = sorted(kwargs) + (["n_samples"] if n_samples is not None else [])
        if extra:
            raise ValueError(f"{key!r} is a fixed set of piano rolls; options {', '.join(extra)} do not apply")
        return load_polyphonic(key, split, data_dir)
    if split == "train+valid":
        parts = [_load_sequences(key, s, data_dir, download, seed, n_samples, kwargs) for s in ("train", "valid")]
        return SequenceDataset(*(torch.cat([p.tensors[k] for p in parts]) for k in ("x", "mask")))
    n = _VIDEO_SIZES[key][split] if n_samples is None else n_samples
    if key == "moving-mnist":
        batch = moving_mnist(n, seed=split_seed(seed, split), split=split, data_dir=data_dir, download=download,
                             **kwargs)
    else:
        if download:
            raise ValueError("'bouncing-balls' is generated; download does not apply")
        batch = bouncing_balls(n, seed=split_seed(seed, split), **kwargs)
    return SequenceDataset(batch["x"], batch["mask"])


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
    * piano rolls ``"jsb"``, ``"nottingham"``, ``"musedata"``, ``"piano-midi"``
      (:mod:`deepgm.data.polyphonic`, the published splits, found like MNIST's files, never downloaded),
      and the generated videos ``"moving-mnist"`` (its digits from MNIST's files) and ``"bouncing-balls"``
      (:mod:`deepgm.data.sequences`: ``n_samples`` sequences, default 800/100/100 and 1000/100/100, options
      ``length``, ``size``, ``digits`` / ``balls``, seeds derived from ``(seed, split)``, ``"train+valid"``
      the train sequences followed by the valid ones). These are
      :class:`~deepgm.data.sequences.SequenceDataset`: ``batch()`` is the padded ``{"x", "mask"}``.
    * ``"scenes-32"``, ``"scenes-64"``: rooms of coloured objects ray cast from many cameras
      (:mod:`deepgm.data.scenes`): ``{"x": (views, 3, H, W) in [0, 1], "v": (views, 7)}`` per scene, option
      ``views`` (default 10, at least 2), ``n_samples`` scenes (default 2000/200/200 at 32×32, 800/100/100 at
      64×64), scene ``i`` seeded by ``(seed, split, i)``.

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
    if key in SEQUENCE_DATASETS:
        if binarize is not None or halves or flatten or transform is not None:
            raise ValueError(f"{name!r} is a sequence dataset; the image options (flatten, binarize, halves, "
                             "transform) do not apply")
        return _load_sequences(key, split, data_dir, download, seed, n_samples, kwargs)
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
    if key in SCENE_DATASETS:
        if binarize is not None or halves or flatten or transform is not None or download:
            raise ValueError(f"{name!r} is a generated scene dataset; the image options (flatten, binarize, halves, "
                             "transform) and download do not apply")
        if "size" in kwargs:
            raise ValueError(f"{name!r}: the image size is part of the name ({', '.join(SCENE_DATASETS)}); "
                             "do not pass size")
        return load_scenes(split, int(key.rsplit("-", 1)[1]), n_samples=n_samples, seed=seed, **kwargs)
    if key in toy_2d_names():
        if binarize is not None or halves or flatten or transform is not None:
            raise ValueError(f"{name!r} is a 2-D point dataset; image options do not apply")
        if split == "train+valid":
            raise ValueError("toy densities have train, valid and test splits only")
        n = _TOY_SIZES[split] if n_samples is None else n_samples
        return toy_2d_dataset(key, n, seed=seed, split=split, **kwargs)
    raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(dataset_names())}")
