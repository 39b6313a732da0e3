"""Normalising flows: invertible transforms with tractable Jacobians, and :class:`Flow`, the distribution
over a named variable they make of a base distribution (exact ``log_prob``, ``sample`` by the inverse).

>>> import torch
>>> from deepgm.distributions import Normal
>>> from deepgm.flows import AffineCoupling, Flow, alternating_mask
>>> base = Normal(var=["u"], loc=0.0, scale=1.0, features_shape=[2])
>>> p = Flow(var=["x"], base=base, transforms=[AffineCoupling(alternating_mask(2, i % 2)) for i in range(4)])
>>> p.log_prob({"x": torch.zeros(3, 2)}).shape
torch.Size([3])
"""

from deepgm.flows.distribution import Flow, StandardLogistic
from deepgm.flows.inpaint import inpaint, inpaint_sample
from deepgm.flows.posterior import flow_posterior
from deepgm.flows.transforms import *  # noqa: F403
from deepgm.flows.transforms import __all__ as _transforms

__all__ = ["Flow", "StandardLogistic", "flow_posterior", "inpaint", "inpaint_sample",
           *_transforms]
