"""The model zoo: one file per model, each a user of the core's public API, each registered by name."""

from deepgm.zoo import (  # noqa: F401
    beta_tcvae,
    beta_vae,
    cvae,
    dip_vae,
    dmm,
    factor_vae,
    ffjord,
    gan_basic,
    gan_bigan,
    gan_conditional,
    gan_dcgan,
    gan_infogan,
    gan_mmd,
    gmvae,
    gqn,
    infovae,
    iwae,
    iwae2,
    jmvae,
    m2,
    maf,
    mmvae,
    mvae,
    nice,
    realnvp,
    srnn,
    tdvae,
    vae,
    vae_flow,
    vrnn,
)
from deepgm.zoo.registry import REGISTRY, DataInfo, ZooEntry, get, names, register
from deepgm.zoo.runs import Run, RunNotFoundError, load_run, write_run

__all__ = ["REGISTRY", "DataInfo", "ZooEntry", "get", "names", "register", "Run", "RunNotFoundError", "load_run",
           "write_run"]
