"""MMVAE (Shi et al. 2019): the posterior is a mixture of experts ``q(z|x,y) = ½(q(z|x) + q(z|y))``,
trained with stratified draws from each expert:
``-mean(½ Σ_m E_{q(z|m)}[log p(x|z) + log p(y|z) + log p(z) - log q(z|x,y)])``."""

from __future__ import annotations

from dataclasses import dataclass

from deepgm.distributions import MixtureOfExperts
from deepgm.losses import E, LogProb
from deepgm.zoo.multimodal import MultimodalConfig, MultimodalVAE, parts
from deepgm.zoo.registry import DataInfo, register


@dataclass
class MMVAEConfig(MultimodalConfig):
    """The shared options."""


@register("mmvae", "MMVAE: mixture-of-experts posterior, stratified ELBO over the experts",
          MMVAEConfig, needs_labels=True)
def build_mmvae(cfg: MMVAEConfig, data: DataInfo) -> MultimodalVAE:
    """The MMVAE of ``cfg`` for (image, label) ``data``."""
    m = parts(cfg, data)
    moe = MixtureOfExperts([m.q_x, m.q_y], name="q")
    log_w = LogProb(m.p_x) + LogProb(m.p_y) + LogProb(m.prior) - LogProb(moe)
    loss = -(0.5 * (E(m.q_x, log_w) + E(m.q_y, log_w))).mean()
    return MultimodalVAE(loss, [m.q_x, m.q_y, m.p_x, m.p_y, m.prior], m, moe, cfg.lr)
