"""A flow trained by maximum likelihood, with sampling and exact likelihoods for evaluation."""

from __future__ import annotations

import math
from typing import Any

import torch

from deepgm.flows.distribution import Flow
from deepgm.losses.core import LogProb
from deepgm.losses.expr import Loss
from deepgm.models.model import Model
from deepgm.models.presets import ML

__all__ = ["FlowModel"]


class FlowModel(ML):
    """``ML(flow)``: minimise ``-mean(log p(x)) [+ regularizer]`` (the regulariser is evaluated after the
    log-density, e.g. FFJORD's kinetic energy of that solve); ``generate``, ``log_likelihood`` (exact) and
    ``bits_per_dim`` serve evaluation and plots."""

    def __init__(self, flow: Flow, regularizer: Loss | None = None, **model_kwargs: Any) -> None:
        if not isinstance(flow, Flow):
            raise TypeError(f"FlowModel needs a deepgm.flows.Flow, got {type(flow).__name__}")
        loss = -LogProb(flow).mean()
        if regularizer is not None:
            loss = loss + regularizer
        Model.__init__(self, loss, [flow], **model_kwargs)

    @property
    def flow(self) -> Flow:
        """The flow ``p(x)``."""
        return self.distributions[0]  # type: ignore[return-value]

    @torch.no_grad()
    def generate(self, n: int, **conditions: torch.Tensor) -> torch.Tensor:
        """``n`` draws of ``x`` (one per condition row when conditions are given)."""
        was = self.training
        self.eval()
        try:
            out = self.flow.sample(dict(conditions), batch_n=None if conditions else n)
        finally:
            self.train(was)
        return out[self.flow.var[0]]

    @torch.no_grad()
    def log_likelihood(self, x: torch.Tensor, batch_size: int = 500, **conditions: torch.Tensor) -> torch.Tensor:
        """The exact ``log p(x)`` of every data point (eval mode: deterministic preprocessing)."""
        was = self.training
        self.eval()
        try:
            parts = []
            for i in range(0, len(x), batch_size):
                cond = {k: v[i:i + batch_size] for k, v in conditions.items()}
                parts.append(self.flow.log_prob({self.flow.var[0]: x[i:i + batch_size], **cond}))
        finally:
            self.train(was)
        return torch.cat(parts)

    def bits_per_dim(self, x: torch.Tensor, **conditions: torch.Tensor) -> float:
        """``-mean log p(x) / (D ln 2)``."""
        d = math.prod(self.flow.event_shape)
        return float(-self.log_likelihood(x, **conditions).mean() / (d * math.log(2)))
