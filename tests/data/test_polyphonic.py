"""The polyphonic-music piano rolls: reading .mat files, finding them, refusing malformed ones, and the
published split sizes (on the real files when $DEEPGM_DATA holds them)."""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

from deepgm.data import (
    DataInfo,
    DatasetNotFoundError,
    SequenceDataset,
    SequenceFormatError,
    load_dataset,
    load_splits,
    polyphonic_sequences,
    read_polyphonic,
)
from deepgm.errors import DeepGMError


def _rolls(rng: np.random.Generator, lengths: list[int], width: int = 88) -> np.ndarray:
    cell = np.empty((1, len(lengths)), dtype=object)
    for i, t in enumerate(lengths):
        cell[0, i] = (rng.random((t, width)) < 0.1).astype(np.uint8)
    return cell


def write_fake_mat(path: Path, lengths: dict[str, list[int]] | None = None, seed: int = 0, **override: object) -> Path:
    """A .mat file laid out like the published ones (traindata/validdata/testdata cells of (T, 88))."""
    rng = np.random.default_rng(seed)
    lengths = lengths or {"traindata": [5, 9, 3], "validdata": [4, 2], "testdata": [7]}
    content: dict[str, object] = {k: _rolls(rng, v) for k, v in lengths.items()}
    content.update(override)
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(str(path), content)
    return path


@pytest.fixture
def jsb_dir(isolated_env: Path, tmp_path: Path) -> Path:
    write_fake_mat(tmp_path / "music" / "JSB_Chorales.mat")
    return tmp_path / "music"


def test_splits_are_padded_piano_rolls_with_masks(jsb_dir: Path) -> None:
    raw = read_polyphonic(jsb_dir / "JSB_Chorales.mat")
    train = load_dataset("jsb", "train", jsb_dir)
    assert isinstance(train, SequenceDataset) and len(train) == 3
    batch = train.batch()
    assert set(batch) == {"x", "mask"}
    assert batch["x"].shape == (3, 9, 88) and batch["x"].dtype == torch.float32
    assert batch["mask"].tolist()[2] == [1.0] * 3 + [0.0] * 6
    assert train.lengths.tolist() == [5, 9, 3]
    for i, seq in enumerate(raw["train"]):
        assert torch.equal(batch["x"][i, : len(seq)], torch.from_numpy(seq.astype(np.float32)))
        assert float(batch["x"][i, len(seq):].abs().sum()) == 0.0  # padding is zero
    full = load_dataset("jsb_chorales", "train+valid", jsb_dir)
    assert full.lengths.tolist() == [5, 9, 3, 4, 2]  # type: ignore[attr-defined]
    assert len(load_dataset("JSB-Chorales", "test", jsb_dir)) == 1


def test_load_splits_describes_sequences(jsb_dir: Path) -> None:
    data = load_splits("jsb", jsb_dir, binarize="auto", pixels="binary")
    assert data.info == DataInfo("jsb", (88,), None, binary=True, sequence=True)
    assert data.info.image_shape is None and data.info.x_dim == 88 and data.transform is None
    assert {k: tuple(v["x"].shape) for k, v in data.splits.items()} == {
        "train": (3, 9, 88), "valid": (2, 4, 88), "test": (1, 7, 88)}
    assert all(set(v) == {"x", "mask"} for v in data.splits.values())
    with pytest.raises(ValueError, match="applies to MNIST-like images"):
        load_splits("jsb", jsb_dir, binarize="dynamic")


