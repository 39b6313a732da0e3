"""The MMD estimators against a brute-force computation in plain Python (loops over the pairs), and the one
median heuristic that every MMD in the library uses."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch

from deepgm.distributions import Empirical, Normal
from deepgm.errors import ObjectiveError
from deepgm.losses import MMDMixture, median_bandwidth, mmd2_mixture, mmd2_unbiased

Point = list[float]


def _d2(a: Point, b: Point) -> float:
    return sum((ai - bi) ** 2 for ai, bi in zip(a, b))


def _brute_mmd2(x: list[Point], y: list[Point], k: Callable[[float], float]) -> float:
    """``1/(n(n-1)) Σ_{i≠j} k(x_i, x_j) + 1/(m(m-1)) Σ_{i≠j} k(y_i, y_j) - 2/(nm) Σ_{i,j} k(x_i, y_j)``."""
    n, m = len(x), len(y)
    sxx = sum(k(_d2(x[i], x[j])) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    syy = sum(k(_d2(y[i], y[j])) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    sxy = sum(k(_d2(a, b)) for a in x for b in y) / (n * m)
    return sxx + syy - 2 * sxy


def _brute_median_bandwidth(x: list[Point], y: list[Point]) -> float:
    """``h`` with ``h² = median_{i<j} ‖z_i - z_j‖² / 2`` over the pooled points (the lower median)."""
    z = x + y
    pairs = sorted(_d2(z[i], z[j]) for i in range(len(z)) for j in range(i + 1, len(z)))
    return math.sqrt(pairs[(len(pairs) - 1) // 2] / 2)


def _gaussian(*hs: float) -> Callable[[float], float]:
    return lambda d2: sum(math.exp(-d2 / (2 * h * h)) for h in hs)


@pytest.fixture
def samples() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(7, 3, generator=g, dtype=torch.float64)
    y = 0.5 + 2.0 * torch.randn(5, 3, generator=g, dtype=torch.float64)
    return x, y


def test_median_bandwidth_is_the_median_over_the_pooled_pairs(samples: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, y = samples
    h = _brute_median_bandwidth(x.tolist(), y.tolist())
    assert median_bandwidth(x, y) == pytest.approx(h, rel=1e-12)
    assert median_bandwidth(y, x) == pytest.approx(h, rel=1e-12)  # pooled: the order of the sides is irrelevant


def test_mmd2_unbiased_matches_the_brute_force_sums(samples: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, y = samples
    xs, ys = x.tolist(), y.tolist()
    h = _brute_median_bandwidth(xs, ys)
    assert float(mmd2_unbiased(x, y)) == pytest.approx(_brute_mmd2(xs, ys, _gaussian(h)), rel=1e-10)
    assert float(mmd2_unbiased(x, y, bandwidth=0.7)) == pytest.approx(_brute_mmd2(xs, ys, _gaussian(0.7)), rel=1e-10)
    imq = _brute_mmd2(xs, ys, lambda d2: 6.0 / (6.0 + d2))  # C = 2 D
    assert float(mmd2_unbiased(x, y, "imq")) == pytest.approx(imq, rel=1e-10)


def test_mmd2_mixture_matches_the_brute_force_sums(samples: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, y = samples
    xs, ys = x.tolist(), y.tolist()
    h = _brute_median_bandwidth(xs, ys)
    bws = (0.5, 1.0, 2.0)
    expected = _brute_mmd2(xs, ys, _gaussian(*(b * h for b in bws)))
    assert float(mmd2_mixture(x, y, bws)) == pytest.approx(expected, rel=1e-10)
    absolute = _brute_mmd2(xs, ys, _gaussian(*bws))
    assert float(mmd2_mixture(x, y, bws, relative=False)) == pytest.approx(absolute, rel=1e-10)


def test_every_mmd_uses_the_same_median_heuristic(samples: tuple[torch.Tensor, torch.Tensor]) -> None:
    # the mixture's heuristic was once the median over y alone, the single kernel's one over all entries of
    # the three distance matrices (zeros of the diagonals included): now both are the pooled pairs' median
    x, y = samples
    torch.testing.assert_close(mmd2_mixture(x, y, (1.0,)), mmd2_unbiased(x, y))
    torch.testing.assert_close(mmd2_mixture(x, y), mmd2_mixture(y, x))
    torch.testing.assert_close(mmd2_unbiased(x, y), mmd2_unbiased(y, x))


def test_mmd_mixture_objective_is_the_estimator_on_its_draws() -> None:
    torch.manual_seed(0)
    x = torch.randn(6, 2)
    q = Normal(var=["x"], loc=1.0, scale=1.0, features_shape=[2])
    obj = MMDMixture(Empirical(var=["x"]), q, bandwidths=(1.0, 2.0))
    torch.manual_seed(1)
    value = obj({"x": x})
    torch.manual_seed(1)
    fake = q.sample({}, batch_n=6)["x"]
    torch.testing.assert_close(value, mmd2_mixture(fake, x, (1.0, 2.0)))
    assert str(obj) == "MMD^2_mix[p_{data}(x), p(x)]"


def test_mmd_estimators_name_bad_samples() -> None:
    with pytest.raises(ObjectiveError, match="at least 2 samples"):
        mmd2_unbiased(torch.zeros(1, 2), torch.zeros(3, 2))
    with pytest.raises(ObjectiveError, match=r"\(n, D\) and \(m, D\)"):
        mmd2_unbiased(torch.zeros(3, 2), torch.zeros(3, 4))
    with pytest.raises(ObjectiveError, match="kernel must be"):
        mmd2_unbiased(torch.zeros(3, 2), torch.zeros(3, 2), "laplace")  # type: ignore[arg-type]
    with pytest.raises(ObjectiveError, match="at least one bandwidth"):
        mmd2_mixture(torch.zeros(3, 2), torch.zeros(3, 2), ())
