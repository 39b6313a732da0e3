"""The four polyphonic-music sets of Boulanger-Lewandowski et al. (2012) as piano rolls.

JSB Chorales, Nottingham, MuseData and Piano-midi.de, each one MATLAB ``.mat`` file with the keys
``traindata``, ``validdata`` and ``testdata``: object arrays of ``(T, 88)`` 0/1 arrays (88 piano keys,
lowest first; 1 = the note sounds at that step). The files are found like MNIST's
(:func:`deepgm.data.locate_files`): in ``data_dir`` when given (used or refused), else in the folders
of ``$DEEPGM_DATA`` and their ``polyphonic`` sub-folder, then ``~/.cache/deepgm/polyphonic``. They are
never downloaded. A file may be gzipped (``JSB_Chorales.mat.gz``). Reading needs scipy.

Splits are the published ones; ``"train+valid"`` is the train sequences followed by the valid ones.
:func:`load_polyphonic` gives a :class:`~deepgm.data.sequences.SequenceDataset` (padded ``{"x", "mask"}``).

>>> polyphonic_names()
('jsb', 'nottingham', 'musedata', 'piano-midi')
>>> POLYPHONIC_FILES["jsb"], N_KEYS
('JSB_Chorales.mat', 88)
"""

from __future__ import annotations

import functools
import gzip
import os
from pathlib import Path
from typing import Any

import numpy as np

from deepgm.errors import DeepGMError

from .files import FileSpec, locate_files
from .sequences import SequenceDataset

__all__ = [
    "N_KEYS",
    "POLYPHONIC_FILES",
    "POLYPHONIC_SPEC",
    "SequenceFormatError",
    "load_polyphonic",
    "polyphonic_names",
    "polyphonic_sequences",
    "read_polyphonic",
]

N_KEYS = 88  # piano keys, A0 to C8
POLYPHONIC_FILES = {
    "jsb": "JSB_Chorales.mat",
    "nottingham": "Nottingham.mat",
    "musedata": "MuseData.mat",
    "piano-midi": "Piano_midi.mat",
}
_MAT_KEYS = {"train": "traindata", "valid": "validdata", "test": "testdata"}

POLYPHONIC_SPEC = FileSpec(
    name="polyphonic",
    title="Polyphonic music",
    files=tuple(POLYPHONIC_FILES.values()),
    subdirs=("polyphonic",),
    mirrors=(),
)


class SequenceFormatError(DeepGMError, ValueError):
    """A sequence data file is unreadable or not in the expected layout; the message names the file
    and what was expected."""


def polyphonic_names() -> tuple[str, ...]:
    """The dataset names of the four sets, in the order of their paper."""
    return tuple(POLYPHONIC_FILES)


def _loadmat(path: Path) -> dict[str, Any]:
    try:
        import scipy.io
    except ImportError as exc:  # pragma: no cover - scipy is a dependency
        raise ImportError(f"reading {path} needs scipy (pip install 'scipy>=1.10')") from exc
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                return dict(scipy.io.loadmat(fh))
        return dict(scipy.io.loadmat(str(path)))
    except (ValueError, TypeError, OSError, NotImplementedError, EOFError, KeyError) as err:
        # scipy's MatReadError is a ValueError; HDF5-based (v7.3) files raise NotImplementedError
        raise SequenceFormatError(f"{path}: not a readable MATLAB .mat file (v5 or older) ({err}); expected keys "
                                  f"{', '.join(_MAT_KEYS.values())}") from err


