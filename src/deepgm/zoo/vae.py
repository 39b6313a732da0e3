"""VAE (Kingma & Welling 2014): ``mean(D_KL[q(z|x)||p(z)] - E_{q(z|x)}[log p(x|z)])``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from deepgm.distributions import Bernoulli, Normal
from deepgm.models import VAE
from deepgm.nn import MLP, ConvDecoder, ConvEncoder, LogitsHead, NormalHead
from deepgm.zoo.registry import DataInfo, register


@dataclass
class VAEConfig:
    """Options of the VAE (each a ``deepgm train vae`` flag)."""

    z_dim: int = 8
    hidden: tuple[int, ...] = (256, 256)
    activation: str = "relu"
    decoder: Literal["bernoulli", "normal"] = "bernoulli"
    network: Literal["mlp", "conv"] = "mlp"  # conv: square images (sides divisible by 4), Bernoulli decoder
    lr: float = 1e-3


def vae_parts(cfg: VAEConfig, data: DataInfo) -> tuple[Normal, Bernoulli | Normal, Normal]:
    """``q(z|x)``, ``p(x|z)`` and ``p(z) = N(0, I)``: MLPs on flattened ``x``, or convolutional networks
    (``network="conv"``) on square images given flat."""
    h = list(cfg.hidden)
    prior = Normal(var=["z"], loc=0.0, scale=1.0, features_shape=[cfg.z_dim], name="p_{prior}")
    if getattr(cfg, "network", "mlp") == "conv":
        side = int(round(data.x_dim**0.5))
        if side * side != data.x_dim or cfg.decoder != "bernoulli":
            raise ValueError(f"network='conv' needs square one-channel images and a Bernoulli decoder, "
                             f"got x of {data.x_dim} values and decoder {cfg.decoder!r}")
        shape = (1, side, side)
        q_conv = Normal(var=["z"], cond_var=["x"], name="q", net=ConvEncoder(shape, cfg.z_dim, h[-1]))
        p_conv = Bernoulli(var=["x"], cond_var=["z"], name="p", net=ConvDecoder(cfg.z_dim, shape, h[-1]))
        return q_conv, p_conv, prior
    q = Normal(var=["z"], cond_var=["x"], name="q",
               net=NormalHead(MLP([data.x_dim, *h], cfg.activation, out_activation=cfg.activation),
                              h[-1], cfg.z_dim))
    decoder_body = MLP([cfg.z_dim, *h[::-1], data.x_dim], cfg.activation)
    p: Bernoulli | Normal
    if cfg.decoder == "bernoulli":
        p = Bernoulli(var=["x"], cond_var=["z"], name="p", net=LogitsHead(decoder_body))
    elif cfg.decoder == "normal":
        body = MLP([cfg.z_dim, *h[::-1]], cfg.activation, out_activation=cfg.activation)
        p = Normal(var=["x"], cond_var=["z"], name="p", net=NormalHead(body, h[0], data.x_dim, min_scale=1e-2))
    else:
        raise ValueError(f"decoder must be 'bernoulli' or 'normal', got {cfg.decoder!r}")
    return q, p, prior


@register("vae", "VAE: negative ELBO with analytic KL, MLP encoder/decoder", VAEConfig)
def build_vae(cfg: VAEConfig, data: DataInfo) -> VAE:
    """The VAE of ``cfg`` for ``data``."""
    q, p, prior = vae_parts(cfg, data)
    return VAE(q, p, prior, optimizer=torch.optim.Adam, optimizer_params={"lr": cfg.lr})
