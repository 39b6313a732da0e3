"""Shared pieces of the flow models of the zoo: preprocessing, the base, the model."""

from __future__ import annotations

from typing import Any, Literal

import torch

from deepgm.distributions import Distribution, Normal
from deepgm.flows import Dequantize, Flow, Logit, StandardLogistic, Transform
from deepgm.models import FlowModel
from deepgm.zoo.registry import DataInfo

Preprocess = Literal["auto", "none", "dequantize", "logit"]


def preprocessing(kind: str, data: DataInfo, levels: int, alpha: float = 0.05) -> list[Transform]:
    """``auto``: dequantise then logit for data in ``[0, 1]`` (``data.binary``), nothing for real-valued
    data (2-D toys); ``dequantize``: dequantisation only; ``logit``: both; ``none``: nothing."""
    if kind == "auto":
        kind = "logit" if data.binary else "none"
    if kind == "none":
        return []
    if kind == "dequantize":
        return [Dequantize(levels)]
    if kind == "logit":
        return [Dequantize(levels), Logit(alpha)]
    raise ValueError(f"preprocess must be 'auto', 'none', 'dequantize' or 'logit', got {kind!r}")


def base_distribution(kind: str, dim: int) -> Distribution:
    """``N(0, I)`` (``normal``) or the standard logistic (``logistic``, NICE's) over ``u``."""
    if kind == "normal":
        return Normal(var=["u"], loc=0.0, scale=1.0, features_shape=[dim], name="p_u")
    if kind == "logistic":
        return StandardLogistic(["u"], features_shape=[dim])
    raise ValueError(f"prior must be 'normal' or 'logistic', got {kind!r}")


def flow_model(transforms: list[Transform], base: Distribution, data: DataInfo, lr: float, **kw: Any) -> FlowModel:
    """``ML`` of the flow ``p(x)`` over flat ``x`` of ``data``, with Adam at ``lr``."""
    flow = Flow(var=["x"], base=base, transforms=transforms, event_shape=[data.x_dim], name="p")
    return FlowModel(flow, optimizer=torch.optim.Adam, optimizer_params={"lr": lr}, **kw)