def _check_split(path: Path, key: str, value: Any) -> tuple[np.ndarray, ...]:
    arr = np.asarray(value)
    if arr.dtype != object:
        raise SequenceFormatError(f"{path}: {key} is a {arr.dtype} array of shape {arr.shape}; expected an object "
                                  f"(cell) array of (T, {N_KEYS}) piano rolls")
    out: list[np.ndarray] = []
    for i, item in enumerate(arr.ravel()):
        seq = np.asarray(item)
        if seq.ndim != 2 or seq.shape[1] != N_KEYS or seq.shape[0] < 1:
            raise SequenceFormatError(f"{path}: {key}[{i}] has shape {seq.shape}; expected (T >= 1, {N_KEYS}) "
                                      "piano-roll steps")
        if seq.dtype.kind not in "biuf":
            raise SequenceFormatError(f"{path}: {key}[{i}] has dtype {seq.dtype}; expected 0/1 numbers")
        if not np.all((seq == 0) | (seq == 1)):
            bad = seq[(seq != 0) & (seq != 1)].ravel()[0].item()
            raise SequenceFormatError(f"{path}: {key}[{i}] holds the value {bad!r}; expected only 0 and 1 "
                                      "(note off / on)")
        seq = np.ascontiguousarray(seq, dtype=np.uint8)
        seq.setflags(write=False)
        out.append(seq)
    if not out:
        raise SequenceFormatError(f"{path}: {key} holds no sequence; expected at least one (T, {N_KEYS}) piano roll")
    return tuple(out)


@functools.lru_cache(maxsize=4)
def _read_cached(path: str, mtime_ns: int, size: int) -> dict[str, tuple[np.ndarray, ...]]:
    p = Path(path)
    content = _loadmat(p)
    missing = [k for k in _MAT_KEYS.values() if k not in content]
    if missing:
        found = sorted(k for k in content if not k.startswith("__"))
        raise SequenceFormatError(f"{p}: missing key(s) {', '.join(missing)}; expected traindata, validdata, "
                                  f"testdata, found {', '.join(found) or 'none'}")
    return {split: _check_split(p, key, content[key]) for split, key in _MAT_KEYS.items()}


def read_polyphonic(path: str | os.PathLike[str]) -> dict[str, tuple[np.ndarray, ...]]:
    """The ``"train"``, ``"valid"`` and ``"test"`` sequences of one ``.mat`` file (or ``.mat.gz``), each a
    read-only ``uint8 (T, 88)`` array. Parsed once per (path, modification time, size): a repeated call is
    cheap. Raises :class:`SequenceFormatError` naming the file for an unreadable or malformed one."""
    p = Path(path)
    try:
        st = os.stat(p)
    except OSError as err:
        raise SequenceFormatError(f"{p}: cannot read the file ({err.strerror or err}); expected a .mat file") from err
    return _read_cached(str(p), st.st_mtime_ns, st.st_size)


def _canonical(name: str) -> str:
    key = name.lower().strip()
    if key not in POLYPHONIC_FILES:
        raise ValueError(f"unknown polyphonic dataset {name!r}; valid: {', '.join(POLYPHONIC_FILES)}")
    return key


def polyphonic_sequences(
    name: str,
    split: str = "train",
    data_dir: str | os.PathLike[str] | None = None,
) -> tuple[np.ndarray, ...]:
    """The unpadded ``uint8 (T, 88)`` sequences of dataset ``name``'s ``split`` (``"train"``, ``"valid"``,
    ``"test"`` or ``"train+valid"``). Raises :class:`~deepgm.data.DatasetNotFoundError` naming the file
    and the folders searched when it is not found."""
    key = _canonical(name)
    file = POLYPHONIC_FILES[key]
    path = locate_files(POLYPHONIC_SPEC, (file,), data_dir=data_dir)[file]
    parts = read_polyphonic(path)
    if split == "train+valid":
        return parts["train"] + parts["valid"]
    if split not in parts:
        raise ValueError(f"split must be 'train', 'valid', 'test' or 'train+valid', got {split!r}")
    return parts[split]


def load_polyphonic(
    name: str,
    split: str = "train",
    data_dir: str | os.PathLike[str] | None = None,
) -> SequenceDataset:
    """Dataset ``name``'s ``split`` as padded piano rolls: ``batch()`` is ``{"x": float32 (N, T_max, 88),
    "mask": float32 (N, T_max)}`` and ``len`` the number of sequences (see :func:`polyphonic_sequences`)."""
    return SequenceDataset.from_sequences(polyphonic_sequences(name, split, data_dir))
