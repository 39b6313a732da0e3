"""Fixtures for deepgm.data tests: synthetic IDX datasets and an isolated data environment."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from deepgm.data import write_idx

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def write_fake_mnist(
    folder: Path, n_train: int = 60, n_test: int = 20, gz: bool = True, seed: int = 0, parts=("train", "test")
) -> Path:
    """Write small MNIST-shaped IDX files (labels cycle 0..9) into ``folder``."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    for part in parts:
        n = n_train if part == "train" else n_test
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        write_idx(folder / (FILES[part][0] + suffix), images)
        write_idx(folder / (FILES[part][1] + suffix), labels)
    return folder


@pytest.fixture
def fake_mnist() -> Callable[..., Path]:
    return write_fake_mnist


@pytest.fixture
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No DEEPGM_DATA, and HOME (hence ~/.cache/deepgm) inside tmp_path. Returns the fake home."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.delenv("DEEPGM_DATA", raising=False)
    monkeypatch.setenv("HOME", str(home))
    return home
