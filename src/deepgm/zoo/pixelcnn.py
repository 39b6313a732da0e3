"""PixelCNN (van den Oord et al. 2016): masked convolutions (a 7×7 type A, then residual 3×3 type B) over
binary pixels in raster order, exact likelihood, cached sampling."""

from __future__ import annotations

from dataclasses import dataclass

from deepgm.distributions import PixelCNN
from deepgm.models import AutoregressiveModel
from deepgm.zoo.autoregressive_common import SUMMARY_NOTE, adam, image_shape
from deepgm.zoo.options import Rule, option
from deepgm.zoo.registry import DataInfo, register

ODD = Rule(lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1 and v % 2 == 1,
           "an odd integer of at least 1")


@dataclass
class PixelCNNConfig:
    """Options of PixelCNN (each a ``deepgm train pixelcnn`` flag), sized for a CPU."""

    channels: int = 32
    layers: int = 5  # residual type-B layers after the type-A one
    kernel: int = option(3, ODD)
    first_kernel: int = option(7, ODD)
    lr: float = 1e-3


@register("pixelcnn", f"PixelCNN: masked convolutions A/B ({SUMMARY_NOTE})", PixelCNNConfig)
def build_pixelcnn(cfg: PixelCNNConfig, data: DataInfo) -> AutoregressiveModel:
    """PixelCNN over the images of ``data`` (other data: one row of pixels)."""
    p = PixelCNN(var=["x"], image_shape=image_shape(data), channels=cfg.channels, layers=cfg.layers,
                 kernel=cfg.kernel, first_kernel=cfg.first_kernel, name="p")
    return AutoregressiveModel(p, **adam(cfg.lr))
