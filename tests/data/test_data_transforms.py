"""Binarisation, dequantisation, logit transform, flatten."""

from __future__ import annotations

import pytest
import torch

from deepgm.data import (
    Compose,
    Dequantize,
    DynamicBinarize,
    FixedBinarize,
    Flatten,
    LogitTransform,
    binarize_fixed,
    binarize_threshold,
    dequantize,
)


@pytest.fixture
def images() -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (8, 1, 6, 6), generator=gen).float() / 255.0


def test_dynamic_binarize_resamples(images: torch.Tensor) -> None:
    torch.manual_seed(0)
    t = DynamicBinarize()
    a, b = t(images), t(images)
    assert set(torch.unique(a).tolist()) <= {0.0, 1.0}
    assert not torch.equal(a, b)
    # E[b] = x
    many = torch.stack([t(images) for _ in range(2000)]).mean(0)
    assert (many - images).abs().max() < 0.06


def test_fixed_binarize_reproducible(images: torch.Tensor) -> None:
    a = binarize_fixed(images, seed=5)
    assert torch.equal(a, binarize_fixed(images, seed=5))
    assert torch.equal(a, FixedBinarize(5)(images))
    assert not torch.equal(a, binarize_fixed(images, seed=6))
    assert set(torch.unique(a).tolist()) <= {0.0, 1.0}
    ones, zeros = torch.ones(3), torch.zeros(3)
    assert torch.equal(binarize_fixed(ones), ones) and torch.equal(binarize_fixed(zeros), zeros)


def test_threshold(images: torch.Tensor) -> None:
    assert torch.equal(binarize_threshold(images), (images > 0.5).float())


def test_dequantize_range_and_bins(images: torch.Tensor) -> None:
    gen = torch.Generator().manual_seed(0)
    y = dequantize(images, generator=gen)
    assert y.min() >= 0.0 and y.max() < 1.0
    # each value stays in its own bin [k/256, (k+1)/256)
    assert torch.equal(torch.floor(y * 256), torch.round(images * 255))
    assert not torch.equal(Dequantize()(images), Dequantize()(images))
    extremes = torch.tensor([0.0, 1.0]).repeat(10_000)
    y = dequantize(extremes)
    assert y.min() >= 0.0 and y.max() < 1.0


def test_dequantize_formula() -> None:
    x = torch.tensor([0.0, 128 / 255, 1.0])
    torch.manual_seed(1)
    u = torch.rand(3)
    torch.manual_seed(1)
    torch.testing.assert_close(dequantize(x), (x * 255 + u) / 256)


@pytest.mark.parametrize("alpha", [1e-6, 0.05])
def test_logit_log_det_matches_autograd(alpha: float) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(3, 1, 2, 2, generator=gen, dtype=torch.float64)
    t = LogitTransform(alpha)
    y, log_det = t.forward_and_log_det(x)
    assert log_det.shape == (3,)
    p = alpha + (1 - 2 * alpha) * x
    torch.testing.assert_close(y, torch.log(p / (1 - p)))
    for i in range(3):
        jac = torch.autograd.functional.jacobian(lambda v: t(v.unsqueeze(0))[0].reshape(-1), x[i])
        jac = jac.reshape(4, 4)
        torch.testing.assert_close(log_det[i], torch.linalg.slogdet(jac).logabsdet)
    torch.testing.assert_close(t.inverse(y), x)
    torch.testing.assert_close(t.log_det(x), log_det)


def test_logit_unbatched() -> None:
    x = torch.full((1, 2, 2), 0.5)
    _, ld = LogitTransform(0.0, batch_dims=0).forward_and_log_det(x)
    assert ld.shape == () and float(ld) == pytest.approx(4 * torch.log(torch.tensor(4.0)).item())
    with pytest.raises(ValueError, match="alpha"):
        LogitTransform(0.5)


def test_flatten_and_compose(images: torch.Tensor) -> None:
    assert Flatten()(images).shape == (8, 36)
    assert Flatten()(images[0]).shape == (36,)
    with pytest.raises(ValueError, match="at least 3 dims"):
        Flatten()(torch.zeros(3, 3))
    out = Compose(FixedBinarize(0), Flatten())(images)
    assert torch.equal(out, binarize_fixed(images, 0).reshape(8, -1))