def test_found_through_the_environment_in_a_polyphonic_subfolder(
        isolated_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_fake_mat(tmp_path / "root" / "polyphonic" / "Piano_midi.mat")
    monkeypatch.setenv("DEEPGM_DATA", str(tmp_path / "root"))
    assert len(load_dataset("pianomidi", "valid")) == 2


def test_gzipped_files_are_read(isolated_env: Path, tmp_path: Path) -> None:
    plain = write_fake_mat(tmp_path / "plain" / "MuseData.mat")
    (tmp_path / "gz").mkdir()
    with open(plain, "rb") as src, gzip.open(tmp_path / "gz" / "MuseData.mat.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    a = load_dataset("muse", "train", tmp_path / "gz").batch()  # type: ignore[attr-defined]
    b = load_dataset("musedata", "train", tmp_path / "plain").batch()  # type: ignore[attr-defined]
    assert torch.equal(a["x"], b["x"]) and torch.equal(a["mask"], b["mask"])


def test_missing_files_name_the_file_and_the_folders(isolated_env: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"Nottingham\.mat") as err:
        load_dataset("nottingham", "train", tmp_path)
    assert str(tmp_path) in str(err.value)
    with pytest.raises(DatasetNotFoundError) as err2:
        load_dataset("nottingham", "train")
    text = str(err2.value)
    assert "Nottingham.mat" in text and str(isolated_env / ".cache" / "deepgm" / "polyphonic") in text


def test_parsed_once_per_file_version(isolated_env: Path, tmp_path: Path) -> None:
    path = write_fake_mat(tmp_path / "JSB_Chorales.mat")
    first = read_polyphonic(path)
    assert read_polyphonic(path) is first  # cached
    write_fake_mat(path, {"traindata": [6], "validdata": [1], "testdata": [2]}, seed=1)
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    again = read_polyphonic(path)
    assert again is not first and [len(s) for s in again["train"]] == [6]


@pytest.mark.parametrize(("override", "message"), [
    ({"traindata": _rolls(np.random.default_rng(0), [4], width=87)}, r"traindata\[0\] has shape \(4, 87\)"),
    ({"validdata": np.full((1, 1), 2.0)}, r"validdata is a float64 array"),
])
def test_malformed_files_are_refused_naming_the_file(isolated_env: Path, tmp_path: Path,
                                                     override: dict[str, object], message: str) -> None:
    path = write_fake_mat(tmp_path / "JSB_Chorales.mat", **override)
    with pytest.raises(SequenceFormatError, match=message) as err:
        load_dataset("jsb", "train", tmp_path)
    assert str(path) in str(err.value) and isinstance(err.value, DeepGMError)


def test_non_binary_values_missing_keys_and_garbage_are_refused(isolated_env: Path, tmp_path: Path) -> None:
    cell = _rolls(np.random.default_rng(0), [3])
    cell[0, 0][1, 5] = 3
    write_fake_mat(tmp_path / "a" / "JSB_Chorales.mat", traindata=cell)
    with pytest.raises(SequenceFormatError, match="holds the value 3; expected only 0 and 1"):
        polyphonic_sequences("jsb", "train", tmp_path / "a")
    (tmp_path / "b").mkdir()
    scipy.io.savemat(str(tmp_path / "b" / "JSB_Chorales.mat"), {"traindata": cell})
    with pytest.raises(SequenceFormatError, match="missing key.*validdata, testdata"):
        polyphonic_sequences("jsb", "test", tmp_path / "b")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "JSB_Chorales.mat").write_bytes(b"not a mat file at all" * 10)
    with pytest.raises(SequenceFormatError, match=r"JSB_Chorales\.mat: not a readable MATLAB \.mat file"):
        polyphonic_sequences("jsb", "test", tmp_path / "c")


def test_image_options_and_sizes_do_not_apply(jsb_dir: Path) -> None:
    with pytest.raises(ValueError, match="sequence dataset; the image options"):
        load_dataset("jsb", "train", jsb_dir, flatten=True)
    with pytest.raises(ValueError, match="options n_samples do not apply"):
        load_dataset("jsb", "train", jsb_dir, n_samples=3)
    with pytest.raises(ValueError, match="cannot be downloaded"):
        load_dataset("jsb", "train", jsb_dir, download=True)


# sequences and time steps per split, as /work/shared/data/README.md lists them
PUBLISHED = {
    "jsb": ((229, 76, 77), (13807, 4602, 4725)),
    "nottingham": ((694, 173, 170), (176561, 45513, 44463)),
    "musedata": ((524, 135, 124), (245202, 82755, 64339)),
    "piano-midi": ((87, 12, 25), (75911, 8540, 19036)),
}
_REAL = Path(os.environ.get("DEEPGM_DATA", "/nonexistent")) / "polyphonic"


@pytest.mark.skipif(not _REAL.is_dir(), reason="polyphonic .mat files not available (set DEEPGM_DATA)")
@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_real_files_have_the_published_split_sizes(name: str) -> None:
    splits = ("train", "valid", "test")
    seqs = {s: polyphonic_sequences(name, s) for s in splits}
    assert tuple(len(seqs[s]) for s in splits) == PUBLISHED[name][0]
    assert tuple(sum(len(q) for q in seqs[s]) for s in splits) == PUBLISHED[name][1]


@pytest.mark.skipif(not _REAL.is_dir(), reason="polyphonic .mat files not available (set DEEPGM_DATA)")
def test_real_jsb_masks_count_the_published_time_steps() -> None:
    data = load_splits("jsb")
    assert [int(data.splits[s]["mask"].sum()) for s in ("train", "valid", "test")] == [13807, 4602, 4725]
    assert data.train["x"].shape == (229, 129, 88) and data.info.sequence
