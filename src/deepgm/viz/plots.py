"""Matplotlib figures: latent maps, 2-D densities, sample scatters and loss curves."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor

from deepgm.viz._common import (
    PathLike,
    as_float_tensor,
    as_points_2d,
    check_positive_float,
    check_positive_int,
    prepare_path,
)
from deepgm.viz.images import infer_device

LogProb = Callable[[Tensor], Tensor]
History = Mapping[str, Sequence[float] | Tensor] | Sequence[float] | Tensor


@contextmanager
def _figure(ncols: int = 1, size: float = 5.0) -> Iterator[tuple[Figure, list[Axes]]]:
    """Open a 1 x ``ncols`` figure and always close it afterwards."""
    fig, axes = plt.subplots(1, ncols, figsize=(size * ncols + 1.0, size), squeeze=False, layout="constrained")
    try:
        yield fig, list(axes[0])
    finally:
        plt.close(fig)


def _write(fig: Figure, path: Path) -> Path:
    fig.savefig(path, format="png", dpi=100, bbox_inches="tight")
    return path


def _check_lim(lim: float | None, name: str = "lim") -> float | None:
    return None if lim is None else check_positive_float(lim, name)


def _pca_2d(z: Tensor) -> tuple[Tensor, float]:
    """Project (N, D) points onto their top two principal components (via SVD)."""
    centred = z.double() - z.double().mean(dim=0, keepdim=True)
    _, s, vh = torch.linalg.svd(centred, full_matrices=False)
    total = float((s**2).sum())
    explained = float((s[:2] ** 2).sum()) / total if total > 0 else 1.0
    return (centred @ vh[:2].T).float(), explained


def save_latent_map_2d(
    z: Tensor,
    labels: Tensor | None,
    path: PathLike,
    title: str | None = None,
    point_size: float = 6.0,
    alpha: float = 0.8,
    max_classes: int = 20,
) -> Path:
    """Scatter (N, D) latents coloured by ``labels``; D > 2 is projected onto 2 PCA axes.

    Integer labels with at most ``max_classes`` distinct values get a legend, other
    labels a colorbar. The title says when a PCA projection was used. Returns the path.
    """
    zt = as_float_tensor(z, "z")
    if zt.dim() != 2:
        raise ValueError(f"z must be 2-D with shape (N, D), got shape {tuple(zt.shape)}")
    if zt.shape[0] == 0 or zt.shape[1] < 2:
        raise ValueError(f"z must hold at least one point with D >= 2, got shape {tuple(zt.shape)}")
    max_classes = check_positive_int(max_classes, "max_classes")
    lab: Tensor | None = None
    if labels is not None:
        lab = labels.detach().cpu() if isinstance(labels, Tensor) else torch.as_tensor(labels)
        if lab.dim() != 1 or lab.shape[0] != zt.shape[0]:
            raise ValueError(f"labels must have shape ({zt.shape[0]},) to match z, got {tuple(lab.shape)}")
    out = prepare_path(path)
    latent_dim = zt.shape[1]
    if latent_dim > 2:
        pts, explained = _pca_2d(zt)
        xlabel, ylabel = "PC 1", "PC 2"
        auto_title = f"PCA projection of {latent_dim}-D latents ({explained:.0%} of variance)"
    else:
        pts = zt
        xlabel, ylabel = "$z_1$", "$z_2$"
        auto_title = "2-D latents"
    xy = pts.numpy()
    with _figure() as (fig, (ax,)):
        if lab is None:
            ax.scatter(xy[:, 0], xy[:, 1], s=point_size, alpha=alpha, linewidths=0)
        else:
            discrete = not lab.is_floating_point() or bool(torch.all(lab == lab.round()))
            classes = torch.unique(lab) if discrete else None
            if classes is not None and classes.numel() <= max_classes:
                cmap = plt.get_cmap("tab10" if classes.numel() <= 10 else "tab20")
                for i, k in enumerate(classes.tolist()):
                    mask = (lab == k).numpy()
                    name = str(int(k)) if isinstance(k, float) else str(k)
                    ax.scatter(
                        xy[mask, 0],
                        xy[mask, 1],
                        s=point_size,
                        alpha=alpha,
                        linewidths=0,
                        color=cmap(i % cmap.N),
                        label=name,
                    )
                ax.legend(title="label", loc="center left", bbox_to_anchor=(1.02, 0.5), markerscale=3.0)
            else:
                sc = ax.scatter(
                    xy[:, 0],
                    xy[:, 1],
                    c=lab.float().numpy(),
                    s=point_size,
                    alpha=alpha,
                    linewidths=0,
                    cmap="viridis",
                )
                fig.colorbar(sc, ax=ax, label="label")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if title is None:
            ax.set_title(auto_title)
        else:
            ax.set_title(f"{title}\n{auto_title}" if latent_dim > 2 else title)
        return _write(fig, out)


def _density_grid(log_prob: LogProb, lim: float, resolution: int, chunk_size: int, device: torch.device) -> np.ndarray:
    """Evaluate exp(log_prob) on a resolution x resolution grid; row 0 is y = -lim."""
    axis = torch.linspace(-lim, lim, resolution)
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    points = torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)
    values = []
    with torch.no_grad():
        for start in range(0, points.shape[0], chunk_size):
            chunk = points[start : start + chunk_size].to(device)
            lp = log_prob(chunk)
            if not isinstance(lp, Tensor):
                raise ValueError(f"log_prob must return a Tensor, got {type(lp).__name__}")  # noqa: TRY004
            if lp.dim() == 0 or lp.shape[0] != chunk.shape[0] or lp.numel() != chunk.shape[0]:
                raise ValueError(
                    f"log_prob must return shape ({chunk.shape[0]},) for {chunk.shape[0]} points, got {tuple(lp.shape)}"
                )
            values.append(lp.detach().reshape(-1).double().cpu())
    logp = torch.cat(values)
    dens = torch.where(torch.isfinite(logp), torch.exp(logp), torch.zeros_like(logp))
    dens = torch.nan_to_num(dens, nan=0.0, posinf=0.0)
    return dens.reshape(resolution, resolution).numpy()


def save_density_2d(
    log_prob: LogProb,
    path: PathLike,
    samples: Tensor | None = None,
    lim: float = 4.0,
    resolution: int = 200,
    chunk_size: int = 8192,
    title: str | None = None,
    cmap: str = "viridis",
    device: torch.device | str | None = None,
) -> Path:
    """Heat map of exp(log_prob(x)) on a grid over [-lim, lim]^2, with samples beside it.

    ``log_prob`` maps (M, 2) points to (M,) log densities; it is evaluated in chunks of
    ``chunk_size`` under no_grad on ``device`` (default: that of ``log_prob``'s module,
    else CPU). Non-finite values are shown as zero density. When ``samples`` (N, 2) are
    given they are drawn in a second panel with the same limits. Returns the path.
    """
    if not callable(log_prob):
        raise ValueError(f"log_prob must be callable, got {type(log_prob).__name__}")  # noqa: TRY004
    lim_f = check_positive_float(lim, "lim")
    resolution = check_positive_int(resolution, "resolution", minimum=2)
    chunk_size = check_positive_int(chunk_size, "chunk_size")
    pts = None if samples is None else as_points_2d(samples, "samples").numpy()
    target = torch.device(device) if device is not None else infer_device(log_prob)
    density = _density_grid(log_prob, lim_f, resolution, chunk_size, target)
    out = prepare_path(path)
    with _figure(ncols=1 if pts is None else 2) as (fig, axes):
        ax = axes[0]
        im = ax.imshow(density, origin="lower", extent=(-lim_f, lim_f, -lim_f, lim_f), cmap=cmap, aspect="equal")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="density")
        ax.set_title("density" if title is None else title)
        if pts is not None:
            sax = axes[1]
            sax.scatter(pts[:, 0], pts[:, 1], s=3.0, alpha=0.5, linewidths=0)
            sax.set_xlim(-lim_f, lim_f)
            sax.set_ylim(-lim_f, lim_f)
            sax.set_aspect("equal")
            sax.set_title(f"samples (n={pts.shape[0]})")
        for a in axes:
            a.set_xlabel("$x_1$")
            a.set_ylabel("$x_2$")
        return _write(fig, out)


def save_density_panels_2d(
    rows: Mapping[str, Mapping[str, LogProb | Tensor]],
    path: PathLike,
    lim: float = 4.0,
    resolution: int = 150,
    chunk_size: int = 8192,
    cmap: str = "viridis",
    size: float = 2.2,
) -> Path:
    """A table of 2-D heat maps: ``rows[row][column]`` is either a ``log_prob`` (its density on
    [-lim, lim]^2) or an (N, 2) tensor of points (their histogram on the same grid, e.g. the data).
    Every row has the columns of the first row, in its order. Returns the path."""
    if not rows:
        raise ValueError("rows must name at least one row of panels")
    columns = list(next(iter(rows.values())))
    for name, panels in rows.items():
        if list(panels) != columns:
            raise ValueError(f"row {name!r} has columns {list(panels)}, expected {columns}")
    lim_f = check_positive_float(lim, "lim")
    resolution = check_positive_int(resolution, "resolution", minimum=2)
    out = prepare_path(path)
    fig, axes = plt.subplots(len(rows), len(columns), figsize=(size * len(columns), size * len(rows)),
                             squeeze=False, layout="constrained")
    try:
        for i, (row, panels) in enumerate(rows.items()):
            for j, (col, panel) in enumerate(panels.items()):
                ax = axes[i][j]
                if isinstance(panel, Tensor):
                    pts = as_points_2d(panel, f"rows[{row!r}][{col!r}]").numpy()
                    image, _, _ = np.histogram2d(pts[:, 1], pts[:, 0], bins=resolution,
                                                 range=[[-lim_f, lim_f], [-lim_f, lim_f]])
                elif callable(panel):
                    image = _density_grid(panel, lim_f, resolution, chunk_size, infer_device(panel))
                else:
                    raise ValueError(f"rows[{row!r}][{col!r}] must be a log_prob or an (N, 2) tensor, "
                                     f"got {type(panel).__name__}")
                ax.imshow(image, origin="lower", extent=(-lim_f, lim_f, -lim_f, lim_f), cmap=cmap, aspect="equal")
                ax.set_xticks([])
                ax.set_yticks([])
                if i == 0:
                    ax.set_title(col, fontsize=9)
                if j == 0:
                    ax.set_ylabel(row, fontsize=9)
        return _write(fig, out)
    finally:
        plt.close(fig)


def save_samples_2d(
    samples: Tensor,
    path: PathLike,
    lim: float | None = 4.0,
    title: str | None = None,
    point_size: float = 4.0,
    alpha: float = 0.5,
) -> Path:
    """Scatter (N, 2) samples on [-lim, lim]^2 (``lim=None`` autoscales). Returns the path."""
    pts = as_points_2d(samples, "samples").numpy()
    lim_f = _check_lim(lim)
    out = prepare_path(path)
    with _figure() as (fig, (ax,)):
        ax.scatter(pts[:, 0], pts[:, 1], s=point_size, alpha=alpha, linewidths=0)
        if lim_f is not None:
            ax.set_xlim(-lim_f, lim_f)
            ax.set_ylim(-lim_f, lim_f)
        ax.set_aspect("equal")
        ax.set_xlabel("$x_1$")
        ax.set_ylabel("$x_2$")
        ax.set_title(f"samples (n={pts.shape[0]})" if title is None else title)
        return _write(fig, out)


def _curves(history: History) -> dict[str, np.ndarray]:
    """Normalise ``history`` to {name: 1-D float array}, raising ValueError on bad input."""
    if isinstance(history, Mapping):
        items: list[tuple[str, Any]] = [(str(k), v) for k, v in history.items()]
    elif isinstance(history, (str, bytes)):
        msg = "history must be a dict of name -> values or a sequence of floats, got a string"
        raise ValueError(msg)  # noqa: TRY004
    else:
        items = [("loss", history)]
    if not items:
        raise ValueError("history must contain at least one curve")
    curves = {}
    for name, values in items:
        label = f"history[{name!r}]" if isinstance(history, Mapping) else "history"
        t = as_float_tensor(values, label)
        if t.dim() != 1 or t.shape[0] == 0:
            raise ValueError(f"{label} must be a non-empty 1-D sequence of floats, got shape {tuple(t.shape)}")
        curves[name] = t.double().numpy()
    return curves


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average over the last ``window`` finite values (shorter at the start)."""
    finite = np.isfinite(values)
    csum = np.concatenate([[0.0], np.cumsum(np.where(finite, values, 0.0))])
    ccount = np.concatenate([[0], np.cumsum(finite)])
    idx = np.arange(1, len(values) + 1)
    lo = np.maximum(idx - window, 0)
    total, count = csum[idx] - csum[lo], ccount[idx] - ccount[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def save_loss_curve(
    history: History,
    path: PathLike,
    xlabel: str = "step",
    ylabel: str = "loss",
    log_y: bool = False,
    smooth: int = 1,
    title: str | None = None,
    x: Mapping[str, Sequence[float]] | None = None,
) -> Path:
    """Plot one or more named curves (``{"train": [...], "val": [...]}`` or a plain list).

    Each curve is drawn against ``x[name]`` when given (e.g. the optimisation step of every value,
    so that curves logged at different rates share the axis), else against its own index.
    ``smooth > 1`` overlays a trailing moving average of that window on the faded raw curve.
    ``log_y`` needs positive values. Returns the path.
    """
    curves = _curves(history)
    smooth = check_positive_int(smooth, "smooth")
    xs: dict[str, np.ndarray] = {}
    for name, values in curves.items():
        if x is not None and name in x:
            xs[name] = as_float_tensor(x[name], f"x[{name!r}]").double().numpy().reshape(-1)
            if xs[name].shape != values.shape:
                raise ValueError(f"x[{name!r}] has {xs[name].size} values for a curve of {values.size}")
        else:
            xs[name] = np.arange(len(values))
    if log_y:
        for name, values in curves.items():
            finite = values[np.isfinite(values)]
            if finite.size and finite.min() <= 0:
                raise ValueError(f"log_y=True needs positive values, but curve {name!r} has min {finite.min():g}")
    out = prepare_path(path)
    with _figure(size=4.0) as (fig, (ax,)):
        for i, (name, values) in enumerate(curves.items()):
            color = f"C{i % 10}"
            steps = xs[name]
            if smooth > 1:
                ax.plot(steps, values, color=color, alpha=0.3, linewidth=1.0)
                ax.plot(steps, _smooth(values, smooth), color=color, linewidth=1.5, label=name)
            else:
                ax.plot(steps, values, color=color, linewidth=1.5, label=name)
        if log_y:
            ax.set_yscale("log")
        if len(curves) > 1 or isinstance(history, Mapping):
            ax.legend()
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        if title is not None:
            ax.set_title(title)
        return _write(fig, out)


def save_training_curves(history: Mapping[str, Sequence[float]], path: PathLike, log_y: bool = False) -> Path:
    """The trainer's history on one step axis: ``loss`` at the logged steps ``step`` and, when there is
    one, ``val_loss`` (once per epoch) at its steps ``val_step``. Returns the path."""
    for key in ("step", "loss"):
        if key not in history:
            raise ValueError(f"history must hold 'step' and 'loss' (a Trainer's history), it lacks {key!r}")
    curves: dict[str, Sequence[float]] = {"train": history["loss"]}
    x: dict[str, Sequence[float]] = {"train": history["step"]}
    if history.get("val_loss"):
        if "val_step" not in history:
            raise ValueError("history has 'val_loss' but no 'val_step' (the step of every validation)")
        curves["validation (per epoch)"], x["validation (per epoch)"] = history["val_loss"], history["val_step"]
    return save_loss_curve(curves, path, xlabel="step", log_y=log_y, x=x)
