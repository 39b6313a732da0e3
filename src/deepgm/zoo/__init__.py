"""The model zoo: one file per model, each a user of the core's public API, each registered by name."""

from deepgm.zoo import beta_tcvae, beta_vae, cvae, dip_vae, factor_vae, gmvae, infovae, iwae, iwae2, vae  # noqa: F401
from deepgm.zoo.registry import REGISTRY, DataInfo, ZooEntry, get, names, register

__all__ = ["REGISTRY", "DataInfo", "ZooEntry", "get", "names", "register"]
