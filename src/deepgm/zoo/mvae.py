"""MVAE (Wu & Goodman 2018): the posterior is a product of experts ``q(z|x,y) ∝ p(z) q(z|x) q(z|y)``,
and the sub-sampled objective trains every subset of modalities:
``-mean(ELBO(x,y) + ELBO(x) + ELBO(y))`` with ``ELBO(S) = E_{q(z|S)}[Σ_{m∈S} log p(m|z)] - D_KL[q(z|S)||p(z)]``."""

from __future__ import annotations

from dataclasses import dataclass

from deepgm.distributions import ProductOfNormal
from deepgm.losses import KL, E, LogProb
from deepgm.zoo.multimodal import MultimodalConfig, MultimodalVAE, parts
from deepgm.zoo.registry import DataInfo, register


@dataclass
class MVAEConfig(MultimodalConfig):
    """The shared options."""


@register("mvae", "MVAE: product-of-experts posterior, sub-sampled ELBO over modality subsets",
          MVAEConfig, needs_labels=True)
def build_mvae(cfg: MVAEConfig, data: DataInfo) -> MultimodalVAE:
    """The MVAE of ``cfg`` for (image, label) ``data``."""
    m = parts(cfg, data)
    z = [cfg.z_dim]
    q_xy = ProductOfNormal([m.q_x, m.q_y], name="q", features_shape=z)
    q_x = ProductOfNormal([m.q_x], name="q", features_shape=z)
    q_y = ProductOfNormal([m.q_y], name="q", features_shape=z)
    elbo_xy = E(q_xy, LogProb(m.p_x) + LogProb(m.p_y)) - KL(q_xy, m.prior)
    elbo_x = E(q_x, LogProb(m.p_x)) - KL(q_x, m.prior)
    elbo_y = E(q_y, LogProb(m.p_y)) - KL(q_y, m.prior)
    loss = -(elbo_xy + elbo_x + elbo_y).mean()
    model = MultimodalVAE(loss, [m.q_x, m.q_y, m.p_x, m.p_y, m.prior], m, q_xy, cfg.lr)
    model._p.q_x, model._p.q_y = q_x, q_y  # cross-modal inference goes through the PoE with the prior expert
    return model
