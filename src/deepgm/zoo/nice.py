"""NICE (Dinh et al. 2014): additive couplings on alternating halves, a diagonal scaling, a logistic prior."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from deepgm.flows import AdditiveCoupling, Scaling, Transform, alternating_mask
from deepgm.models import FlowModel
from deepgm.zoo.flows_common import Preprocess, base_distribution, flow_model, preprocessing
from deepgm.zoo.options import at_least, option
from deepgm.zoo.registry import DataInfo, register


@dataclass
class NICEConfig:
    """Options of NICE (each a ``deepgm train nice`` flag)."""

    couplings: int = 4
    hidden: tuple[int, ...] = (256, 256)
    prior: Literal["logistic", "normal"] = "logistic"
    preprocess: Preprocess = "dequantize"
    levels: int = option(256, at_least(2))
    lr: float = 1e-3


@register("nice", "NICE: additive coupling flow, exact likelihood (dequantised data)", NICEConfig, pixels="grey")
def build_nice(cfg: NICEConfig, data: DataInfo) -> FlowModel:
    """NICE for flat ``x`` of ``data``: ``[dequantise] → couplings × additive → scaling → prior``."""
    d = data.x_dim
    ts: list[Transform] = preprocessing(cfg.preprocess if data.binary else "none", data, cfg.levels)
    ts += [AdditiveCoupling(alternating_mask(d, i % 2), hidden=cfg.hidden) for i in range(cfg.couplings)]
    ts.append(Scaling(d))
    return flow_model(ts, base_distribution(cfg.prior, d), data, cfg.lr)
