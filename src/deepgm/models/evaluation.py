"""How a trained model reports on itself: the two methods every model family implements.

* ``evaluate(test_data, *, k=1000, info=None) -> dict`` — the test metrics that family's users expect:
  the importance-sampled NLL (``k`` draws) and the ELBO for latent-variable models
  (:class:`~deepgm.models.VAE`), the exact NLL and bits/dim for flows (:class:`~deepgm.models.FlowModel`),
  MNIST-FID and MNIST-IS for generators of 28×28 images and sample-based metrics otherwise
  (:class:`~deepgm.models.GAN`, :func:`generator_metrics`), accuracies for classifiers (the zoo's M2 and
  multimodal models). ``test_data`` is a dict of tensors (``{"x": ..., "y": ...}``); ``info`` (a
  :class:`~deepgm.data.DataInfo`) says what the data is, for metrics that depend on it.
* ``figures(out_dir, test_data, info) -> list[Path]`` — the family's standard pictures (samples,
  reconstructions, latent maps, densities), written into ``out_dir``.

:class:`~deepgm.models.Model` provides defaults (the mean objective on the test data; no figures), so
a new family works with ``deepgm train``/``deepgm eval`` at once and overrides them when it has better
to say. The command line only calls these two methods; :class:`Evaluates` is the protocol they form.
Figures import :mod:`deepgm.viz` (matplotlib) only when drawn.

>>> import torch
>>> from deepgm.distributions import Normal
>>> from deepgm.models import ML
>>> model = ML(Normal(var=["x"], loc=torch.nn.Parameter(torch.zeros(1)), scale=1.0))
>>> isinstance(model, Evaluates), model.evaluate({"x": torch.zeros(4, 1)})  # Model's default: -log N(0; 0, 1)
(True, {'test_loss': 0.9189385175704956})
>>> labels = conditions_of({"x": torch.zeros(10, 4), "y": torch.arange(10)}, ["y", "c"], n=3)
>>> labels, rows(labels, 64), rows({}, 64)  # draws at 3 given labels; 64 with no condition
({'y': tensor([0, 1, 2])}, 3, 64)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import torch

if TYPE_CHECKING:
    from deepgm.data.prepared import DataInfo

__all__ = ["Evaluates", "conditions_of", "generator_metrics", "image_shape_of", "rows", "save_sample_figure",
           "save_samples_to", "save_sequence_figure"]

Batch = Mapping[str, torch.Tensor]
MAX_KERNEL_POINTS = 2000  # MMD² and precision/recall compare at most this many points (quadratic cost)


@runtime_checkable
class Evaluates(Protocol):
    """What ``deepgm train`` (its final report) and ``deepgm eval`` call on a model."""

    def evaluate(self, test_data: Batch, *, k: int = 1000, info: DataInfo | None = None) -> dict[str, Any]:
        """Test metrics, a JSON-serialisable dict."""
        ...

    def figures(self, out_dir: Path, test_data: Batch, info: DataInfo) -> list[Path]:
        """The standard figures of the family, written into ``out_dir``; returns their paths."""
        ...


def conditions_of(test_data: Batch, names: Iterable[str], n: int | None = None) -> dict[str, torch.Tensor]:
    """The tensors of ``test_data`` named in ``names`` (a model's conditioning variables, e.g. ``y``),
    the first ``n`` rows of each when ``n`` is given."""
    return {c: (test_data[c] if n is None else test_data[c][:n]) for c in dict.fromkeys(names) if c in test_data}


def rows(conditions: Mapping[str, torch.Tensor], n: int) -> int:
    """How many draws to take at ``conditions``: their rows when there are any, else ``n``."""
    return len(next(iter(conditions.values()))) if conditions else n


def image_shape_of(info: DataInfo | None, x: torch.Tensor) -> tuple[int, int, int] | None:
    """``(C, H, W)`` of the examples of ``x`` when they are images: ``info``'s, else the square rule."""
    if info is not None:
        return info.image_shape
    from deepgm.data.prepared import square_image_shape

    return square_image_shape(x[0].numel()) if x.dim() >= 2 else None


def save_sequence_figure(x: torch.Tensor, path: Path) -> Path:
    """Sequences ``(N, T, ...)`` as a picture: frame strips for videos ``(N, T, C, H, W)``, piano rolls
    (time across, one row of values per step) otherwise."""
    from deepgm import viz

    x = x.detach().float().cpu()
    if x.dim() == 5:
        return viz.save_frame_strips(x.clamp(0, 1), path)
    return viz.save_piano_rolls(x.reshape(x.shape[0], x.shape[1], -1).clamp(0, 1), path)


def save_sample_figure(samples: torch.Tensor, path: Path, info: DataInfo | None) -> Path | None:
    """``samples`` as an image grid (images) or a scatter (2-D points) at ``path``, sequences as
    :func:`save_sequence_figure` draws them; None for other data."""
    from deepgm import viz

    if info is not None and getattr(info, "sequence", False):
        return save_sequence_figure(samples, path)
    shape = image_shape_of(info, samples)
    if shape is None and not (samples.dim() == 2 and samples.shape[1] == 2):
        return None
    return viz.save_samples(samples.clamp(0, 1) if shape is not None else samples, path, image_shape=shape)


def save_samples_to(samples: torch.Tensor, path: Path, info: DataInfo | None) -> list[Path]:
    """Write ``samples`` by ``path``'s suffix: ``.png`` a picture (:func:`save_sample_figure`); ``.pt``
    (``torch.save``) or ``.npy`` (``numpy.save``) the tensor of all samples, plus a picture of the first
    64 beside it (same name, ``.png``) when they are images or 2-D points. Returns the paths written."""
    samples = samples.detach().cpu()
    if path.suffix == ".png":
        picture = save_sample_figure(samples, path, info)
        if picture is None:
            raise ValueError(f"samples of shape {tuple(samples.shape[1:])} are not images or 2-D points; "
                             f"write them as a tensor (.pt or .npy)")
        return [picture]
    if path.suffix not in (".pt", ".npy"):
        raise ValueError(f"a samples file must end in .png, .pt or .npy, got {path.name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".pt":
        torch.save(samples, path)
    else:
        import numpy as np

        np.save(path, samples.numpy())
    picture = save_sample_figure(samples[:64], path.with_suffix(".png"), info)
    return [path] + ([picture] if picture is not None else [])


@torch.no_grad()
def generator_metrics(samples: torch.Tensor, real: torch.Tensor, info: DataInfo | None = None,
                      bandwidths: tuple[float, ...] = (0.5, 1.0, 2.0)) -> dict[str, Any]:
    """Sample-based scores of ``samples`` against the test examples ``real`` (same count is best).

    Always ``test_mmd2`` (multi-bandwidth Gaussian-kernel MMD², the GAN's validation number, on at most
    2000 points). For 28×28 images ``mnist_fid``/``mnist_is`` (:func:`deepgm.metrics.mnist.mnist_scores`,
    the packaged classifier) against all of ``real``. Otherwise (8×8 digits, 2-D points, which that
    classifier does not fit) improved ``precision``/``recall`` on the raw values and, for the toy mixtures
    with known modes (``8gaussians``, ``25gaussians``), mode coverage; ``note`` says which applied.
    """
    from deepgm.data import toy_2d_mode_std, toy_2d_modes
    from deepgm.losses import mmd2_mixture
    from deepgm.metrics import mode_coverage, precision_recall
    from deepgm.metrics.mnist import fits_mnist_classifier, mnist_scores

    samples, real = samples.detach().float().cpu(), real.detach().float().cpu()
    m = min(len(samples), len(real), MAX_KERNEL_POINTS)
    flat_s, flat_r = samples.reshape(len(samples), -1), real.reshape(len(real), -1)
    out: dict[str, Any] = {"samples": len(samples),
                           "test_mmd2": float(mmd2_mixture(flat_s[:m], flat_r[:m], bandwidths))}
    if fits_mnist_classifier(samples) and fits_mnist_classifier(real):
        out.update(mnist_scores(samples, real))
        out["note"] = "mnist_fid/mnist_is: features and softmax of the packaged MNIST classifier"
        return out
    out.update(precision_recall(flat_r[:m], flat_s[:m]))
    note = "the MNIST classifier needs 28x28 images: precision/recall on the raw values instead of FID/IS"
    if info is not None and flat_s.shape[1] == 2:
        try:
            modes, std = toy_2d_modes(info.name), toy_2d_mode_std(info.name)
        except ValueError:
            pass
        else:
            cov = mode_coverage(flat_s, modes, std)
            out.update({"modes_captured": cov["modes_captured"], "n_modes": cov["n_modes"],
                        "high_quality": cov["high_quality"], "mode_kl": cov["mode_kl"]})
            note += "; mode coverage of the mixture's modes"
    out["note"] = note
    return out
