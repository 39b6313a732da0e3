"""MADE (Germain et al. 2015) as a model of binary pixels: a masked autoencoder's logits, exact likelihood.

``masks=1``: one fixed (raster) ordering. ``masks=N > 1``: order- and connectivity-agnostic training that
cycles through ``N`` masks, one per batch; ``masks=0``: a fresh random mask every batch. ``eval_masks``:
how many of those masks ``deepgm eval`` averages (``log (1/M) Σ_m p_m(x)``; it names the number).
"""

from __future__ import annotations

from dataclasses import dataclass

from deepgm.distributions import BinaryMADE
from deepgm.models import AutoregressiveModel
from deepgm.zoo.autoregressive_common import SUMMARY_NOTE, adam
from deepgm.zoo.options import at_least, option
from deepgm.zoo.registry import DataInfo, register


@dataclass
class MADEConfig:
    """Options of MADE (each a ``deepgm train made`` flag); the paper's MNIST MADE has one layer of 500."""

    hidden: tuple[int, ...] = (500,)
    masks: int = option(1, at_least(0))  # training masks: 1 fixed ordering, N cycled, 0 fresh per batch
    eval_masks: int = 1  # masks averaged at test time (order-agnostic MADE)
    lr: float = 1e-3


@register("made", f"MADE: masked autoencoder, order-agnostic training, mask ensembles ({SUMMARY_NOTE})", MADEConfig)
def build_made(cfg: MADEConfig, data: DataInfo) -> AutoregressiveModel:
    """MADE over the flat ``x`` of ``data``."""
    p = BinaryMADE(var=["x"], dim=data.x_dim, hidden=cfg.hidden, order_agnostic=cfg.masks != 1,
                   n_masks=cfg.masks if cfg.masks != 1 else 0, name="p")
    if cfg.masks != 1:
        p.next_training_masks()  # start from mask 0 of the cycle (or a random one)
    return AutoregressiveModel(p, eval_masks=cfg.eval_masks if cfg.masks != 1 else 1, **adam(cfg.lr))
