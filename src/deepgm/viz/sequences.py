"""Pictures of sequences: piano rolls (one row per sequence, time left to right, keys bottom to top)
and strips of video frames (one strip per sequence).

>>> import tempfile, torch
>>> folder = tempfile.mkdtemp()
>>> save_piano_rolls(torch.rand(2, 30, 88).round(), f"{folder}/rolls.png").name
'rolls.png'
>>> save_frame_strips(torch.rand(3, 5, 1, 16, 16), f"{folder}/strips.png").stat().st_size > 0
True
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import torch

from deepgm.viz._common import PathLike, as_float_tensor, check_positive_int, prepare_path
from deepgm.viz.grid import save_image_grid

__all__ = ["save_frame_strips", "save_piano_rolls"]

N_KEYS = 88


def save_piano_rolls(x: Any, path: PathLike, mask: Any = None, max_rolls: int = 8) -> Path:
    """Write the first ``max_rolls`` piano rolls of ``x`` (``(N, T, 88)``, values in [0, 1]: note
    probabilities or 0/1 notes; any other number of values per step is drawn the same way) as a PNG,
    one row per sequence: time steps on the horizontal axis, the keys on the vertical one (lowest at
    the bottom), darker = more likely on. With ``mask`` (``(N, T)``,
    1 on real steps) the padding after each sequence's end is shaded grey. Values are clamped to [0, 1].
    Raises ``ValueError`` naming the expected shape for any other. Returns the path."""
    rolls = as_float_tensor(x, "x")
    if rolls.dim() != 3 or min(rolls.shape) == 0:
        raise ValueError(f"x must have shape (N, T, keys), e.g. (N, T, {N_KEYS}) piano rolls, with N, T, keys >= 1, "
                         f"got {tuple(rolls.shape)}")
    max_rolls = check_positive_int(max_rolls, "max_rolls")
    valid = None
    if mask is not None:
        m = as_float_tensor(mask, "mask")
        if tuple(m.shape) != tuple(rolls.shape[:2]):
            raise ValueError(f"mask must have shape (N, T) = {tuple(rolls.shape[:2])} like x, got {tuple(m.shape)}")
        valid = (m[:max_rolls] > 0.5).numpy()
    rolls = torch.nan_to_num(rolls[:max_rolls], nan=0.0).clamp(0.0, 1.0)
    n, t = rolls.shape[0], rolls.shape[1]
    out = prepare_path(path)
    cmap = plt.get_cmap("Greys").with_extremes(bad="#c8c8c8")
    fig, axes = plt.subplots(n, 1, figsize=(min(16.0, 4.0 + t / 40.0), 1.6 * n + 0.4), squeeze=False,
                             layout="constrained")
    try:
        for i, ax in enumerate(axes[:, 0]):
            image = rolls[i].numpy().T  # (88, T): key k in row k, shown bottom-up with origin="lower"
            if valid is not None:
                image = np.ma.masked_where(np.broadcast_to(~valid[i], image.shape), image)
            ax.imshow(image, cmap=cmap, vmin=0.0, vmax=1.0, origin="lower", aspect="auto", interpolation="nearest")
            ax.set_ylabel(f"{i}\nkey")
            ax.set_yticks([0, rolls.shape[2] - 1])
            if i < n - 1:
                ax.set_xticklabels([])
        axes[-1, 0].set_xlabel("time step")
        fig.savefig(out, format="png", dpi=100)
    finally:
        plt.close(fig)
    return out


def save_frame_strips(x: Any, path: PathLike, max_sequences: int = 8) -> Path:
    """Write the first ``max_sequences`` videos of ``x`` (``(N, T, C, H, W)``, C = 1 grey or 3 RGB,
    values clamped to [0, 1]) as a PNG grid: one row per sequence, its T frames left to right, 2 grey (0.5)
    pixels between frames. Raises ``ValueError`` naming the expected shape for any other. Returns the path."""
    frames = as_float_tensor(x, "x")
    if frames.dim() != 5 or frames.shape[2] not in (1, 3) or 0 in frames.shape:
        raise ValueError(f"x must have shape (N, T, C, H, W) with C = 1 or 3 and no empty dimension (videos), "
                         f"got {tuple(frames.shape)}")
    max_sequences = check_positive_int(max_sequences, "max_sequences")
    frames = frames[:max_sequences]
    t = frames.shape[1]
    return save_image_grid(frames.reshape(-1, *frames.shape[2:]), path, nrow=t, pad_value=0.5)
