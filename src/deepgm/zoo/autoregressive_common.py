"""Shared pieces of the zoo's autoregressive models (NADE, MADE, PixelCNN, Gated PixelCNN, PixelVAE)."""

from __future__ import annotations

from typing import Any

import torch

from deepgm.zoo.registry import DataInfo

SUMMARY_NOTE = "exact NLL, binary pixels"


def image_shape(data: DataInfo) -> tuple[int, int, int]:
    """The ``(C, H, W)`` the convolutional models see: the data's images, or a row ``(1, 1, D)`` otherwise."""
    return data.image_shape or (1, 1, data.x_dim)


def adam(lr: float) -> dict[str, Any]:
    """The optimiser keywords of a :class:`~deepgm.models.Model`: Adam at ``lr``."""
    return {"optimizer": torch.optim.Adam, "optimizer_params": {"lr": lr}}
