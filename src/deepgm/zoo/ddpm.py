"""DDPM (Ho et al. 2020): a U-Net noise predictor, the linear (or cosine) β schedule, trained on the
simplified noise-prediction objective (or the bound); ancestral or DDIM sampling; ``deepgm eval`` reports
the variational bound in bits/dim (the estimator named) and MNIST-FID of samples.

The data are grey levels in [0, 1] (``pixels="grey"``), flat. Square images whose side divides by
``2^(len(channel_mults) - 1)`` (28×28 MNIST, 8×8 digits) get the U-Net; other data an MLP noise predictor
(``network="mlp"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from deepgm.data import square_image_shape
from deepgm.distributions.diffusion import DiffusionProcess, ImageNoisePredictor, NoiseSchedule
from deepgm.errors import ConfigError
from deepgm.models.diffusion import DDPM
from deepgm.nn.unet import MLPNoisePredictor, UNet
from deepgm.zoo.options import at_least, between, option
from deepgm.zoo.registry import DataInfo, register

__all__ = ["DDPMConfig", "build_ddpm", "noise_predictor"]

_UNIT = between(0, 1, open_lo=True, open_hi=True)


@dataclass
class DDPMConfig:
    """Options of DDPM (each a ``deepgm train ddpm`` flag)."""

    steps: int = 1000  # T, the diffusion steps
    schedule: Literal["linear", "cosine"] = "linear"
    beta_start: float = option(1e-4, _UNIT)  # the linear schedule's β_1
    beta_end: float = option(0.02, _UNIT)  # ... and β_T
    variance: Literal["beta", "posterior"] = "beta"  # σ_t² of p(x_{t-1}|x_t): β_t or β̃_t
    objective: Literal["simple", "bound"] = "simple"
    network: Literal["auto", "unet", "mlp"] = "auto"  # auto: a U-Net for square images, else an MLP
    hidden: tuple[int, ...] = (256, 256)  # the MLP's widths (flat data)
    channels: int = 32  # the U-Net's base width
    channel_mults: tuple[int, ...] = (1, 2, 2)  # one resolution each: 28 → 14 → 7
    blocks: int = 1  # residual blocks per resolution
    attention: bool = True  # self-attention at the lowest resolution
    dropout: float = option(0.0, between(0, 1, open_hi=True))
    lr: float = 2e-4
    grad_clip: float = 1.0
    sampler: Literal["ancestral", "ddim"] = "ddim"  # how samples are drawn (sample, eval's FID, figures)
    sample_steps: int | None = 50  # DDIM's steps (at most steps); None: all T
    eta: float = option(0.0, between(0, 1))  # DDIM's noise: 0 deterministic
    bound_images: int = 100  # test images for the bound (T network passes each when exact)
    bound_t: int | None = None  # draws of t per image for the bound; None: the exact sum over all t
    fid_samples: int = option(1000, at_least(0))  # samples scored by MNIST-FID (0: none)


def _image_shape(cfg: DDPMConfig, data: DataInfo) -> tuple[int, int, int] | None:
    """The images' ``(C, H, W)`` for the U-Net; None for the MLP."""
    shape = data.image_shape or square_image_shape(data.x_dim)
    factor = 2 ** (len(cfg.channel_mults) - 1)
    fits = shape is not None and not shape[-1] % factor and not shape[-2] % factor
    if cfg.network == "mlp" or (cfg.network == "auto" and not fits):
        return None
    if shape is None or not fits:
        raise ConfigError("DDPMConfig", "channel_mults", f"{len(cfg.channel_mults)} resolutions that halve images "
                          f"of shape {shape or data.x_shape} (sides divisible by {factor})", cfg.channel_mults)
    return (int(shape[0]), int(shape[1]), int(shape[2]))


def noise_predictor(cfg: DDPMConfig, data: DataInfo) -> nn.Module:
    """``ε_θ(x_t, t)`` on flat data: the U-Net on images, the MLP otherwise (see ``network``)."""
    shape = _image_shape(cfg, data)
    if shape is None:
        return MLPNoisePredictor(data.x_dim, cfg.hidden)
    unet = UNet(shape[0], cfg.channels, cfg.channel_mults, cfg.blocks, cfg.attention, (shape[1], shape[2]),
                cfg.dropout)
    return ImageNoisePredictor(unet, shape)


@register("ddpm", "DDPM: denoising diffusion, U-Net noise predictor, bound in bits/dim, DDIM sampling",
          DDPMConfig, pixels="grey")
def build_ddpm(cfg: DDPMConfig, data: DataInfo) -> DDPM:
    """DDPM of ``cfg`` for square grey images ``data``."""
    if cfg.sample_steps is not None and cfg.sample_steps > cfg.steps:
        raise ConfigError("DDPMConfig", "sample_steps", f"at most steps (T = {cfg.steps})", cfg.sample_steps)
    schedule = (NoiseSchedule.linear(cfg.steps, cfg.beta_start, cfg.beta_end) if cfg.schedule == "linear"
                else NoiseSchedule.cosine(cfg.steps))
    process = DiffusionProcess(schedule, noise_predictor(cfg, data), data.x_dim, cfg.variance)
    return DDPM(process, cfg.objective, sampler=cfg.sampler, sample_steps=cfg.sample_steps, eta=cfg.eta,
                bound_images=cfg.bound_images, bound_t=cfg.bound_t, fid_samples=cfg.fid_samples,
                optimizer=torch.optim.Adam, optimizer_params={"lr": cfg.lr}, clip_grad_norm=cfg.grad_clip)
