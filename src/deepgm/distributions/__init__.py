"""Distributions over named variables, conditioned by networks (``p(x|z)``, ``q(z|x)``).

How objectives evaluate them (the protocol, memoisation and the sample-sharing rule): ``docs/protocol.md``.

>>> from deepgm.distributions import Normal
>>> prior = Normal(var=["z"], loc=0.0, scale=1.0, features_shape=[2], name="p_{prior}")
>>> prior
Normal(p_{prior}(z))
"""

from deepgm.distributions.base import Binding, Distribution, JointDistribution, MarginalizedDistribution
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
from deepgm.distributions.slicing import JumpySlice, MultiDeterministic
from deepgm.distributions.special import (
    Deterministic,
    Empirical,
    FromTorch,
    MixtureOfExperts,
    MixtureOfNormal,
    ProductOfNormal,
)

__all__ = [
    "JumpySlice", "MultiDeterministic",
    "Distribution", "JointDistribution", "MarginalizedDistribution", "Env", "Family",
    "Normal", "NormalMixture", "Bernoulli", "Categorical", "RelaxedBernoulli", "RelaxedCategorical", "Laplace", "Beta",
    "Gamma", "Dirichlet", "Multinomial", "Deterministic", "Empirical", "FromTorch", "MixtureOfNormal",
    "ProductOfNormal", "MixtureOfExperts", "Binding", "normal_log_density", "has_analytic_kl", "analytic_kl",
    "analytic_kl_fn", "is_standard_normal",
]
