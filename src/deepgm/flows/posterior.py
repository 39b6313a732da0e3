"""Flows in a posterior: ``q(z|x)`` = a diagonal Normal ``N(z₀; μ(x), σ(x))`` followed by planar, radial
or IAF layers conditioned on ``x`` (Rezende & Mohamed 2015; Kingma et al. 2016).

>>> import torch
>>> from deepgm.losses import E, LogProb
>>> q = flow_posterior(x_dim=5, z_dim=2, kind="planar", n_flows=2)
>>> x = torch.randn(3, 5)
>>> q.sample({"x": x})["z"].shape
torch.Size([3, 2])
>>> E(q, LogProb(q))(x=x).shape  # log q(z|x) of its own draws: no inverse of the planar layers needed
torch.Size([3])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from deepgm.distributions import Normal
from deepgm.flows.autoregressive import IAF
from deepgm.flows.base import Inverse, Transform
from deepgm.flows.distribution import Flow
from deepgm.flows.image import ReversePermutation
from deepgm.flows.planar import PlanarFlow, RadialFlow
from deepgm.nn import MLP, NormalHead

__all__ = ["flow_posterior"]


def flow_posterior(x_dim: int, z_dim: int, kind: Literal["planar", "radial", "iaf"] = "planar", n_flows: int = 4,
                   hidden: Sequence[int] = (64,), context_dim: int = 16, activation: str = "relu",
                   var: str = "z", cond_var: str = "x", name: str = "q") -> Flow:
    """``q(z|x)``: ``z₀ ~ N(μ(x), σ(x))`` then ``n_flows`` layers of ``kind`` whose parameters depend on
    ``x`` through a shared ``context_dim``-wide embedding. Draws are reparameterised and carry their own
    ``log q(z|x) = log N(z₀) - Σ_k log|det ∂g_k|`` (no inverse needed)."""
    h = list(hidden)
    base = Normal(var=[f"{var}_0"], cond_var=[cond_var], name=f"{name}_0", features_shape=[z_dim],
                  net=NormalHead(MLP([x_dim, *h], activation, out_activation=activation), h[-1], z_dim))
    sampling: list[Transform] = []  # the order in which they are applied to z₀
    for i in range(n_flows):
        if kind == "planar":
            sampling.append(Inverse(PlanarFlow(z_dim, context_dim)))
        elif kind == "radial":
            sampling.append(Inverse(RadialFlow(z_dim, context_dim)))
        elif kind == "iaf":
            if i:
                sampling.append(ReversePermutation(z_dim))
            sampling.append(IAF(z_dim, h, context_dim))
        else:
            raise ValueError(f"flow_posterior: kind must be 'planar', 'radial' or 'iaf', got {kind!r}")
    embed = MLP([x_dim, *h, context_dim], activation, out_activation=activation)
    return Flow(var=[var], cond_var=[cond_var], name=name, base=base, transforms=sampling[::-1],
                event_shape=[z_dim], context_net=embed)
