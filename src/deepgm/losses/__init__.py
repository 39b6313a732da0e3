"""Objectives written as expressions: ``(KL(q, prior) - E(q, LogProb(p))).mean()`` is a VAE.

They evaluate (``loss(inputs)``), differentiate through torch, and print (``str(loss)``,
``loss.to_latex()``). See :mod:`deepgm.losses.expr` for when expectations share samples.

>>> import torch
>>> from deepgm.distributions import Bernoulli, Normal
>>> from deepgm.nn import MLP, LogitsHead, NormalHead
>>> q = Normal(var=["z"], cond_var=["x"], net=NormalHead(MLP([4, 8], "relu"), 8, 2), name="q")
>>> p = Bernoulli(var=["x"], cond_var=["z"], net=LogitsHead(MLP([2, 8, 4], "relu")), name="p")
>>> prior = Normal(var=["z"], loc=0.0, scale=1.0, features_shape=[2], name="p_{prior}")
>>> vae = (KL(q, prior) - E(q, LogProb(p))).mean()
>>> print(vae)
mean(D_KL[q(z|x)||p_{prior}(z)] - E_{q(z|x)}[log p(x|z)])
>>> vae.input_var, vae(x=torch.ones(3, 4)).shape  # a scalar to minimise
(['x'], torch.Size([]))
"""

from deepgm.losses.adversarial import AdversarialLoss, DensityRatio, LogisticDiscriminator, permute_dims
from deepgm.losses.bounds import ELBO, IWELBO, RenyiBound
from deepgm.losses.core import KL, CrossEntropy, E, Entropy, LogProb
from deepgm.losses.energy import NCE, ContrastiveDivergence, DenoisingScoreMatching, Energy, ScoreMatching
from deepgm.losses.estimators import REINFORCE
from deepgm.losses.expr import Constant, Loss, Parameter, as_loss, maximum, minimum
from deepgm.losses.gan import (
    F_DIVERGENCES,
    FGAN,
    KLGAN,
    BatchE,
    FDivergence,
    HingeGAN,
    LeastSquaresGAN,
    MinimaxGAN,
    NonSaturatingGAN,
    Wasserstein,
    gradient_penalty,
)
from deepgm.losses.iterative import InitialState, IterativeLoss, Scan
from deepgm.losses.mmd import MMD, MMDMixture, median_bandwidth, mmd2_mixture, mmd2_unbiased
from deepgm.losses.regularizers import DIPCovariance, Enumerate, TotalCorrelation
from deepgm.losses.smc import SMCBound, fivo, sequence_iwae, systematic_resample
from deepgm.losses.terms import SquaredError, SumOver

__all__ = [
    "SumOver", "SquaredError",
    "Energy", "ContrastiveDivergence", "ScoreMatching", "DenoisingScoreMatching", "NCE",
    "Loss", "Constant", "Parameter", "as_loss", "minimum", "maximum", "LogProb", "E", "KL", "Entropy",
    "CrossEntropy", "ELBO", "IWELBO", "RenyiBound", "REINFORCE", "MMD", "mmd2_unbiased", "median_bandwidth",
    "IterativeLoss", "Enumerate", "DIPCovariance", "TotalCorrelation", "DensityRatio", "LogisticDiscriminator",
    "permute_dims", "AdversarialLoss", "MinimaxGAN", "NonSaturatingGAN", "KLGAN", "Wasserstein", "LeastSquaresGAN",
    "HingeGAN", "FGAN", "FDivergence", "F_DIVERGENCES", "gradient_penalty", "MMDMixture", "mmd2_mixture", "BatchE",
    "InitialState", "Scan", "SMCBound", "fivo", "sequence_iwae", "systematic_resample",
]
