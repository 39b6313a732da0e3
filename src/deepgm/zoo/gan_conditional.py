"""Class-conditional GANs on labelled data.

``cgan`` (Mirza & Osindero 2014): ``G(z, y)`` and ``D(x, y)``, the non-saturating loss given the labels.
``acgan`` (Odena et al. 2017): ``G(z, y)``; the discriminator's body carries two heads, real/fake and an
auxiliary classifier ``Q(y|x)``; both players also minimise the classifier's cross-entropy on generated
images, ``E[-log Q(y|G(z, y))]``, and the discriminator on data, ``-log Q(y|x)``.
``generate(n, y=labels)`` draws images of chosen classes.
"""

from __future__ import annotations

from dataclasses import dataclass

from deepgm.distributions import Categorical, Deterministic, Empirical
from deepgm.losses import LogProb
from deepgm.losses.gan import BatchE, NonSaturatingGAN
from deepgm.models.gan import GAN
from deepgm.nn import Concat, LogitsHead, OneHotInputs
from deepgm.zoo.gan_basic import (
    GANConfig,
    discriminator_with_classifier,
    generator_net,
    latent_prior,
    mlp_discriminator,
    optimizer_settings,
)
from deepgm.zoo.registry import DataInfo, register

__all__ = ["ACGANConfig", "build_cgan", "build_acgan"]


@dataclass
class ACGANConfig(GANConfig):
    """ACGAN: the weight of the auxiliary classifier's cross-entropy."""

    class_weight: float = 1.0


def _conditional_generator(cfg: GANConfig, data: DataInfo, k: int) -> Deterministic:
    net = OneHotInputs(generator_net(cfg, data, extra_in=k), k, (1,))
    return Deterministic(var=["x"], cond_var=["z", "y"], net=net, name="G")


def _classes(data: DataInfo, name: str) -> int:
    if not data.n_classes:
        raise ValueError(f"{name} needs a labelled dataset (n_classes is {data.n_classes})")
    return data.n_classes


@register("cgan", "Conditional GAN: G(z, y) and D(x, y), non-saturating loss", GANConfig, needs_labels=True,
          pixels="grey")
def build_cgan(cfg: GANConfig, data: DataInfo) -> GAN:
    """The conditional GAN of ``cfg`` for labelled ``data``."""
    k = _classes(data, "cgan")
    gen = (_conditional_generator(cfg, data, k) * latent_prior(cfg)).marginalize_var("z")
    disc = OneHotInputs(Concat(mlp_discriminator(cfg, data.x_dim + k)), k, (1,))
    obj = NonSaturatingGAN(Empirical(var=["x"]), gen, disc, cond=["y"])
    return GAN(obj.mean(), gen, d_steps=cfg.d_steps, **optimizer_settings(cfg))


@register("acgan", "ACGAN: G(z, y); D with a real/fake head and an auxiliary classifier Q(y|x)", ACGANConfig,
          needs_labels=True, pixels="grey")
def build_acgan(cfg: ACGANConfig, data: DataInfo) -> GAN:
    """The auxiliary-classifier GAN of ``cfg`` for labelled ``data``."""
    k = _classes(data, "acgan")
    gen = (_conditional_generator(cfg, data, k) * latent_prior(cfg)).marginalize_var("z")
    disc, classifier = discriminator_with_classifier(cfg, data.x_dim, k)
    q = Categorical(var=["y"], cond_var=["x"], net=LogitsHead(classifier), name="Q")
    adv = NonSaturatingGAN(Empirical(var=["x"]), gen, disc)
    fake_ce = BatchE(gen, -LogProb(q)).mean()
    loss = adv.mean() + cfg.class_weight * fake_ce
    d_extra = cfg.class_weight * ((-LogProb(q)).mean() + BatchE(gen, -LogProb(q), detach=True).mean())
    return GAN(loss, gen, d_steps=cfg.d_steps, **optimizer_settings(cfg), discriminator_extra=d_extra,
               discriminator_modules=[classifier[-1]])  # the head; the body is in D
