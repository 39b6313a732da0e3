"""Tests for deepgm.viz figures: each writes a non-empty PNG, checks input, leaks no figures."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch import nn

from deepgm.viz import (
    save_decoded_manifold,
    save_density_2d,
    save_density_panels_2d,
    save_latent_map_2d,
    save_latent_traversal,
    save_loss_curve,
    save_samples_2d,
)


@pytest.fixture(autouse=True)
def _no_leaked_figures() -> Iterator[None]:
    plt.close("all")
    yield
    assert plt.get_fignums() == []


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(1234)


def _png_ok(path: Path) -> np.ndarray:
    assert isinstance(path, Path)
    assert path.suffix == ".png" and path.stat().st_size > 0
    image = mpimg.imread(path)
    assert image.ndim == 3 and image.shape[0] > 10 and image.shape[1] > 10
    return image


def _std_normal_log_prob(x: torch.Tensor) -> torch.Tensor:
    return -0.5 * (x**2).sum(dim=1) - math.log(2 * math.pi)


class _Decoder(nn.Module):
    def __init__(self, latent_dim: int = 2, pixels: int = 16) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(latent_dim, pixels), nn.Sigmoid())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


# ---------------------------------------------------------------- latent traversal / manifold


def test_latent_traversal_rows_follow_dims_and_values(tmp_path: Path) -> None:
    calls: list[torch.Tensor] = []

    def decode(z: torch.Tensor) -> torch.Tensor:
        calls.append(z.clone())
        assert not torch.is_grad_enabled()
        # Image brightness encodes the traversed value, so each row is a ramp.
        return ((z.sum(dim=1, keepdim=True) + 3.0) / 6.0).expand(-1, 16)

    values = torch.linspace(-3, 3, 5)
    path = save_latent_traversal(
        decode, torch.zeros(4), tmp_path / "t" / "trav.png", dims=[1, 3], values=values, image_shape=(4, 4)
    )
    (z,) = calls
    assert z.shape == (2 * 5, 4)
    assert torch.equal(z[:5, 1], values) and torch.equal(z[5:, 3], values)
    assert torch.count_nonzero(z[:5, [0, 2, 3]]) == 0
    png = _png_ok(path)[..., 0]
    assert png.shape == (2 * 6 + 2, 5 * 6 + 2)
    row = [float(png[2:6, 2 + 6 * j : 6 + 6 * j].mean()) for j in range(5)]
    assert row == sorted(row) and row[0] < 0.01 and row[-1] > 0.99


def test_latent_traversal_defaults_use_all_dims_and_nine_values(tmp_path: Path) -> None:
    decoder = _Decoder(latent_dim=3, pixels=28 * 28)
    png = _png_ok(save_latent_traversal(decoder, torch.zeros(3), tmp_path / "trav.png"))
    assert png.shape[:2] == (3 * 30 + 2, 9 * 30 + 2)


@pytest.mark.parametrize(
    ("z0", "kwargs", "match"),
    [
        (torch.zeros(2, 3), {}, "z0"),
        (torch.zeros(3), {"dims": [3]}, "dims"),
        (torch.zeros(3), {"dims": []}, "dims"),
        (torch.zeros(3), {"values": torch.zeros(2, 2)}, "values"),
        (torch.zeros(3), {"image_shape": (5, 5)}, "image_shape"),
    ],
)
def test_latent_traversal_bad_input(tmp_path: Path, z0: torch.Tensor, kwargs: dict, match: str) -> None:
    decoder = _Decoder(latent_dim=3, pixels=16)
    with pytest.raises(ValueError, match=match):
        save_latent_traversal(decoder, z0, tmp_path / "trav.png", **{"image_shape": (4, 4), **kwargs})


def test_latent_traversal_decode_must_return_tensor(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="decode"):
        save_latent_traversal(lambda z: z.tolist(), torch.zeros(2), tmp_path / "t.png")


def test_decoded_manifold_grid_orientation(tmp_path: Path) -> None:
    seen: list[torch.Tensor] = []

    def decode(z: torch.Tensor) -> torch.Tensor:
        seen.append(z)
        return torch.sigmoid(z[:, :1]).expand(-1, 9)  # brightness grows with z1

    png = _png_ok(save_decoded_manifold(decode, tmp_path / "m.png", grid=4, lim=2.0, image_shape=(3, 3)))
    z = torch.cat(seen)
    assert z.shape == (16, 2)
    assert torch.allclose(z[0], torch.tensor([-2.0, 2.0]))  # top-left
    assert torch.allclose(z[-1], torch.tensor([2.0, -2.0]))  # bottom-right
    assert png.shape[:2] == (12, 12)  # padding 0 by default
    assert png[0, 0, 0] < png[0, -1, 0]


def test_decoded_manifold_chunks_and_module(tmp_path: Path) -> None:
    decoder = _Decoder(latent_dim=2, pixels=28 * 28)
    png = _png_ok(save_decoded_manifold(decoder, tmp_path / "m.png", grid=5, batch_size=7))
    assert png.shape[:2] == (5 * 28, 5 * 28)


@pytest.mark.parametrize(("kwargs", "match"), [({"grid": 0}, "grid"), ({"lim": -1.0}, "lim")])
def test_decoded_manifold_bad_input(tmp_path: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        save_decoded_manifold(_Decoder(), tmp_path / "m.png", image_shape=(4, 4), **kwargs)


# ---------------------------------------------------------------- latent map


@pytest.mark.parametrize(
    ("dim", "labels"),
    [
        (2, None),
        (2, "int"),
        (5, "int"),
        (2, "float"),
        (3, "many"),
    ],
)
def test_latent_map_writes_png(tmp_path: Path, gen: torch.Generator, dim: int, labels: str | None) -> None:
    n = 200
    z = torch.randn(n, dim, generator=gen)
    lab = {
        None: None,
        "int": torch.randint(0, 10, (n,), generator=gen),
        "float": torch.rand(n, generator=gen),
        "many": torch.randint(0, 50, (n,), generator=gen),
    }[labels]
    _png_ok(save_latent_map_2d(z, lab, tmp_path / "map.png"))


def test_latent_map_title_mentions_pca(tmp_path: Path, gen: torch.Generator, monkeypatch) -> None:
    titles: list[str] = []
    original = plt.Axes.set_title

    def spy(self, label, *args, **kwargs):
        titles.append(label)
        return original(self, label, *args, **kwargs)

    monkeypatch.setattr(plt.Axes, "set_title", spy)
    save_latent_map_2d(torch.randn(50, 6, generator=gen), None, tmp_path / "a.png")
    save_latent_map_2d(torch.randn(50, 2, generator=gen), None, tmp_path / "b.png")
    assert "PCA" in titles[0] and "6-D" in titles[0]
    assert "PCA" not in titles[1]


@pytest.mark.parametrize(
    ("z", "labels", "match"),
    [
        (torch.zeros(10), None, "z"),
        (torch.zeros(10, 1), None, "z"),
        (torch.zeros(2, 5, 2), None, "z"),
        (torch.zeros(10, 2), torch.zeros(9), "labels"),
        (torch.zeros(10, 2), torch.zeros(10, 2), "labels"),
    ],
)
def test_latent_map_bad_input(tmp_path: Path, z: torch.Tensor, labels: torch.Tensor | None, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        save_latent_map_2d(z, labels, tmp_path / "map.png")


# ---------------------------------------------------------------- density / samples


def test_density_2d_with_and_without_samples(tmp_path: Path, gen: torch.Generator) -> None:
    sizes: list[int] = []

    def log_prob(x: torch.Tensor) -> torch.Tensor:
        assert x.shape[1] == 2 and not torch.is_grad_enabled()
        sizes.append(x.shape[0])
        return _std_normal_log_prob(x)

    alone = _png_ok(save_density_2d(log_prob, tmp_path / "d1.png", resolution=30, chunk_size=100))
    assert sum(sizes) == 30 * 30 and max(sizes) == 100
    both = _png_ok(
        save_density_2d(_std_normal_log_prob, tmp_path / "d2.png", samples=torch.randn(300, 2, generator=gen), lim=3.0)
    )
    assert both.shape[1] > alone.shape[1]  # samples drawn in a second panel


def test_density_2d_tolerates_non_finite_log_prob(tmp_path: Path) -> None:
    def log_prob(x: torch.Tensor) -> torch.Tensor:
        out = _std_normal_log_prob(x)
        out[x[:, 0] > 0] = float("-inf")
        out[0] = float("nan")
        return out

    _png_ok(save_density_2d(log_prob, tmp_path / "d.png", resolution=20))


@pytest.mark.parametrize(
    ("log_prob", "kwargs", "match"),
    [
        (_std_normal_log_prob, {"samples": torch.zeros(5, 3)}, "samples"),
        (_std_normal_log_prob, {"lim": 0.0}, "lim"),
        (_std_normal_log_prob, {"resolution": 1}, "resolution"),
        (lambda x: x, {}, "log_prob"),
        (lambda x: x.sum(), {}, "log_prob"),
        ("not callable", {}, "log_prob"),
    ],
)
def test_density_2d_bad_input(tmp_path: Path, log_prob, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        save_density_2d(log_prob, tmp_path / "d.png", **{"resolution": 10, **kwargs})


def test_samples_2d(tmp_path: Path, gen: torch.Generator) -> None:
    _png_ok(save_samples_2d(torch.randn(100, 2, generator=gen), tmp_path / "s.png"))
    _png_ok(save_samples_2d(torch.randn(100, 2, generator=gen).numpy(), str(tmp_path / "s2.png"), lim=None))


@pytest.mark.parametrize(
    ("samples", "kwargs", "match"),
    [
        (torch.zeros(5, 3), {}, "samples"),
        (torch.zeros(5), {}, "samples"),
        (torch.zeros(0, 2), {}, "samples"),
        (torch.zeros(5, 2), {"lim": -2.0}, "lim"),
    ],
)
def test_samples_2d_bad_input(tmp_path: Path, samples: torch.Tensor, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        save_samples_2d(samples, tmp_path / "s.png", **kwargs)


# ---------------------------------------------------------------- loss curves


def test_loss_curve_dict_list_and_options(tmp_path: Path, gen: torch.Generator) -> None:
    train = (torch.rand(200, generator=gen) + torch.linspace(2, 0.1, 200)).tolist()
    history = {"train": train, "val": [2.0, 1.0, 0.5, float("nan"), 0.4]}
    _png_ok(save_loss_curve(history, tmp_path / "l1.png"))
    _png_ok(save_loss_curve(history, tmp_path / "l2.png", log_y=True, smooth=20, xlabel="epoch"))
    _png_ok(save_loss_curve([3.0, 2.0, 1.5], tmp_path / "l3.png"))
    _png_ok(save_loss_curve(torch.tensor([-3.0, -4.0]), tmp_path / "l4.png", smooth=5))
    weight = torch.ones(1, requires_grad=True)
    _png_ok(save_loss_curve({"train": [(weight * k).sum() for k in (3, 2, 1)]}, tmp_path / "l5.png"))


@pytest.mark.parametrize(
    ("history", "kwargs", "match"),
    [
        ({}, {}, "history"),
        ({"train": []}, {}, "train"),
        ({"train": [[1.0, 2.0]]}, {}, "train"),
        ([], {}, "history"),
        ("loss", {}, "history"),
        ([1.0, -1.0], {"log_y": True}, "log_y"),
        ([1.0, 2.0], {"smooth": 0}, "smooth"),
    ],
)
def test_loss_curve_bad_input(tmp_path: Path, history, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        save_loss_curve(history, tmp_path / "l.png", **kwargs)
    assert not (tmp_path / "l.png").exists()


def test_density_panels_tabulate_log_probs_and_point_histograms(tmp_path: Path, gen: torch.Generator) -> None:
    rows = {toy: {"data": torch.randn(500, 2, generator=gen), "model": _std_normal_log_prob} for toy in ("a", "b")}
    one = _png_ok(save_density_panels_2d({"a": rows["a"]}, tmp_path / "one.png", resolution=20))
    two = _png_ok(save_density_panels_2d(rows, tmp_path / "two.png", resolution=20))
    assert two.shape[0] > one.shape[0]  # a row per entry
    with pytest.raises(ValueError, match="columns"):
        save_density_panels_2d({"a": rows["a"], "b": {"model": _std_normal_log_prob}}, tmp_path / "bad.png")
    with pytest.raises(ValueError, match="log_prob or an"):
        save_density_panels_2d({"a": {"x": 3.0}}, tmp_path / "bad.png")  # type: ignore[dict-item]


def _line_x(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[float]]:
    import deepgm.viz.plots as plots

    seen: dict[str, list[float]] = {}
    write = plots._write

    def recording(fig, path: Path) -> Path:  # type: ignore[no-untyped-def]
        seen.update({ln.get_label(): list(ln.get_xdata()) for ln in fig.axes[0].lines})
        return write(fig, path)

    monkeypatch.setattr(plots, "_write", recording)
    return seen


def test_loss_curves_share_the_step_axis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from deepgm.viz import save_training_curves

    seen = _line_x(monkeypatch)
    history = {"step": [20, 40, 50, 70, 90, 100], "loss": [5.0, 4.0, 3.5, 3.0, 2.8, 2.7], "val_step": [50, 100],
               "val_loss": [3.6, 2.9]}
    _png_ok(save_training_curves(history, tmp_path / "c.png"))
    assert seen == {"train": [20, 40, 50, 70, 90, 100], "validation (per epoch)": [50, 100]}
    seen.clear()
    _png_ok(save_training_curves({**history, "val_step": [], "val_loss": []}, tmp_path / "d.png"))
    assert list(seen) == ["train"]  # no validation yet: one curve
    with pytest.raises(ValueError, match="val_step"):
        save_training_curves({"step": [1], "loss": [1.0], "val_loss": [1.0]}, tmp_path / "e.png")
    with pytest.raises(ValueError, match="x\\['a'\\] has 1 values"):
        save_loss_curve({"a": [1.0, 2.0]}, tmp_path / "f.png", x={"a": [3]})
