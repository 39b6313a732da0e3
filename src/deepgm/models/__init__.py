"""Models (an objective, its distributions, an optimiser) and likelihood estimation."""

from deepgm.models.gan import GAN, MinibatchDiscrimination, discriminator_objective
from deepgm.models.likelihood import log_likelihood
from deepgm.models.model import AuxiliaryObjective, Model, atomic_save
from deepgm.models.presets import ML, VAE, VI

__all__ = ["Model", "AuxiliaryObjective", "VAE", "VI", "ML", "log_likelihood", "atomic_save", "GAN",
           "MinibatchDiscrimination", "discriminator_objective"]
