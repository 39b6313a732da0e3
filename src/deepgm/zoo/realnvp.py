"""RealNVP (Dinh et al. 2017): affine couplings; multi-scale with checkerboard and channel masks on
images, alternating masks with batch-norm on vectors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from deepgm.data import square_image_shape
from deepgm.flows import (
    AffineCoupling,
    BatchNormFlow,
    Reshape,
    Transform,
    alternating_mask,
    multiscale_realnvp,
)
from deepgm.models import FlowModel
from deepgm.zoo.flows_common import Preprocess, base_distribution, flow_model, preprocessing
from deepgm.zoo.options import at_least, between, option
from deepgm.zoo.registry import DataInfo, register


@dataclass
class RealNVPConfig:
    """Options of RealNVP (each a ``deepgm train realnvp`` flag). ``architecture``: ``auto`` is multi-scale
    for square images (flat ``x`` of ``s²`` values in ``[0, 1]``), ``vector`` otherwise."""

    architecture: Literal["auto", "multiscale", "vector"] = "auto"
    couplings: int = 3
    levels: int = 2
    hidden: tuple[int, ...] = (64, 64)
    batch_norm: bool = True
    preprocess: Preprocess = "auto"
    quantization_levels: int = option(256, at_least(2))
    # y = logit(α + (1 - 2α) x); RealNVP used 0.05, MAF 1e-6
    logit_alpha: float = option(0.05, between(0, 0.5, open_lo=True, open_hi=True))
    lr: float = 1e-3


@register("realnvp", "RealNVP: affine coupling flow, multi-scale on images", RealNVPConfig, pixels="grey")
def build_realnvp(cfg: RealNVPConfig, data: DataInfo) -> FlowModel:
    """RealNVP for flat ``x`` of ``data``."""
    d = data.x_dim
    ts: list[Transform] = preprocessing(cfg.preprocess, data, cfg.quantization_levels, cfg.logit_alpha)
    image = square_image_shape(d) if data.binary else None
    arch = cfg.architecture
    if arch == "auto":
        arch = "multiscale" if image is not None and image[1] % 2 ** (cfg.levels - 1) == 0 else "vector"
    if arch == "multiscale":
        if image is None:
            raise ValueError(f"realnvp: the multi-scale architecture needs square images, got x of {d} values")
        ts.append(Reshape((d,), image))
        ts.append(multiscale_realnvp(image, cfg.levels, cfg.couplings, hidden=cfg.hidden[0]))
        ts.append(Reshape(image, (d,)))
    elif arch == "vector":
        for i in range(2 * cfg.couplings):
            ts.append(AffineCoupling(alternating_mask(d, i % 2), hidden=cfg.hidden))
            if cfg.batch_norm:
                ts.append(BatchNormFlow(d))
    else:
        raise ValueError(f"architecture must be 'auto', 'multiscale' or 'vector', got {cfg.architecture!r}")
    return flow_model(ts, base_distribution("normal", d), data, cfg.lr)
