"""A small convolutional classifier of 28×28 grey images, the feature network of MNIST-FID and MNIST-IS
(:mod:`deepgm.metrics.gan`; trained by ``scripts/train_mnist_classifier.py``)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["MNISTClassifier"]


class MNISTClassifier(nn.Module):
    """A small convolutional classifier of 28×28 images (flat 784 inputs accepted): ``features(x)`` (the
    128-d penultimate layer) defines MNIST-FID, ``forward(x)`` (10 logits) MNIST-IS.

    >>> MNISTClassifier()(torch.zeros(2, 784)).shape
    torch.Size([2, 10])
    """

    def __init__(self, n_classes: int = 10) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(),
        )
        self.head = nn.Linear(128, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate features ``(n, 128)``."""
        out: torch.Tensor = self.body(x.reshape(-1, 1, 28, 28).float())
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.head(self.features(x))
        return logits
