"""Shared test fixtures: seeded RNG, small networks, the seed's VAE."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture
def one_cpu_thread() -> Iterator[None]:
    """torch on one CPU thread for the test, restored afterwards (many tiny steps: threads only contend)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def mnist_dir() -> Path | None:
    """The folder holding MNIST IDX files, from $DEEPGM_DATA or ../shared/data, or None."""
    candidates = []
    if os.environ.get("DEEPGM_DATA"):
        candidates.append(Path(os.environ["DEEPGM_DATA"]))
    candidates.append(Path(__file__).resolve().parents[1].parent / "shared" / "data")
    for c in candidates:
        for d in (c, c / "mnist"):
            if (d / "train-images-idx3-ubyte.gz").exists() or (d / "train-images-idx3-ubyte").exists():
                return d
    return None
