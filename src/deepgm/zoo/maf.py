"""MAF (Papamakarios et al. 2017): a stack of MADEs with reversed orders, batch-norm between them."""

from __future__ import annotations

from dataclasses import dataclass

from deepgm.flows import MAF, BatchNormFlow, ReversePermutation, Transform
from deepgm.models import FlowModel
from deepgm.zoo.flows_common import Preprocess, base_distribution, flow_model, preprocessing
from deepgm.zoo.options import at_least, between, option
from deepgm.zoo.registry import DataInfo, register


@dataclass
class MAFConfig:
    """Options of MAF (each a ``deepgm train maf`` flag)."""

    layers: int = 5
    hidden: tuple[int, ...] = (128, 128)
    batch_norm: bool = True
    preprocess: Preprocess = "auto"
    levels: int = option(256, at_least(2))
    # y = logit(α + (1 - 2α) x); RealNVP used 0.05, MAF 1e-6
    logit_alpha: float = option(0.05, between(0, 0.5, open_lo=True, open_hi=True))
    lr: float = 1e-3


@register("maf", "MAF: masked autoregressive flow (MNIST in logit space, 2-D toys)", MAFConfig, pixels="grey")
def build_maf(cfg: MAFConfig, data: DataInfo) -> FlowModel:
    """MAF for flat ``x`` of ``data``: ``[dequantise → logit] → (MADE → reverse [→ batch-norm]) × layers``."""
    d = data.x_dim
    ts: list[Transform] = preprocessing(cfg.preprocess, data, cfg.levels, cfg.logit_alpha)
    for i in range(cfg.layers):
        ts.append(MAF(d, hidden=cfg.hidden))
        if i < cfg.layers - 1:
            ts.append(ReversePermutation(d))
            if cfg.batch_norm:
                ts.append(BatchNormFlow(d))
    return flow_model(ts, base_distribution("normal", d), data, cfg.lr)
