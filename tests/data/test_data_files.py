"""Finding MNIST-style files: error message, search order, download with md5 checks."""

from __future__ import annotations

import dataclasses
import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from deepgm.data import (
    MNIST_SPEC,
    DatasetNotFoundError,
    IDXFormatError,
    cache_dir,
    candidate_dirs,
    load_fashion_mnist,
    load_mnist,
    locate_files,
    write_idx,
)
from deepgm.data import mnist as mnist_module
from deepgm.data.files import file_md5

TRAIN = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
TEST = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def test_error_type() -> None:
    assert issubclass(DatasetNotFoundError, FileNotFoundError)


def test_missing_files_message(isolated_env: Path, tmp_path: Path) -> None:
    explicit = tmp_path / "explicit"
    explicit.mkdir()
    with pytest.raises(DatasetNotFoundError) as info:
        load_mnist("test", explicit)
    msg = str(info.value)
    for name in TEST:
        assert name in msg
    for name in TRAIN:  # only the files the split needs are reported missing
        assert name not in msg
    assert str(explicit) in msg
    assert str(explicit / "MNIST" / "raw") in msg
    assert "DEEPGM_DATA" in msg
    # issue 19: an explicit folder is used or refused, in one line; the cache is not searched, and no
    # download=True is suggested (the command line has none)
    assert "\n" not in msg
    assert str(cache_dir("mnist")) not in msg
    assert "download=True" not in msg


