"""Objectives written as expressions: ``(KL(q, prior) - E(q, LogProb(p))).mean()`` is a VAE.

They evaluate (``loss(inputs)``), differentiate through torch, and print (``str(loss)``,
``loss.to_latex()``). See :mod:`deepgm.losses.expr` for when expectations share samples.
"""

from deepgm.losses.adversarial import AdversarialLoss, DensityRatio, LogisticDiscriminator, permute_dims
from deepgm.losses.bounds import ELBO, IWELBO, RenyiBound
from deepgm.losses.core import KL, CrossEntropy, E, Entropy, LogProb
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
from deepgm.losses.iterative import IterativeLoss
from deepgm.losses.mmd import MMD, MMDMixture, median_bandwidth, mmd2_mixture, mmd2_unbiased
from deepgm.losses.regularizers import DIPCovariance, Enumerate, TotalCorrelation

__all__ = [
    "Loss", "Constant", "Parameter", "as_loss", "minimum", "maximum", "LogProb", "E", "KL", "Entropy",
    "CrossEntropy", "ELBO", "IWELBO", "RenyiBound", "REINFORCE", "MMD", "mmd2_unbiased", "median_bandwidth",
    "IterativeLoss", "Enumerate", "DIPCovariance", "TotalCorrelation", "DensityRatio", "LogisticDiscriminator",
    "permute_dims", "AdversarialLoss", "MinimaxGAN", "NonSaturatingGAN", "KLGAN", "Wasserstein", "LeastSquaresGAN",
    "HingeGAN", "FGAN", "FDivergence", "F_DIVERGENCES", "gradient_penalty", "MMDMixture", "mmd2_mixture", "BatchE",
]
