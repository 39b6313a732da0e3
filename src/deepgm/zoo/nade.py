"""NADE (Larochelle & Murray 2011): ``p(x) = Π_d σ(b_d + V_d·σ(c + W_{:,<d} x_{<d}))`` over binary pixels,
trained by maximum likelihood; ``deepgm eval`` reports the exact test NLL."""

from __future__ import annotations

from dataclasses import dataclass

from deepgm.distributions import NADE
from deepgm.models import AutoregressiveModel
from deepgm.zoo.autoregressive_common import SUMMARY_NOTE, adam
from deepgm.zoo.registry import DataInfo, register


@dataclass
class NADEConfig:
    """Options of NADE (each a ``deepgm train nade`` flag); the paper used 500 hidden units."""

    hidden_units: int = 500
    lr: float = 1e-3


@register("nade", f"NADE: neural autoregressive density estimator ({SUMMARY_NOTE})", NADEConfig)
def build_nade(cfg: NADEConfig, data: DataInfo) -> AutoregressiveModel:
    """NADE over the flat ``x`` of ``data``, in raster order."""
    p = NADE(var=["x"], dim=data.x_dim, hidden=cfg.hidden_units, name="p")
    return AutoregressiveModel(p, **adam(cfg.lr))
