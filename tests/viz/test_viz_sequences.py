"""Piano-roll and frame-strip pictures: PNG files of the expected layout, and bad shapes refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import pytest
import torch

from deepgm.viz import save_frame_strips, save_piano_rolls

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _no_leaked_figures() -> Iterator[None]:
    plt.close("all")
    yield
    assert plt.get_fignums() == []


def test_piano_rolls_are_written_as_png_with_one_row_per_shown_sequence(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(5, 40, 88, generator=g)
    mask = torch.ones(5, 40)
    mask[1, 25:] = 0
    two = save_piano_rolls(x, tmp_path / "sub" / "two.png", mask=mask, max_rolls=2)
    also_two = save_piano_rolls(x[:2], tmp_path / "also_two.png")
    three = save_piano_rolls(x[:3], tmp_path / "three.png")
    assert two == tmp_path / "sub" / "two.png" and two.read_bytes()[:8] == PNG_MAGIC
    heights = [mpimg.imread(p).shape[0] for p in (two, also_two, three)]
    assert heights[0] == heights[1] < heights[2]


def test_piano_rolls_refuse_bad_shapes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"x must have shape \(N, T, keys\), e.g. \(N, T, 88\)"):
        save_piano_rolls(torch.zeros(2, 0, 88), tmp_path / "a.png")
    with pytest.raises(ValueError, match=r"x must have shape \(N, T, keys\)"):
        save_piano_rolls(torch.zeros(10, 88), tmp_path / "a.png")
    with pytest.raises(ValueError, match=r"mask must have shape \(N, T\) = \(2, 10\)"):
        save_piano_rolls(torch.zeros(2, 10, 88), tmp_path / "a.png", mask=torch.ones(2, 9))
    assert not (tmp_path / "a.png").exists()


def test_frame_strips_tile_one_row_per_sequence(tmp_path: Path) -> None:
    x = torch.rand(5, 6, 1, 12, 10, generator=torch.Generator().manual_seed(1))
    path = save_frame_strips(x, tmp_path / "strips.png", max_sequences=3)
    assert path.read_bytes()[:8] == PNG_MAGIC
    image = mpimg.imread(path)
    assert image.shape[:2] == (3 * (12 + 2) + 2, 6 * (10 + 2) + 2)  # 3 strips of 6 frames, 2-pixel gaps


def test_frame_strips_refuse_bad_shapes(tmp_path: Path) -> None:
    for bad in (torch.zeros(2, 3, 16, 16), torch.zeros(2, 3, 2, 8, 8), torch.zeros(0, 3, 1, 8, 8)):
        with pytest.raises(ValueError, match=r"x must have shape \(N, T, C, H, W\) with C = 1 or 3"):
            save_frame_strips(bad, tmp_path / "b.png")
