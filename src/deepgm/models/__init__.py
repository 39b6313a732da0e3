"""Models (an objective, its distributions, an optimiser) and likelihood estimation; every family (VAE,
FlowModel, GAN, ...) evaluates and draws itself (:mod:`deepgm.models.evaluation`).

>>> import torch
>>> from deepgm.distributions import Normal
>>> from deepgm.losses import LogProb
>>> p = Normal(var=["x"], loc=torch.nn.Parameter(torch.zeros(2)), scale=1.0)
>>> model = Model(-LogProb(p).mean(), [p])  # Adam by default
>>> type(model.train_step({"x": torch.randn(8, 2)})), isinstance(model, Evaluates)
(<class 'float'>, True)
"""

from deepgm.models.autoregressive import AutoregressiveModel, PixelVAE
from deepgm.models.diffusion import DDPM
from deepgm.models.evaluation import Evaluates
from deepgm.models.flow import FlowModel
from deepgm.models.gan import GAN, discriminator_objective
from deepgm.models.likelihood import log_likelihood
from deepgm.models.model import AuxiliaryObjective, Model
from deepgm.models.presets import ML, VAE, VI
from deepgm.models.sequential import SequenceModel, generate_sequences

__all__ = ["DDPM", "Model", "AuxiliaryObjective", "VAE", "VI", "ML", "log_likelihood", "GAN",
           "discriminator_objective", "FlowModel", "Evaluates", "SequenceModel", "generate_sequences",
           "AutoregressiveModel", "PixelVAE"]