def test_missing_files_message_without_a_folder(isolated_env: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as info:
        load_mnist("test")
    msg = str(info.value)
    assert all(name in msg for name in TEST)
    assert str(cache_dir("mnist")) in msg
    assert "DEEPGM_DATA" in msg
    assert "--data-dir" in msg
    assert "download=True" not in msg  # issue 19: the command line has no such option


@pytest.mark.parametrize("kind", ["typo", "file"])
def test_explicit_folder_is_never_substituted(isolated_env: Path, tmp_path: Path, fake_mnist, monkeypatch,
                                              kind: str) -> None:
    # issue 19: `--data-dir` with a typo silently fell back to ~/.cache/deepgm/mnist
    fake_mnist(cache_dir("mnist"), n_test=13)
    fake_mnist(tmp_path / "env" / "mnist", n_test=12)
    monkeypatch.setenv("DEEPGM_DATA", str(tmp_path / "env"))
    given = tmp_path / "mnsit"
    if kind == "file":
        given.write_text("not a folder")
    with pytest.raises(DatasetNotFoundError) as info:
        load_mnist("test", given)
    msg = str(info.value)
    assert "\n" not in msg and str(given) in msg and all(name in msg for name in TEST)
    assert ("does not exist" if kind == "typo" else "is not a folder") in msg
    assert str(cache_dir("mnist")) not in msg and str(tmp_path / "env") not in msg


def test_missing_lists_exactly_the_absent_files(isolated_env: Path, tmp_path: Path, fake_mnist) -> None:
    folder = fake_mnist(tmp_path / "partial", parts=("train",))
    (folder / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetNotFoundError) as info:
        load_mnist("train", folder, n_valid=10)
    missing_line = str(info.value).split("missing ", 1)[1].split("(", 1)[0]  # one line (issue 19)
    assert "train-labels-idx1-ubyte" in missing_line
    assert "train-images-idx3-ubyte" not in missing_line


def test_env_var_folders_listed(isolated_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    monkeypatch.setenv("DEEPGM_DATA", f"{a}{os.pathsep}{b}")
    dirs = candidate_dirs(MNIST_SPEC)
    assert dirs.index(a) < dirs.index(a / "mnist") < dirs.index(b) < dirs.index(b / "MNIST" / "raw")
    assert dirs[-1] == cache_dir("mnist") == isolated_env / ".cache" / "deepgm" / "mnist"
    # an explicit folder: only it and its sub-folders (issue 19)
    explicit = candidate_dirs(MNIST_SPEC, tmp_path / "x")
    assert explicit[0] == tmp_path / "x"
    assert explicit == [tmp_path / "x"] + [tmp_path / "x" / sub for sub in MNIST_SPEC.subdirs]


def test_search_order(isolated_env: Path, tmp_path: Path, fake_mnist, monkeypatch: pytest.MonkeyPatch) -> None:
    # Distinguish the three locations by their number of test examples.
    explicit = fake_mnist(tmp_path / "explicit", n_test=11)
    env_root = tmp_path / "env"
    fake_mnist(env_root / "mnist", n_test=12)
    fake_mnist(cache_dir("mnist"), n_test=13)
    monkeypatch.setenv("DEEPGM_DATA", str(env_root))

    assert len(load_mnist("test", explicit)) == 11  # explicit path first
    assert len(load_mnist("test")) == 12  # then $DEEPGM_DATA (here its mnist/ sub-folder)
    with pytest.raises(DatasetNotFoundError, match="nowhere does not exist"):  # never substituted (issue 19)
        load_mnist("test", tmp_path / "nowhere")
    monkeypatch.delenv("DEEPGM_DATA")
    assert len(load_mnist("test")) == 13  # then the cache


@pytest.mark.parametrize("layout", ["", "mnist", "MNIST/raw"])
def test_env_var_layouts(isolated_env: Path, tmp_path: Path, fake_mnist, monkeypatch, layout: str) -> None:
    root = tmp_path / "data"
    fake_mnist(root / layout if layout else root, n_test=14, gz=False)
    monkeypatch.setenv("DEEPGM_DATA", str(root))
    assert len(load_mnist("test")) == 14


def test_raw_and_gz_files(isolated_env: Path, tmp_path: Path, fake_mnist) -> None:
    raw = load_mnist("test", fake_mnist(tmp_path / "raw", gz=False, seed=3))
    gz = load_mnist("test", fake_mnist(tmp_path / "gz", gz=True, seed=3))
    assert (raw.images == gz.images).all() and (raw.labels == gz.labels).all()


def test_folder_of_other_dataset_is_skipped(isolated_env: Path, tmp_path: Path, monkeypatch) -> None:
    # A folder whose labels file has Fashion-MNIST's published md5 is not taken for MNIST.
    fashion_like = tmp_path / "fashion"
    fashion_like.mkdir()
    names = {n: fashion_like / n for n in TEST}
    write_idx(names[TEST[0]], np.zeros((3, 28, 28), np.uint8))
    write_idx(names[TEST[1]], np.zeros(3, np.uint8))
    digest = file_md5(names[TEST[1]])
    monkeypatch.setitem(mnist_module._LABEL_MD5, "fashion-mnist", frozenset({digest}))
    with pytest.raises(DatasetNotFoundError, match="skipped: t10k-labels-idx1-ubyte is Fashion-MNIST's"):
        load_mnist("test", fashion_like)
    assert len(load_fashion_mnist("test", fashion_like)) == 3


def _mirror(tmp_path: Path, fake_mnist) -> tuple[Path, dict[str, str]]:
    mirror = fake_mnist(tmp_path / "mirror", n_test=15, gz=True)
    md5 = {f"{n}.gz": file_md5(mirror / f"{n}.gz") for n in TRAIN + TEST}
    return mirror, md5


def test_download_from_file_mirror(isolated_env: Path, tmp_path: Path, fake_mnist) -> None:
    mirror, md5 = _mirror(tmp_path, fake_mnist)
    spec = dataclasses.replace(
        MNIST_SPEC,
        mirrors=((tmp_path / "absent").as_uri() + "/", mirror.as_uri() + "/"),  # first mirror fails
        md5=md5,
    )
    found = locate_files(spec, TEST, download=True)
    assert all(p.parent == cache_dir("mnist") for p in found.values())
    assert sorted(p.name for p in cache_dir("mnist").iterdir()) == sorted(f"{n}.gz" for n in TEST)
    assert gzip.decompress(found[TEST[1]].read_bytes()) == gzip.decompress((mirror / f"{TEST[1]}.gz").read_bytes())


def test_download_md5_mismatch(isolated_env: Path, tmp_path: Path, fake_mnist) -> None:
    mirror, md5 = _mirror(tmp_path, fake_mnist)
    md5[f"{TEST[0]}.gz"] = "0" * 32
    spec = dataclasses.replace(MNIST_SPEC, mirrors=(mirror.as_uri() + "/",), md5=md5)
    with pytest.raises(DatasetNotFoundError, match="md5 mismatch") as info:
        locate_files(spec, TEST, download=True)
    assert TEST[0] in str(info.value).splitlines()[1]
    assert not (cache_dir("mnist") / f"{TEST[0]}.gz").exists()
    assert not any(p.suffix == ".part" for p in cache_dir("mnist").iterdir())


def test_download_unreachable_mirror(isolated_env: Path, tmp_path: Path) -> None:
    spec = dataclasses.replace(MNIST_SPEC, mirrors=((tmp_path / "offline").as_uri() + "/",))
    with pytest.raises(DatasetNotFoundError, match="Download failed"):
        locate_files(spec, TEST, download=True)


def test_download_goes_into_the_explicit_folder(isolated_env: Path, tmp_path: Path, fake_mnist) -> None:
    # issue 19: an explicit folder is used, not substituted: download=True fetches into it, not the cache
    mirror, md5 = _mirror(tmp_path, fake_mnist)
    spec = dataclasses.replace(MNIST_SPEC, mirrors=(mirror.as_uri() + "/",), md5=md5)
    target = tmp_path / "mine"
    found = locate_files(spec, TEST, data_dir=target, download=True)
    assert all(p.parent == target for p in found.values())
    assert not cache_dir("mnist").exists()


def test_wrong_image_size_and_label_range_are_named(isolated_env: Path, tmp_path: Path) -> None:
    folder = tmp_path / "odd"
    folder.mkdir()
    write_idx(folder / TEST[0], np.zeros((3, 10, 10), np.uint8))
    write_idx(folder / TEST[1], np.zeros(3, np.uint8))
    with pytest.raises(IDXFormatError, match=r"expected uint8 images \(N, 28, 28\)"):
        load_mnist("test", folder)
    write_idx(folder / TEST[0], np.zeros((3, 28, 28), np.uint8))
    write_idx(folder / TEST[1], np.array([0, 1, 200], np.uint8))
    with pytest.raises(IDXFormatError, match="expected class labels 0..9"):
        load_mnist("test", folder)
