"""IDX reading and writing on small synthetic files."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from deepgm.data import IDXFormatError, read_idx, write_idx
from deepgm.errors import DeepGMError


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_roundtrip(tmp_path: Path, gz: bool, dtype: type) -> None:
    rng = np.random.default_rng(0)
    array = (rng.normal(size=(5, 3, 4)) * 50).astype(dtype)
    path = write_idx(tmp_path / ("a.idx.gz" if gz else "a.idx"), array)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == gz
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, array)


def test_header_bytes_by_hand(tmp_path: Path) -> None:
    # magic 0x00000803: uint8, 3 dims; sizes 2, 2, 3 big-endian; then 12 bytes.
    payload = bytes([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3]) + bytes(range(12))
    (tmp_path / "raw").write_bytes(payload)
    (tmp_path / "zipped").write_bytes(gzip.compress(payload))  # detected by content, not by name
    for name in ("raw", "zipped"):
        out = read_idx(tmp_path / name)
        assert out.shape == (2, 2, 3)
        np.testing.assert_array_equal(out.reshape(-1), np.arange(12))


def test_big_endian_int32(tmp_path: Path) -> None:
    payload = bytes([0, 0, 0x0C, 1, 0, 0, 0, 2]) + (258).to_bytes(4, "big") + (-1).to_bytes(4, "big", signed=True)
    (tmp_path / "f").write_bytes(payload)
    np.testing.assert_array_equal(read_idx(tmp_path / "f"), [258, -1])


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b"\x00\x00", "too short"),
        (bytes([1, 0, 8, 1, 0, 0, 0, 1, 7]), "magic"),
        (bytes([0, 0, 0x42, 1, 0, 0, 0, 1, 7]), "type code"),
        (bytes([0, 0, 8, 3, 0, 0, 0, 1]), "truncated header"),
        (bytes([0, 0, 8, 1, 0, 0, 0, 5, 1, 2, 3]), "payload has 3 bytes"),
        (bytes([0, 0, 8, 1, 0, 0, 0, 1, 1, 2]), "payload has 2 bytes"),
    ],
)
def test_malformed(tmp_path: Path, payload: bytes, match: str) -> None:
    path = tmp_path / "bad-idx1-ubyte"
    path.write_bytes(payload)
    with pytest.raises(IDXFormatError, match=match) as info:
        read_idx(path)
    assert str(path) in str(info.value)
    gz = tmp_path / "bad-idx1-ubyte.gz"
    gz.write_bytes(gzip.compress(payload))
    with pytest.raises(IDXFormatError, match=match):
        read_idx(gz)


def test_corrupt_gzip(tmp_path: Path) -> None:
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 4, 1, 2, 3, 4]))[:-6])
    with pytest.raises(IDXFormatError, match="gzip"):
        read_idx(path)


def test_idx_error_is_value_error() -> None:
    assert issubclass(IDXFormatError, ValueError)


@pytest.mark.parametrize("kind", ["bad-deflate-block", "only-magic", "bad-header", "truncated"])
def test_garbage_gzip_is_an_idx_error_naming_the_file(tmp_path: Path, kind: str) -> None:
    # issue 19: a damaged .gz gave a raw zlib.error (no file named); every kind is a deepgm error now
    good = gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 4, 1, 2, 3, 4]))
    payload = {
        "bad-deflate-block": b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff\x07" + bytes(10),  # reserved block type
        "only-magic": b"\x1f\x8b",
        "bad-header": b"\x1f\x8b" + bytes(range(40)),
        "truncated": good[: len(good) // 2],
    }[kind]
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(payload)
    with pytest.raises(IDXFormatError, match="gzip") as info:
        read_idx(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    assert isinstance(info.value, DeepGMError)
