"""PixelVAE (Gulrajani et al. 2017), small: a VAE whose decoder ``p(x|z)`` is a Gated PixelCNN conditioned
on the latent ``z`` (every gate gets a learned bias from ``z``), an MLP encoder ``q(z|x)`` and ``p(z) = N(0, I)``;
the ordinary negative ELBO through :class:`~deepgm.models.VAE`."""

from __future__ import annotations

from dataclasses import dataclass

from deepgm.distributions import GatedPixelCNN, Normal
from deepgm.models import PixelVAE
from deepgm.nn import MLP, NormalHead
from deepgm.zoo.autoregressive_common import adam, image_shape
from deepgm.zoo.options import option
from deepgm.zoo.pixelcnn import ODD
from deepgm.zoo.registry import DataInfo, register


@dataclass
class PixelVAEConfig:
    """Options of the PixelVAE (each a ``deepgm train pixelvae`` flag): a small decoder, so that the latent
    carries the global structure."""

    z_dim: int = 16
    hidden: tuple[int, ...] = (256,)
    channels: int = 16
    layers: int = 3
    kernel: int = option(3, ODD)
    max_eval_k: int = 100  # importance samples of the test NLL at most
    lr: float = 1e-3


@register("pixelvae", "PixelVAE: VAE with a Gated PixelCNN decoder p(x|z) (importance-sampled NLL)", PixelVAEConfig)
def build_pixelvae(cfg: PixelVAEConfig, data: DataInfo) -> PixelVAE:
    """The PixelVAE of ``cfg`` for the flat images of ``data``."""
    h = list(cfg.hidden)
    q = Normal(var=["z"], cond_var=["x"], name="q",
               net=NormalHead(MLP([data.x_dim, *h], "relu", out_activation="relu"), h[-1], cfg.z_dim))
    p = GatedPixelCNN(var=["x"], cond_var=["z"], image_shape=image_shape(data), channels=cfg.channels,
                      layers=cfg.layers, kernel=cfg.kernel, first_kernel=cfg.kernel, cond_dim=cfg.z_dim, name="p")
    prior = Normal(var=["z"], loc=0.0, scale=1.0, features_shape=[cfg.z_dim], name="p_{prior}")
    return PixelVAE(q, p, prior, max_eval_k=cfg.max_eval_k, **adam(cfg.lr))
