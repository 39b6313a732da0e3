"""Datasets and transforms for generative modelling.

Items and batches are dicts of named tensors, e.g. ``{"x": image, "y": label}``.

* :func:`load_dataset` - one entry point: ``"mnist"``, ``"fashion-mnist"``, ``"digits"``,
  ``"dsprites"``, the 2-D toy densities and the sequence sets (:data:`SEQUENCE_DATASETS`).
* :mod:`~deepgm.data.polyphonic` - the four polyphonic-music piano-roll sets (JSB Chorales, Nottingham,
  MuseData, Piano-midi.de); :mod:`~deepgm.data.sequences` - padded sequences (:class:`SequenceDataset`),
  Moving MNIST and bouncing balls.
* :mod:`~deepgm.data.scenes` - rooms of coloured objects ray cast from many cameras (the GQN's scenes:
  views and viewpoints), ``"scenes-32"`` and ``"scenes-64"`` (:data:`SCENE_DATASETS`).
* :mod:`~deepgm.data.idx` - IDX file reader/writer; :mod:`~deepgm.data.files` - file search and download.
* :mod:`~deepgm.data.toy` - seeded 2-D toy samplers; :mod:`~deepgm.data.dsprites` - rendered sprites.
* :mod:`~deepgm.data.transforms` - fixed and threshold binarisation (dequantisation and the logit
  transform are flow transforms, :mod:`deepgm.flows`).
* :mod:`~deepgm.data.splits` - seeded train/valid splits and balanced labelled subsets.
* :mod:`~deepgm.data.prepared` - :func:`load_splits` (train/valid/test tensors, the training transform and
  the binarisation rule), :class:`DataInfo` (what a model builder needs to know of the data) and
  :func:`square_image_shape`.
"""

from .datasets import BinarizeMode, ImageDataset, TensorDictDataset, collate_dicts
from .digits import load_digits, load_digits_arrays
from .dsprites import FACTOR_NAMES, SHAPES, DSprites, dsprites_split, render_sprites
from .files import DATA_ENV_VAR, DatasetNotFoundError, FileSpec, cache_dir, candidate_dirs, locate_files
from .idx import IDXFormatError, read_idx, write_idx
from .load import SCENE_DATASETS, SEQUENCE_DATASETS, dataset_names, load_dataset
from .mnist import FASHION_MNIST_SPEC, MNIST_SPEC, load_fashion_mnist, load_idx_pair, load_mnist
from .polyphonic import (
    POLYPHONIC_FILES,
    POLYPHONIC_SPEC,
    SequenceFormatError,
    load_polyphonic,
    polyphonic_names,
    polyphonic_sequences,
    read_polyphonic,
)
from .prepared import (
    MNIST_LIKE,
    TEST_BINARIZE_SEED,
    VALID_BINARIZE_SEED,
    DataConfig,
    DataInfo,
    PreparedData,
    load_splits,
    resolve_binarize,
    square_image_shape,
)
from .scenes import Scenes, load_scenes, make_scenes, random_scenes, render_scenes
from .sequences import SequenceDataset, bouncing_balls, moving_mnist, pad_sequences
from .splits import labelled_subset, random_split_indices, train_valid_indices
from .toy import TOY_2D, toy_2d, toy_2d_dataset, toy_2d_mode_std, toy_2d_modes, toy_2d_names
from .transforms import binarize_fixed, binarize_threshold

__all__ = [
    "DATA_ENV_VAR",
    "FACTOR_NAMES",
    "FASHION_MNIST_SPEC",
    "MNIST_LIKE",
    "MNIST_SPEC",
    "POLYPHONIC_FILES",
    "POLYPHONIC_SPEC",
    "SCENE_DATASETS",
    "SEQUENCE_DATASETS",
    "Scenes",
    "load_scenes",
    "make_scenes",
    "random_scenes",
    "render_scenes",
    "SequenceDataset",
    "SequenceFormatError",
    "bouncing_balls",
    "load_polyphonic",
    "moving_mnist",
    "pad_sequences",
    "polyphonic_names",
    "polyphonic_sequences",
    "read_polyphonic",
    "TEST_BINARIZE_SEED",
    "VALID_BINARIZE_SEED",
    "DataConfig",
    "DataInfo",
    "PreparedData",
    "load_splits",
    "resolve_binarize",
    "square_image_shape",
    "SHAPES",
    "TOY_2D",
    "BinarizeMode",
    "DSprites",
    "DatasetNotFoundError",
    "FileSpec",
    "IDXFormatError",
    "ImageDataset",
    "TensorDictDataset",
    "binarize_fixed",
    "binarize_threshold",
    "cache_dir",
    "candidate_dirs",
    "collate_dicts",
    "dataset_names",
    "dsprites_split",
    "labelled_subset",
    "load_dataset",
    "load_digits",
    "load_digits_arrays",
    "load_fashion_mnist",
    "load_idx_pair",
    "load_mnist",
    "locate_files",
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
