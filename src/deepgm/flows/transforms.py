"""Every transform of :mod:`deepgm.flows`, in one namespace.

>>> import torch
>>> f = Compose([Reshape((4,), (1, 2, 2)), Squeeze(), Reshape((4, 1, 1), (4,)), ReversePermutation(4)])
>>> y, logdet = f(torch.tensor([[1.0, 2.0, 3.0, 4.0]]))  # volume-preserving: log|det J| = 0
>>> y, logdet
(tensor([[4., 3., 2., 1.]]), tensor([0.]))
"""

from deepgm.flows.autoregressive import IAF, MADE, MAF, MaskedAffineAutoregressive, MaskedLinear
from deepgm.flows.base import (
    Compose,
    ConvConditioner,
    Inverse,
    MLPConditioner,
    NotInvertibleError,
    Transform,
)
from deepgm.flows.continuous import CNF, FFJORD, ODENet, exact_trace, hutchinson_trace, sample_noise
from deepgm.flows.coupling import (
    AdditiveCoupling,
    AffineCoupling,
    RQSplineCoupling,
    Scaling,
    alternating_mask,
    channel_mask,
    checkerboard_mask,
)
from deepgm.flows.image import (
    FactorOut,
    InvertibleConv1x1,
    Permutation,
    RandomPermutation,
    Reshape,
    ReversePermutation,
    Squeeze,
    multiscale_realnvp,
)
from deepgm.flows.normalization import ActNorm, BatchNormFlow
from deepgm.flows.planar import PlanarFlow, RadialFlow
from deepgm.flows.preprocessing import Dequantize, Logit, bits_per_dim
from deepgm.flows.spline import rq_spline

__all__ = [
    "Transform", "Inverse", "Compose", "NotInvertibleError", "MLPConditioner", "ConvConditioner",
    "AdditiveCoupling", "AffineCoupling", "RQSplineCoupling", "Scaling", "alternating_mask", "checkerboard_mask",
    "channel_mask", "MADE", "MaskedLinear", "MAF", "IAF", "MaskedAffineAutoregressive", "PlanarFlow", "RadialFlow",
    "CNF", "FFJORD", "ODENet", "exact_trace", "hutchinson_trace", "sample_noise",
    "BatchNormFlow", "ActNorm", "InvertibleConv1x1", "Squeeze", "Reshape", "Permutation", "ReversePermutation",
    "RandomPermutation", "FactorOut", "multiscale_realnvp", "Dequantize", "Logit", "bits_per_dim", "rq_spline",
]
