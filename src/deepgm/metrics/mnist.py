"""MNIST-FID and MNIST-IS with the classifier shipped inside the package (nothing is downloaded).

``weights/mnist_classifier.pt`` is the ``state_dict`` of :class:`deepgm.nn.MNISTClassifier` (loaded by
:func:`deepgm.metrics.gan.load_mnist_classifier`) written by ``scripts/train_mnist_classifier.py``; the
``.json`` beside it records the exact command, the test accuracy and the file's SHA-256 (rerun the script
to reproduce it). Its 128-d penultimate features define MNIST-FID, its softmax MNIST-IS. The scores apply
to 28×28 grey images in [0, 1] (flat 784-vectors accepted); they are comparable between runs scored with
these weights only.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import torch

from deepgm.metrics.gan import fid, inception_score, load_mnist_classifier
from deepgm.nn import MNISTClassifier

__all__ = ["CLASSIFIER_WEIGHTS", "mnist_classifier", "mnist_classifier_info", "mnist_scores", "fits_mnist_classifier"]

CLASSIFIER_WEIGHTS = Path(__file__).parent / "weights" / "mnist_classifier.pt"


@functools.lru_cache(maxsize=1)
def mnist_classifier() -> MNISTClassifier:
    """The packaged :class:`deepgm.nn.MNISTClassifier` (loaded once, eval mode, CPU): ``net(x)`` the 10
    logits, ``net.features(x)`` the 128-d features."""
    return load_mnist_classifier(CLASSIFIER_WEIGHTS)


def mnist_classifier_info() -> dict[str, Any]:
    """What the packaged weights' JSON records: test accuracy, command, seed, SHA-256."""
    return dict(json.loads(CLASSIFIER_WEIGHTS.with_suffix(".json").read_text()))


def fits_mnist_classifier(x: torch.Tensor) -> bool:
    """Whether ``x (n, ...)`` holds 28×28 single-channel images (784 values each), the classifier's input."""
    return x.dim() >= 2 and x[0].numel() == 784 and (x.dim() != 4 or x.shape[1] == 1)


@torch.no_grad()
def mnist_scores(samples: torch.Tensor, reference: torch.Tensor, splits: int = 10) -> dict[str, float]:
    """``mnist_fid`` between ``samples`` and ``reference`` images (e.g. the test set), ``mnist_is`` and
    ``mnist_is_std`` of the samples over ``splits`` parts, and ``mnist_is_reference``, the reference
    images' own score (the most the samples can reach, about 10 for MNIST's test set).

    >>> x = torch.rand(40, 784)
    >>> sorted(mnist_scores(x, x, splits=2))
    ['mnist_fid', 'mnist_is', 'mnist_is_reference', 'mnist_is_std']
    """
    for name, t in (("samples", samples), ("reference", reference)):
        if not fits_mnist_classifier(t):
            raise ValueError(f"mnist_scores: {name} must be 28×28 images (n, 784) or (n, 1, 28, 28), "
                             f"got shape {tuple(t.shape)}")
    net = mnist_classifier()
    samples, reference = samples.detach().float().cpu(), reference.detach().float().cpu()
    is_mean, is_std = inception_score(samples, net, splits=min(splits, len(samples)))
    is_ref, _ = inception_score(reference, net, splits=min(splits, len(reference)))
    return {"mnist_fid": fid(samples, reference, net.features), "mnist_is": is_mean, "mnist_is_std": is_std,
            "mnist_is_reference": is_ref}
