"""2-D toy densities: shapes, seeding, rough moments, modes."""

from __future__ import annotations

import math

import pytest
import torch

from deepgm.data import toy_2d, toy_2d_dataset, toy_2d_mode_std, toy_2d_modes, toy_2d_names

NAMES = toy_2d_names()


def test_registry() -> None:
    assert set(NAMES) == {"moons", "8gaussians", "25gaussians", "checkerboard", "pinwheel", "rings", "2spirals"}


@pytest.mark.parametrize("name", NAMES)
def test_shape_and_seed(name: str) -> None:
    a = toy_2d(name, 1000, seed=3)
    assert a.shape == (1000, 2) and a.dtype == torch.float32
    assert torch.isfinite(a).all()
    assert torch.equal(a, toy_2d(name, 1000, seed=3))
    assert not torch.equal(a, toy_2d(name, 1000, seed=4))
    gen_a, gen_b = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    assert torch.equal(toy_2d(name, 10, gen_a), toy_2d(name, 10, gen_b))
    assert a.abs().max() < 6.0  # everything lives roughly in [-4, 4]^2


def test_unknown_name_lists_valid() -> None:
    with pytest.raises(ValueError, match="valid names: moons, 8gaussians"):
        toy_2d("swissroll", 10)


def test_aliases() -> None:
    assert torch.equal(toy_2d("two-moons", 5, seed=0), toy_2d("moons", 5, seed=0))
    assert torch.equal(toy_2d("grid25", 5, seed=0), toy_2d("25gaussians", 5, seed=0))


def test_8gaussians_moments() -> None:
    x = toy_2d("8gaussians", 20_000, seed=0)
    r = x.norm(dim=1)
    assert abs(float(r.mean()) - 2.0) < 0.02 and float(r.std()) < 0.15
    assert x.mean(0).abs().max() < 0.05
    modes = toy_2d_modes("8gaussians")
    assert modes.shape == (8, 2)
    torch.testing.assert_close(modes.norm(dim=1), torch.full((8,), 2.0))
    nearest = torch.cdist(x, modes).argmin(1)
    counts = torch.bincount(nearest, minlength=8).float() / len(x)
    assert (counts - 1 / 8).abs().max() < 0.02
    # distance to the nearest centre is Rayleigh(std): P(d < 4 std) = 1 - exp(-8)
    within = torch.cdist(x, modes).min(1).values < 4 * toy_2d_mode_std("8gaussians")
    assert float(within.float().mean()) == pytest.approx(1 - math.exp(-8), abs=0.002)


def test_25gaussians_modes() -> None:
    modes = toy_2d_modes("25gaussians")
    assert modes.shape == (25, 2)
    assert set(modes[:, 0].tolist()) == {-4.0, -2.0, 0.0, 2.0, 4.0}
    x = toy_2d("25gaussians", 25_000, seed=1)
    d = torch.cdist(x, modes)
    assert torch.bincount(d.argmin(1), minlength=25).min() > 800
    assert float(d.min(1).values.pow(2).mean()) == pytest.approx(2 * 0.1**2, rel=0.05)
    assert toy_2d_modes("25gaussians", spacing=1.0).abs().max() == 2.0


def test_modes_only_for_mixtures() -> None:
    with pytest.raises(ValueError, match="no discrete modes"):
        toy_2d_modes("moons")


def test_checkerboard_support() -> None:
    x = toy_2d("checkerboard", 10_000, seed=0)
    assert x.abs().max() <= 4.0
    cells = torch.floor(x / 2.0).long() + 2
    assert ((cells[:, 0] + cells[:, 1]) % 2 == 0).all()
    assert x.mean(0).abs().max() < 0.1


def test_rings_radii() -> None:
    r = toy_2d("rings", 10_000, seed=0).norm(dim=1)
    nearest = torch.round(r).clamp(1, 4)
    assert (r - nearest).abs().max() < 0.5
    frac = torch.bincount(nearest.long(), minlength=5)[1:].float() / len(r)
    torch.testing.assert_close(frac, torch.tensor([0.1, 0.2, 0.3, 0.4]), atol=0.02, rtol=0)


def test_spirals_and_moons_centred() -> None:
    for name in ("2spirals", "moons", "pinwheel"):
        assert toy_2d(name, 20_000, seed=0).mean(0).abs().max() < 0.15, name


def test_toy_dataset_splits() -> None:
    train = toy_2d_dataset("moons", 100, seed=0, split="train")
    test = toy_2d_dataset("moons", 100, seed=0, split="test")
    assert len(train) == 100 and train[0]["x"].shape == (2,)
    assert not torch.equal(train.tensors["x"], test.tensors["x"])
    assert torch.equal(train.tensors["x"], toy_2d_dataset("moons", 100, seed=0).tensors["x"])
