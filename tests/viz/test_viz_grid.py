"""Tests for deepgm.viz image grids: layout, padding, PNG output and bad input."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from deepgm.viz import make_grid, save_image_grid, save_reconstructions


@pytest.fixture(autouse=True)
def _no_leaked_figures() -> Iterator[None]:
    plt.close("all")
    yield
    assert plt.get_fignums() == []


def _constant_images(n: int, c: int = 1, h: int = 3, w: int = 4) -> torch.Tensor:
    """Image i is filled with (i + 1) / (n + 1), so every image is identifiable."""
    values = torch.arange(1, n + 1, dtype=torch.float32) / (n + 1)
    return values.view(n, 1, 1, 1).expand(n, c, h, w).clone()


def test_make_grid_shape_and_placement() -> None:
    n, h, w, pad = 5, 3, 4, 2
    images = _constant_images(n, h=h, w=w)
    grid = make_grid(images, nrow=3, padding=pad, pad_value=-1.0)
    # 3 columns, 2 rows.
    assert grid.shape == (1, 2 * (h + pad) + pad, 3 * (w + pad) + pad)
    for i in range(n):
        r, c = divmod(i, 3)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        assert torch.all(grid[:, y : y + h, x : x + w] == images[i])
    # Padding around and between cells, and the unused sixth cell, hold pad_value.
    assert torch.all(grid[:, :pad, :] == -1.0)
    assert torch.all(grid[:, :, :pad] == -1.0)
    assert torch.all(grid[:, -pad:, :] == -1.0)
    assert torch.all(grid[:, :, -pad:] == -1.0)
    assert torch.all(grid[:, :, pad + w : 2 * pad + w] == -1.0)
    y, x = pad + (h + pad), pad + 2 * (w + pad)
    assert torch.all(grid[:, y : y + h, x : x + w] == -1.0)
    # Exactly n * h * w pixels are not padding.
    assert int((grid != -1.0).sum()) == n * h * w


def test_make_grid_fewer_images_than_nrow_and_zero_padding() -> None:
    images = _constant_images(3, c=3, h=2, w=2)
    grid = make_grid(images, nrow=8, padding=0)
    assert grid.shape == (3, 2, 6)
    assert torch.equal(grid[:, :, 2:4], images[1])


@pytest.mark.parametrize(
    ("images", "kwargs", "shape"),
    [
        (torch.rand(4, 5, 6), {}, (1, 5 + 4, 4 * 8 + 2)),
        (torch.rand(4, 30), {"image_shape": (5, 6)}, (1, 5 + 4, 4 * 8 + 2)),
        (torch.rand(4, 90), {"image_shape": (3, 5, 6), "nrow": 2}, (3, 2 * 7 + 2, 2 * 8 + 2)),
        (torch.rand(4, 1, 5, 6), {"nrow": 1}, (1, 4 * 7 + 2, 6 + 4)),
    ],
)
def test_make_grid_accepts_3d_4d_and_flat(images: torch.Tensor, kwargs: dict, shape: tuple) -> None:
    assert make_grid(images, **kwargs).shape == shape


def test_make_grid_flat_matches_reshaped() -> None:
    images = torch.rand(6, 1, 4, 4)
    assert torch.equal(make_grid(images.flatten(1), image_shape=(1, 4, 4)), make_grid(images))


def test_make_grid_uint8_is_rescaled() -> None:
    grid = make_grid(torch.full((1, 1, 2, 2), 255, dtype=torch.uint8), padding=0)
    assert torch.allclose(grid, torch.ones(1, 2, 2))


@pytest.mark.parametrize(
    ("images", "kwargs", "match"),
    [
        (torch.rand(4, 30), {}, "image_shape"),
        (torch.rand(4, 31), {"image_shape": (5, 6)}, "image_shape"),
        (torch.rand(2, 1, 1, 3, 3), {}, "images"),
        (torch.rand(5), {}, "images"),
        (torch.rand(0, 1, 3, 3), {}, "images"),
        (torch.rand(2, 3, 3), {"nrow": 0}, "nrow"),
        (torch.rand(2, 3, 3), {"padding": -1}, "padding"),
        (torch.rand(2, 30), {"image_shape": (5, 6, 1, 1)}, "image_shape"),
    ],
)
def test_make_grid_bad_input(images: torch.Tensor, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_grid(images, **kwargs)


def test_save_image_grid_grayscale_png(tmp_path: Path) -> None:
    images = _constant_images(5, h=3, w=4)
    images[0] = 2.0  # clamped to white
    images[1] = -1.0  # clamped to black
    path = save_image_grid(images, tmp_path / "nested" / "dir" / "grid.png", nrow=3, padding=2)
    assert path == tmp_path / "nested" / "dir" / "grid.png"
    assert path.stat().st_size > 0
    png = mpimg.imread(path)
    assert png.shape[:2] == (2 * 5 + 2, 3 * 6 + 2)
    rgb = png[..., :3]
    # Grayscale stays grayscale: all channels equal.
    assert np.allclose(rgb[..., 0], rgb[..., 1]) and np.allclose(rgb[..., 1], rgb[..., 2])
    assert np.allclose(rgb[2:5, 2:6], 1.0)
    assert np.allclose(rgb[2:5, 8:12], 0.0)
    expected = float(images[2, 0, 0, 0])
    assert np.allclose(rgb[2:5, 14:18], expected, atol=1 / 255 + 1e-6)
    assert np.allclose(rgb[:2], 0.0)  # pad_value 0 is black


def test_save_image_grid_rgb_png(tmp_path: Path) -> None:
    images = torch.zeros(2, 3, 4, 4)
    images[0, 0] = 1.0  # red
    images[1, 2] = 1.0  # blue
    png = mpimg.imread(save_image_grid(images, tmp_path / "rgb.png", padding=1, pad_value=1.0))
    assert png.shape[:2] == (6, 11)
    assert np.allclose(png[1:5, 1:5, :3], [1.0, 0.0, 0.0])
    assert np.allclose(png[1:5, 6:10, :3], [0.0, 0.0, 1.0])
    assert np.allclose(png[0, :, :3], 1.0)


def test_save_image_grid_rejects_odd_channel_count(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="channels"):
        save_image_grid(torch.rand(2, 2, 4, 4), tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


def test_save_reconstructions_layout(tmp_path: Path) -> None:
    inputs = torch.zeros(10, 1, 4, 4)
    recons = torch.ones(10, 16)  # flat reconstructions are reshaped like the inputs
    path = save_reconstructions(inputs, recons, tmp_path / "rec.png", n=8)
    png = mpimg.imread(path)[..., 0]
    assert png.shape == (2 * 6 + 2, 8 * 6 + 2)
    assert np.allclose(png[2:6, 2:6], 0.0)  # first row: inputs
    assert np.allclose(png[8:12, 2:6], 1.0)  # second row: reconstructions


def test_save_reconstructions_wraps_into_row_pairs(tmp_path: Path) -> None:
    inputs = torch.zeros(5, 1, 4, 4)
    recons = torch.ones(5, 1, 4, 4)
    png = mpimg.imread(save_reconstructions(inputs, recons, tmp_path / "rec.png", n=5, nrow=3))[..., 0]
    assert png.shape == (4 * 6 + 2, 3 * 6 + 2)
    rows = [png[2 + 6 * r : 6 + 6 * r, 2:6] for r in range(4)]
    assert [float(r.mean()) for r in rows] == [0.0, 1.0, 0.0, 1.0]


@pytest.mark.parametrize(
    ("recons", "match"),
    [(torch.rand(5, 1, 4, 4), "same length"), (torch.rand(6, 1, 5, 5), "do not match")],
)
def test_save_reconstructions_bad_input(tmp_path: Path, recons: torch.Tensor, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        save_reconstructions(torch.rand(6, 1, 4, 4), recons, tmp_path / "rec.png")


def test_upscale_repeats_pixels_of_small_images_only() -> None:
    from deepgm.viz import upscale

    x = torch.arange(2 * 64, dtype=torch.float32).reshape(2, 64)
    big = upscale(x, (1, 8, 8))
    assert big.shape == (2, 1, 24, 24)  # 28 // 8 = 3 times each pixel
    assert torch.equal(big[:, :, ::3, ::3], x.reshape(2, 1, 8, 8))
    assert torch.equal(big[:, :, 1::3, 2::3], big[:, :, ::3, ::3])
    assert upscale(torch.rand(3, 784), (1, 28, 28)).shape == (3, 1, 28, 28)
    with pytest.raises(ValueError, match="image_shape"):
        upscale(torch.rand(3, 10), (1, 8, 8))


def test_save_samples_draws_images_as_a_grid_and_points_as_a_scatter(tmp_path: Path) -> None:
    from deepgm.viz import save_samples

    grid = mpimg.imread(save_samples(torch.rand(16, 64), tmp_path / "g.png", image_shape=(1, 8, 8), nrow=4))
    assert grid.shape[:2] == (4 * 24 + 5 * 2, 4 * 24 + 5 * 2)  # 4×4 upscaled images, 2-pixel padding
    assert save_samples(torch.randn(100, 2), tmp_path / "p.png").stat().st_size > 0
    with pytest.raises(ValueError, match=r"neither images .* nor 2-D points"):
        save_samples(torch.randn(10, 3), tmp_path / "bad.png")
