"""The procedurally rendered dSprites-like dataset."""

from __future__ import annotations

import math

import pytest
import torch

from deepgm.data import FACTOR_NAMES, SHAPES, DSprites, dsprites_split, render_sprites


def test_grid_and_index_roundtrip() -> None:
    ds = DSprites(size=32, n_scale=3, n_rotation=4, n_pos=5)
    assert ds.factor_sizes == (3, 3, 4, 5, 5) and len(ds) == 3 * 3 * 4 * 5 * 5
    assert len(FACTOR_NAMES) == 5 and len(SHAPES) == 3
    all_factors = ds.index_to_factors(torch.arange(len(ds)))
    assert torch.equal(ds.factors_to_index(all_factors), torch.arange(len(ds)))
    # the full grid is a product: every combination exactly once, so factors are independent
    assert len(torch.unique(all_factors, dim=0)) == len(ds)
    for i, k in enumerate(ds.factor_sizes):
        assert torch.bincount(all_factors[:, i]).tolist() == [len(ds) // k] * k


def test_item() -> None:
    ds = DSprites(size=64)
    assert ds.factor_sizes == (3, 6, 40, 32, 32)
    item = ds[12345]
    assert item["x"].shape == (1, 64, 64)
    assert set(torch.unique(item["x"]).tolist()) == {0.0, 1.0}
    assert item["factors"].dtype == torch.int64 and item["factors"].shape == (5,)
    assert torch.equal(ds.factors_to_index(item["factors"]), torch.tensor(12345))
    torch.testing.assert_close(item["factor_values"], ds.values(item["factors"]))
    assert DSprites(size=32, flatten=True)[0]["x"].shape == (1024,)
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_sample_seeded_and_independent() -> None:
    ds = DSprites(size=32)
    a = ds.sample(4000, seed=0)
    assert a["x"].shape == (4000, 1, 32, 32)
    assert torch.equal(a["factors"], ds.sample(4000, seed=0)["factors"])
    assert not torch.equal(a["factors"], ds.sample(4000, seed=1)["factors"])
    corr = torch.corrcoef(a["factors"].T.float())
    assert (corr - torch.eye(5)).abs().max() < 0.06


def _centroid(img: torch.Tensor) -> tuple[float, float]:
    rows, cols = torch.nonzero(img[0], as_tuple=True)
    return float(cols.float().mean()), float(rows.float().mean())


def test_rendering_follows_factors() -> None:
    ds = DSprites(size=64)
    base = torch.tensor([0, 5, 0, 16, 16])

    def render(**changes: int) -> torch.Tensor:
        f = base.clone()
        for name, v in changes.items():
            f[FACTOR_NAMES.index(name)] = v
        return ds.render(f[None])[0]

    # position: x moves right, y moves down, sprites stay inside the image
    (x0, _), (x1, _) = _centroid(render(pos_x=0)), _centroid(render(pos_x=31))
    (_, y0), (_, y1) = _centroid(render(pos_y=0)), _centroid(render(pos_y=31))
    assert x1 - x0 > 25 and y1 - y0 > 25
    for kw in ({"pos_x": 0, "pos_y": 0, "rotation": 5}, {"pos_x": 31, "pos_y": 31, "rotation": 5}):
        img = render(**kw)
        assert img[0, 0].sum() == 0 and img[0, -1].sum() == 0 and img[0, :, 0].sum() == 0
    # scale: area grows as scale²; square of scale 1 is 2·0.15·64 = 19.2 px wide
    big, small = render(scale=5).sum(), render(scale=0).sum()
    assert float(big / small) == pytest.approx(4.0, rel=0.15)
    assert float(big) == pytest.approx(19.2**2, rel=0.1)
    # rotation keeps the area (roughly) and actually changes the image
    assert float(render(rotation=5).sum() / big) == pytest.approx(1.0, rel=0.1)
    assert not torch.equal(render(rotation=5), big)
    # shapes differ; ellipse area = π·a·b with half-axes 9.6 and 4.8 px
    areas = [float(render(shape=s).sum()) for s in range(3)]
    assert areas[1] == pytest.approx(math.pi * 9.6 * 4.8, rel=0.1)
    assert len(set(areas)) == 3


def test_render_sprites_direct() -> None:
    img = render_sprites(torch.tensor([2]), torch.tensor([1.0]), torch.tensor([0.0]), torch.tensor([0.5]),
                         torch.tensor([0.5]), size=32)  # fmt: skip
    assert img.shape == (1, 1, 32, 32) and img.sum() > 0


def test_split_partition() -> None:
    parts = {s: dsprites_split(s, size=32, n_scale=2, n_rotation=4, n_pos=4) for s in ("train", "valid", "test")}
    n = parts["train"].n_combinations
    assert sum(len(p) for p in parts.values()) == n
    assert len(torch.unique(torch.cat([p.indices for p in parts.values()]))) == n
    item = parts["test"][0]
    assert torch.equal(parts["test"].factors_to_index(item["factors"]), parts["test"].indices[0])
