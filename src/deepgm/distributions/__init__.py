"""Distributions over named variables, conditioned by networks (``p(x|z)``, ``q(z|x)``).

>>> from deepgm.distributions import Normal
>>> prior = Normal(var=["z"], loc=0.0, scale=1.0, features_shape=[2], name="p_{prior}")
>>> prior
Normal(p_{prior}(z))
"""

from deepgm.distributions.base import Distribution, JointDistribution, MarginalizedDistribution
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
    RelaxedBernoulli,
    RelaxedCategorical,
)
from deepgm.distributions.family import Family
from deepgm.distributions.special import (
    Deterministic,
    Empirical,
    FromTorch,
    MixtureOfExperts,
    MixtureOfNormal,
    ProductOfNormal,
)

__all__ = [
    "Distribution", "JointDistribution", "MarginalizedDistribution", "Env", "Family",
    "Normal", "Bernoulli", "Categorical", "RelaxedBernoulli", "RelaxedCategorical", "Laplace", "Beta",
    "Gamma", "Dirichlet", "Multinomial", "Deterministic", "Empirical", "FromTorch", "MixtureOfNormal",
    "ProductOfNormal", "MixtureOfExperts",
]
