"""Headless visualisation helpers: image grids, latent-space views, densities, loss curves and
sequences (piano rolls, video frame strips).

Importing this package forces matplotlib's non-interactive Agg backend so that every
function works without a display. All ``save_*`` functions write a PNG, create missing
parent directories, close their figures and return the :class:`pathlib.Path` written.
"""

try:
    import matplotlib
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("deepgm.viz needs matplotlib: pip install 'deepgm[train]' or 'matplotlib>=3.7'") from exc

matplotlib.use("Agg")

from deepgm.viz.grid import make_grid, save_image_grid, upscale
from deepgm.viz.images import save_decoded_manifold, save_latent_traversal, save_reconstructions
from deepgm.viz.plots import (
    save_density_2d,
    save_density_panels_2d,
    save_latent_map_2d,
    save_loss_curve,
    save_samples_2d,
    save_training_curves,
)
from deepgm.viz.samples import save_samples
from deepgm.viz.sequences import save_frame_strips, save_piano_rolls

__all__ = [
    "make_grid",
    "save_decoded_manifold",
    "save_frame_strips",
    "save_density_2d",
    "save_density_panels_2d",
    "save_image_grid",
    "save_latent_map_2d",
    "save_latent_traversal",
    "save_loss_curve",
    "save_piano_rolls",
    "save_reconstructions",
    "save_samples",
    "save_samples_2d",
    "save_training_curves",
    "upscale",
]
