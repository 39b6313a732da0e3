"""Distributions over named variables, conditioned by networks (``p(x|z)``, ``q(z|x)``).

How objectives evaluate them (the protocol, memoisation and the sample-sharing rule): ``docs/protocol.md``.

>>> from deepgm.distributions import Normal
>>> prior = Normal(var=["z"], loc=0.0, scale=1.0, features_shape=[2], name="p_{prior}")
>>> prior
Normal(p_{prior}(z))
"""

from deepgm.distributions.autoregressive import NADE, Autoregressive, BinaryMADE
from deepgm.distributions.base import Binding, Distribution, JointDistribution, MarginalizedDistribution
from deepgm.distributions.diffusion import DiffusionProcess, NoiseSchedule
from deepgm.distributions.discretized_normal import DiscretizedNormal
from deepgm.distributions.energy import EnergyDistribution
from deepgm.distributions.env import Env
from deepgm.distributions.families import (
    Bernoulli,
    Beta,
    Categorical,
    Dirichlet,
    Gamma,
    Laplace,
    Multinomial,
    Normal,
    NormalMixture,
    RelaxedBernoulli,
    RelaxedCategorical,
    normal_log_density,
)
from deepgm.distributions.family import Family
from deepgm.distributions.kl import analytic_kl, analytic_kl_fn, has_analytic_kl, is_standard_normal
from deepgm.distributions.logistic_mixture import DiscretizedLogisticMixture
from deepgm.distributions.mcmc import MALA, Langevin, MCMCSampler, ReplayBuffer
from deepgm.distributions.pixelcnn import GatedPixelCNN, PixelAutoregressive, PixelCNN, sampling_speed
from deepgm.distributions.rbm import RBM, AISResult, Gibbs, ais_log_partition
from deepgm.distributions.slicing import JumpySlice, MultiDeterministic
from deepgm.distributions.special import (
    Deterministic,
    Empirical,
    FromTorch,
    MixtureOfExperts,
    MixtureOfNormal,
    ProductOfNormal,
)
from deepgm.distributions.uniform import DiscreteUniform

__all__ = [
    "DiscreteUniform", "DiscretizedNormal", "NoiseSchedule", "DiffusionProcess",
    "Autoregressive", "NADE", "BinaryMADE", "PixelAutoregressive", "PixelCNN", "GatedPixelCNN", "sampling_speed",
    "DiscretizedLogisticMixture",
    "EnergyDistribution", "MCMCSampler", "Langevin", "MALA", "ReplayBuffer", "RBM", "Gibbs", "AISResult",
    "ais_log_partition",
    "JumpySlice", "MultiDeterministic",
    "Distribution", "JointDistribution", "MarginalizedDistribution", "Env", "Family",
    "Normal", "NormalMixture", "Bernoulli", "Categorical", "RelaxedBernoulli", "RelaxedCategorical", "Laplace", "Beta",
    "Gamma", "Dirichlet", "Multinomial", "Deterministic", "Empirical", "FromTorch", "MixtureOfNormal",
    "ProductOfNormal", "MixtureOfExperts", "Binding", "normal_log_density", "has_analytic_kl", "analytic_kl",
    "analytic_kl_fn", "is_standard_normal",
]
