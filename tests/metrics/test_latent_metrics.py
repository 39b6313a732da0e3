"""Representation metrics on cases whose answer is known."""

from __future__ import annotations

import math

import pytest
import torch

from deepgm.metrics import (
    accuracy,
    active_units,
    cluster_accuracy,
    discrete_mutual_information,
    factorvae_score,
    mutual_information_gap,
)


def test_active_units_counts_dimensions_that_vary() -> None:
    z = torch.cat([torch.randn(500, 3), 0.01 * torch.randn(500, 2)], 1)
    assert active_units(z) == 3


def test_mutual_information_of_a_uniform_variable_with_itself_is_its_entropy() -> None:
    import numpy as np

    a = np.arange(4000) % 8
    assert discrete_mutual_information(a, a) == pytest.approx(math.log(8), rel=1e-6)
    b = np.random.default_rng(0).integers(0, 8, 4000)
    assert discrete_mutual_information(a, b) < 0.02


def test_mig_is_high_for_axis_aligned_and_low_for_mixed_latents() -> None:
    v = torch.stack([torch.randint(0, 10, (5000,)), torch.randint(0, 10, (5000,))], 1)
    aligned = v.float() + 0.1 * torch.randn(5000, 2)
    mixed = torch.stack([v[:, 0] + v[:, 1], v[:, 0] - v[:, 1]], 1).float() + 0.1 * torch.randn(5000, 2)
    assert mutual_information_gap(aligned, v) > 0.8
    assert mutual_information_gap(mixed, v) < 0.3


def test_factorvae_score_is_one_for_an_identity_encoder_and_low_for_an_uninformative_one() -> None:
    sizes = (5, 5, 5)

    def sample(k: int, n: int, gen: torch.Generator) -> torch.Tensor:
        f = torch.stack([torch.randint(s, (n,), generator=gen) for s in sizes], 1).float()
        f[:, k] = torch.randint(sizes[k], (1,), generator=gen).float()
        return f

    data = sample(0, 2000, torch.Generator().manual_seed(1))
    data[:, 0] = torch.randint(5, (2000,)).float()
    assert factorvae_score(lambda x: x, sample, sizes, data.std(0)) == pytest.approx(1.0)
    noise = factorvae_score(lambda x: torch.randn_like(x), sample, sizes, torch.ones(3))
    assert noise < 0.6  # votes carry no information: about the majority share of random votes


def test_accuracy_and_cluster_accuracy() -> None:
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    assert accuracy(torch.tensor([0, 1, 1, 1, 2, 0]), y) == pytest.approx(4 / 6)
    assert cluster_accuracy(torch.tensor([2, 2, 0, 0, 1, 1]), y) == 1.0  # any relabelling of clusters
    assert cluster_accuracy(torch.tensor([0, 0, 0, 0, 1, 1]), y) == pytest.approx(4 / 6)
    with pytest.raises(ValueError, match="shapes differ"):
        accuracy(torch.zeros(3), torch.zeros(4))
