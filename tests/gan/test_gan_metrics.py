"""FID, Inception Score, mode coverage and precision/recall on cases with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn

from deepgm.data.toy import toy_2d, toy_2d_modes
from deepgm.metrics.gan import (
    fid,
    frechet_distance,
    gaussian_statistics,
    inception_score,
    load_mnist_classifier,
    mode_coverage,
    precision_recall,
)
from deepgm.nn import MNISTClassifier


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_noise() -> None:
    x = torch.rand(500, 16)
    features = nn.Sequential(nn.Linear(16, 8), nn.Tanh())
    assert fid(x, x, features) == pytest.approx(0.0, abs=1e-6)
    scores = [fid(x, x + s * torch.randn_like(x), features) for s in (0.05, 0.2, 0.5, 1.0)]
    assert all(a < b for a, b in zip(scores, scores[1:])), scores
    assert scores[0] > 0


def test_frechet_distance_matches_scipy_and_the_closed_form() -> None:
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(6, 6, generator=g, dtype=torch.float64), torch.randn(6, 6, generator=g, dtype=torch.float64)
    s1, s2 = a @ a.T + 0.1 * torch.eye(6, dtype=torch.float64), b @ b.T
    m1, m2 = torch.randn(6, generator=g, dtype=torch.float64), torch.zeros(6, dtype=torch.float64)
    root = scipy.linalg.sqrtm(s1.numpy() @ s2.numpy()).real
    expected = float(((m1 - m2) ** 2).sum()) + float(np.trace(s1.numpy() + s2.numpy() - 2 * root))
    assert frechet_distance(m1, s1, m2, s2) == pytest.approx(expected, rel=1e-6)
    # two isotropic Gaussians: ‖μ‖² + d (σ₁ - σ₂)²
    eye = torch.eye(3, dtype=torch.float64)
    assert frechet_distance(torch.ones(3), eye, torch.zeros(3), 4 * eye) == pytest.approx(3 + 3 * 1.0)


def test_gaussian_statistics_and_errors() -> None:
    mu, cov = gaussian_statistics(torch.tensor([[0.0, 1.0], [2.0, 3.0]]))
    assert torch.allclose(mu, torch.tensor([1.0, 2.0], dtype=torch.float64))
    assert torch.allclose(cov, torch.full((2, 2), 2.0, dtype=torch.float64))
    with pytest.raises(ValueError, match="n >= 2"):
        gaussian_statistics(torch.zeros(1, 3))


def test_inception_score_bounds() -> None:
    k = 5
    labels = torch.arange(100) % k
    confident = lambda x: 50.0 * nn.functional.one_hot(labels[: x.shape[0]], k).float()  # noqa: E731
    uniform = lambda x: torch.zeros(x.shape[0], k)  # noqa: E731
    x = torch.zeros(100, 3)
    assert inception_score(x, confident, splits=1)[0] == pytest.approx(k, rel=1e-4)
    assert inception_score(x, uniform, splits=4)[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="splits"):
        inception_score(x, uniform, splits=0)


def test_mode_coverage_of_the_data_and_of_a_collapsed_generator() -> None:
    modes = toy_2d_modes("8gaussians")
    full = mode_coverage(toy_2d("8gaussians", 2000, seed=0), modes, 0.1)
    assert full["modes_captured"] == 8 and full["high_quality"] > 0.98 and full["mode_kl"] < 0.01
    collapsed = mode_coverage(modes[2] + 0.05 * torch.randn(500, 2), modes, 0.1)
    assert collapsed["modes_captured"] == 1 and collapsed["mode_kl"] == pytest.approx(math.log(8))
    off = mode_coverage(torch.zeros(100, 2), modes, 0.1)
    assert off["modes_captured"] == 0 and off["high_quality"] == 0.0
    grid = mode_coverage(toy_2d("25gaussians", 5000, seed=0), toy_2d_modes("25gaussians"), 0.1)
    assert grid["modes_captured"] == 25


def test_precision_and_recall_tell_quality_from_coverage() -> None:
    real = toy_2d("8gaussians", 800, seed=0)
    same = precision_recall(real, toy_2d("8gaussians", 800, seed=1))
    assert same["precision"] > 0.9 and same["recall"] > 0.9
    modes = toy_2d_modes("8gaussians")
    collapsed = precision_recall(real, modes[0] + 0.1 * torch.randn(800, 2))
    assert collapsed["precision"] > 0.9 and collapsed["recall"] < 0.3
    noisy = precision_recall(real, 2.0 * torch.randn(800, 2))
    assert noisy["precision"] < 0.5


def test_mnist_classifier_round_trip(tmp_path: object) -> None:
    net = MNISTClassifier()
    x = torch.rand(3, 784)
    assert net(x).shape == (3, 10) and net.features(x).shape == (3, 128)
    path = tmp_path / "clf.pt"  # type: ignore[operator]
    torch.save(net.state_dict(), path)
    again = load_mnist_classifier(path)
    assert torch.allclose(again(x), net.eval()(x))
    with pytest.raises(FileNotFoundError, match="train_mnist_classifier"):
        load_mnist_classifier(tmp_path / "missing.pt")  # type: ignore[operator]
