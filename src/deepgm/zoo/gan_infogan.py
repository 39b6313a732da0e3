"""InfoGAN (Chen et al. 2016): the non-saturating GAN plus ``λ`` times the variational lower bound of the
mutual information between a categorical code ``c`` and the image, ``I(c; x) ≥ E_{p(c) p(z) p(x|z,c)}
[log Q(c|x)] + H(c)``, maximised by the generator and by ``Q``, whose body is the discriminator's.
``generate(n)`` draws ``x`` (codes drawn too); ``model.codes_generator`` draws ``(x, c)`` together.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from deepgm.distributions import Categorical, Deterministic, Empirical
from deepgm.losses import LogProb
from deepgm.losses.gan import BatchE, NonSaturatingGAN
from deepgm.models.gan import GAN
from deepgm.nn import LogitsHead
from deepgm.zoo.gan_basic import (
    GANConfig,
    discriminator_with_classifier,
    generator_net,
    latent_prior,
    optimizer_settings,
)
from deepgm.zoo.registry import DataInfo, register

__all__ = ["InfoGANConfig", "build_infogan"]


@dataclass
class InfoGANConfig(GANConfig):
    """InfoGAN: the number of categories of the code and the weight λ of the information term."""

    n_codes: int = 10
    info_weight: float = 1.0


@register("infogan", "InfoGAN: NS-GAN + λ·(E log Q(c|x)), Q sharing the discriminator's body", InfoGANConfig,
          pixels="grey")
def build_infogan(cfg: InfoGANConfig, data: DataInfo) -> GAN:
    """The InfoGAN of ``cfg`` for ``data``."""
    k = cfg.n_codes
    g = Deterministic(var=["x"], cond_var=["z", "c"], net=generator_net(cfg, data, extra_in=k), name="G")
    codes = Categorical(var=["c"], probs=torch.full((k,), 1.0 / k), name="p_c")
    joint = g * latent_prior(cfg) * codes
    gen = joint.marginalize_var(["z", "c"])  # p_G(x)
    gen_xc = joint.marginalize_var("z")  # p_G(x, c): the same draws, with the code
    disc, code_logits = discriminator_with_classifier(cfg, data.x_dim, k)
    q = Categorical(var=["c"], cond_var=["x"], net=LogitsHead(code_logits), name="Q")
    adv = NonSaturatingGAN(Empirical(var=["x"]), gen, disc)
    info = BatchE(gen_xc, LogProb(q)).mean()
    loss = adv.mean() - cfg.info_weight * info
    d_extra = -cfg.info_weight * BatchE(gen_xc, LogProb(q), detach=True).mean()
    model = GAN(loss, gen, d_steps=cfg.d_steps, **optimizer_settings(cfg), discriminator_extra=d_extra,
                discriminator_modules=[code_logits[-1]])  # the head; the body is in D
    model.__dict__["codes_generator"] = gen_xc  # shares the generator's modules: not registered twice
    return model
