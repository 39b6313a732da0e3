"""Reader and writer for the IDX binary format used by MNIST and Fashion-MNIST.

An IDX file is a big-endian header followed by the raw array:

* bytes 0-1: zero, byte 2: a type code (``0x08`` uint8, ``0x09`` int8, ``0x0B`` int16,
  ``0x0C`` int32, ``0x0D`` float32, ``0x0E`` float64), byte 3: the number of dimensions ``d``;
* then ``d`` big-endian uint32 sizes;
* then ``prod(sizes)`` items of that type, big-endian, in C order.

Files may be gzipped; a ``.gz`` file is recognised by its gzip magic bytes, not by its name.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from deepgm.errors import DeepGMError

__all__ = ["IDXFormatError", "read_idx", "write_idx"]

_GZIP_MAGIC = b"\x1f\x8b"

_TYPE_CODES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODE_OF_KIND: dict[tuple[str, int], int] = {(dt.kind, dt.itemsize): code for code, dt in _TYPE_CODES.items()}


class IDXFormatError(DeepGMError, ValueError):
    """Raised when a file is not a well-formed IDX file (or a gzip stream of one); the message names it."""


def _read_bytes(path: Path) -> bytes:
    with open(path, "rb") as fh:
        raw = fh.read()
    if raw[:2] == _GZIP_MAGIC:
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:  # truncated, bad header or CRC, garbage data
            raise IDXFormatError(f"{path}: corrupt or truncated gzip stream ({err}); expected a gzipped "
                                 "IDX file: fetch it again") from err
    return raw


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (raw or gzipped) into a native-endian numpy array.

    The header is checked: two zero bytes, a known type code, and a payload whose length is
    exactly ``prod(dims) * itemsize``. Anything else raises :class:`IDXFormatError` naming the file.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise IDXFormatError(f"{path}: file too short for an IDX header ({len(data)} bytes)")
    if data[0] != 0 or data[1] != 0:
        raise IDXFormatError(f"{path}: bad IDX magic number 0x{data[:4].hex()} (the first two bytes must be zero)")
    code, ndim = data[2], data[3]
    if code not in _TYPE_CODES:
        known = ", ".join(f"0x{c:02X}" for c in _TYPE_CODES)
        raise IDXFormatError(f"{path}: unknown IDX type code 0x{code:02X} (known: {known})")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise IDXFormatError(f"{path}: truncated header, expected {ndim} dimension sizes")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = _TYPE_CODES[code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    actual = len(data) - header_len
    if actual != expected:
        raise IDXFormatError(
            f"{path}: payload has {actual} bytes but the header dims {dims} with item size "
            f"{dtype.itemsize} need {expected} bytes"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header_len).reshape(dims)
    return array.astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike[str], array: np.ndarray, compress: bool | None = None) -> Path:
    """Write ``array`` as an IDX file; gzip it when ``compress`` is true (default: name ends in ``.gz``)."""
    path = Path(path)
    array = np.ascontiguousarray(array)
    key = (array.dtype.kind, array.dtype.itemsize)
    if key not in _CODE_OF_KIND:
        raise TypeError(f"dtype {array.dtype} cannot be stored in IDX")
    if array.ndim > 255:
        raise ValueError("IDX stores at most 255 dimensions")
    code = _CODE_OF_KIND[key]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = header + array.astype(_TYPE_CODES[code]).tobytes()
    if compress is None:
        compress = path.suffix == ".gz"
    if compress:
        payload = gzip.compress(payload, mtime=0)
    path.write_bytes(payload)
    return path
