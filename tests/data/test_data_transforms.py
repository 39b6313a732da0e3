"""Fixed and threshold binarisation (dequantisation and the logit transform are flow transforms:
tests/flows/test_transforms.py)."""

from __future__ import annotations

import pytest
import torch

import deepgm.data
from deepgm.data import binarize_fixed, binarize_threshold


@pytest.fixture
def images() -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (8, 1, 6, 6), generator=gen).float() / 255.0


def test_fixed_binarize_reproducible(images: torch.Tensor) -> None:
    a = binarize_fixed(images, seed=5)
    assert torch.equal(a, binarize_fixed(images, seed=5))
    assert not torch.equal(a, binarize_fixed(images, seed=6))
    assert set(torch.unique(a).tolist()) <= {0.0, 1.0}
    ones, zeros = torch.ones(3), torch.zeros(3)
    assert torch.equal(binarize_fixed(ones), ones) and torch.equal(binarize_fixed(zeros), zeros)


def test_threshold(images: torch.Tensor) -> None:
    assert torch.equal(binarize_threshold(images), (images > 0.5).float())


def test_dequantisation_and_the_logit_transform_have_one_home_in_the_flows() -> None:
    for gone in ("Dequantize", "dequantize", "LogitTransform", "logit_transform", "Compose", "Flatten",
                 "FixedBinarize", "DynamicBinarize"):
        assert not hasattr(deepgm.data, gone), gone
