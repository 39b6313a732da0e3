"""Gated PixelCNN (van den Oord et al. 2016): vertical and horizontal stacks with gated activations, no
blind spot, optionally class-conditional (``--class-conditional true``: ``p(x|y)``, the batches' labels);
binary pixels, exact likelihood, cached sampling."""

from __future__ import annotations

from dataclasses import dataclass

from deepgm.distributions import GatedPixelCNN
from deepgm.models import AutoregressiveModel
from deepgm.zoo.autoregressive_common import SUMMARY_NOTE, adam, image_shape
from deepgm.zoo.options import option
from deepgm.zoo.pixelcnn import ODD
from deepgm.zoo.registry import DataInfo, register


@dataclass
class GatedPixelCNNConfig:
    """Options of the Gated PixelCNN (each a ``deepgm train gated-pixelcnn`` flag), sized for a CPU."""

    channels: int = 32
    layers: int = 5  # gated blocks (the first of type A)
    kernel: int = option(3, ODD)
    first_kernel: int = option(7, ODD)
    class_conditional: bool = False
    lr: float = 1e-3


@register("gated-pixelcnn", f"Gated PixelCNN: vertical/horizontal stacks, optional class conditioning "
          f"({SUMMARY_NOTE})", GatedPixelCNNConfig)
def build_gated_pixelcnn(cfg: GatedPixelCNNConfig, data: DataInfo) -> AutoregressiveModel:
    """The Gated PixelCNN over the images of ``data`` (other data: one row of pixels)."""
    conditional = cfg.class_conditional
    if conditional and not data.n_classes:
        raise ValueError(f"class_conditional needs labelled data; {data.name} has no classes")
    n = data.n_classes if conditional else None
    p = GatedPixelCNN(var=["x"], cond_var=["y"] if conditional else [], image_shape=image_shape(data),
                      channels=cfg.channels, layers=cfg.layers, kernel=cfg.kernel, first_kernel=cfg.first_kernel,
                      cond_dim=n or 0, n_classes=n, name="p")
    return AutoregressiveModel(p, **adam(cfg.lr))
