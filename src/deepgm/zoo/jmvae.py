"""JMVAE-kl (Suzuki et al. 2017): a joint encoder ``q(z|x,y)`` trained on the joint ELBO, and the
unimodal encoders fitted to it: ``-mean(ELBO) + α mean(D_KL[q(z|x,y)||q(z|x)] + D_KL[q(z|x,y)||q(z|y)])``
with ``ELBO = E_{q(z|x,y)}[log p(x|z) + log p(y|z)] - D_KL[q(z|x,y)||p(z)]``."""

from __future__ import annotations

from dataclasses import dataclass

from deepgm.distributions import Normal
from deepgm.losses import KL, E, LogProb
from deepgm.nn import MLP, NormalHead, OneHotInputs
from deepgm.zoo.multimodal import MultimodalConfig, MultimodalVAE, parts
from deepgm.zoo.options import non_negative, option
from deepgm.zoo.registry import DataInfo, register


@dataclass
class JMVAEConfig(MultimodalConfig):
    """The shared options and α, the weight of the unimodal-encoder KL terms."""

    alpha: float = option(1.0, non_negative())


@register("jmvae", "JMVAE-kl: joint encoder q(z|x,y) plus unimodal encoders fitted to it by KL",
          JMVAEConfig, needs_labels=True)
def build_jmvae(cfg: JMVAEConfig, data: DataInfo) -> MultimodalVAE:
    """The JMVAE of ``cfg`` for (image, label) ``data``."""
    m = parts(cfg, data)
    k, h, a = data.n_classes or 0, list(cfg.hidden), cfg.activation
    q_xy = Normal(var=["z"], cond_var=["x", "y"], name="q",
                  net=OneHotInputs(NormalHead(MLP([data.x_dim + k, *h], a, out_activation=a), h[-1], cfg.z_dim), k))
    elbo = E(q_xy, LogProb(m.p_x) + LogProb(m.p_y)) - KL(q_xy, m.prior)
    loss = -elbo.mean() + cfg.alpha * (KL(q_xy, m.q_x) + KL(q_xy, m.q_y)).mean()
    return MultimodalVAE(loss, [q_xy, m.q_x, m.q_y, m.p_x, m.p_y, m.prior], m, q_xy, cfg.lr)
