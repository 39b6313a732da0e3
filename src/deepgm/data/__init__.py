"""Datasets and transforms for generative modelling.

Items and batches are dicts of named tensors, e.g. ``{"x": image, "y": label}``.

* :func:`load_dataset` - one entry point: ``"mnist"``, ``"fashion-mnist"``, ``"digits"``,
  ``"dsprites"`` and the 2-D toy densities.
* :mod:`~deepgm.data.idx` - IDX file reader/writer; :mod:`~deepgm.data.files` - file search and download.
* :mod:`~deepgm.data.toy` - seeded 2-D toy samplers; :mod:`~deepgm.data.dsprites` - rendered sprites.
* :mod:`~deepgm.data.transforms` - binarisation, dequantisation, logit, flatten.
* :mod:`~deepgm.data.splits` - seeded train/valid splits and balanced labelled subsets.
"""

from .datasets import BinarizeMode, ImageDataset, TensorDictDataset, collate_dicts
from .digits import load_digits, load_digits_arrays
from .dsprites import FACTOR_NAMES, SHAPES, DSprites, dsprites_split, render_sprites
from .files import DATA_ENV_VAR, DatasetNotFoundError, FileSpec, cache_dir, candidate_dirs, locate_files
from .idx import IDXFormatError, read_idx, write_idx
from .load import dataset_names, load_dataset
from .mnist import FASHION_MNIST_SPEC, MNIST_SPEC, load_fashion_mnist, load_idx_pair, load_mnist
from .splits import labelled_subset, random_split_indices, train_valid_indices
from .toy import TOY_2D, toy_2d, toy_2d_dataset, toy_2d_mode_std, toy_2d_modes, toy_2d_names
from .transforms import (
    Compose,
    Dequantize,
    DynamicBinarize,
    FixedBinarize,
    Flatten,
    LogitTransform,
    binarize_fixed,
    binarize_threshold,
    dequantize,
    logit_transform,
)

__all__ = [
    "DATA_ENV_VAR",
    "FACTOR_NAMES",
    "FASHION_MNIST_SPEC",
    "MNIST_SPEC",
    "SHAPES",
    "TOY_2D",
    "BinarizeMode",
    "Compose",
    "DSprites",
    "DatasetNotFoundError",
    "Dequantize",
    "DynamicBinarize",
    "FileSpec",
    "FixedBinarize",
    "Flatten",
    "IDXFormatError",
    "ImageDataset",
    "LogitTransform",
    "TensorDictDataset",
    "binarize_fixed",
    "binarize_threshold",
    "cache_dir",
    "candidate_dirs",
    "collate_dicts",
    "dataset_names",
    "dequantize",
    "dsprites_split",
    "labelled_subset",
    "load_dataset",
    "load_digits",
    "load_digits_arrays",
    "load_fashion_mnist",
    "load_idx_pair",
    "load_mnist",
    "locate_files",
    "logit_transform",
    "random_split_indices",
    "read_idx",
    "render_sprites",
    "toy_2d",
    "toy_2d_dataset",
    "toy_2d_mode_std",
    "toy_2d_modes",
    "toy_2d_names",
    "train_valid_indices",
    "write_idx",
]
