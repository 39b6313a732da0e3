"""A VAE with a Gaussian-mixture prior learned jointly (the VAE+GMM coupling of Neuro-SERKET):
``mean(E_{q(z|x)}[log q(z|x) - log p_GMM(z)] - E_q[log p(x|z)])`` by Monte Carlo, where
``p_GMM(z) = Σ_k π_k N(z; μ_k, σ_k²)`` has learnable means, scales and weights; the clusters of the data
are read off the prior's posterior ``p(k|z)``."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from deepgm.distributions import MixtureOfNormal
from deepgm.losses import KL, E, LogProb
from deepgm.models import VAE
from deepgm.zoo.options import at_least, option
from deepgm.zoo.registry import DataInfo, register
from deepgm.zoo.vae import VAEConfig, vae_parts


@dataclass
class GMVAEConfig(VAEConfig):
    """The VAE's options and the number of mixture components (default: the number of classes, or 10)."""

    components: int = option(0, at_least(0))  # 0: the number of classes, or 10


@register("gmm-vae", "VAE with a learned Gaussian-mixture prior; clusters from p(k|z)", GMVAEConfig)
def build_gmm_vae(cfg: GMVAEConfig, data: DataInfo) -> VAE:
    """The GMM-prior VAE of ``cfg`` for ``data``."""
    q, p, _ = vae_parts(cfg, data)
    k = cfg.components or data.n_classes or 10
    g = torch.Generator().manual_seed(0)
    prior = MixtureOfNormal(var=["z"], name="p_{GMM}", loc=2.0 * torch.randn(k, cfg.z_dim, generator=g),
                            scale=1.0, learnable=True)
    loss = (KL(q, prior, analytic=False) - E(q, LogProb(p))).mean()
    return VAE(q, p, prior, loss=loss, optimizer=torch.optim.Adam, optimizer_params={"lr": cfg.lr})


def cluster_of(model: VAE, x: torch.Tensor) -> torch.Tensor:
    """The most probable mixture component of each example's posterior mean."""
    prior = model.prior
    assert isinstance(prior, MixtureOfNormal)
    return prior.posterior({"z": model.encode(x)}).argmax(-1)
