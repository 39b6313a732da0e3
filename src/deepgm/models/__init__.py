"""Models (an objective, its distributions, an optimiser) and likelihood estimation; every family (VAE,
FlowModel, GAN, ...) evaluates and draws itself (:mod:`deepgm.models.evaluation`)."""

from deepgm.models.evaluation import Evaluates
from deepgm.models.flow import FlowModel
from deepgm.models.gan import GAN, discriminator_objective
from deepgm.models.likelihood import log_likelihood
from deepgm.models.model import AuxiliaryObjective, Model
from deepgm.models.presets import ML, VAE, VI

__all__ = ["Model", "AuxiliaryObjective", "VAE", "VI", "ML", "log_likelihood", "GAN",
           "discriminator_objective", "FlowModel", "Evaluates"]
