"""FFJORD (Grathwohl et al. 2019): a continuous normalising flow with Hutchinson's trace estimator,
optionally regularised by the kinetic energy and Jacobian norm (Finlay et al. 2020)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from deepgm.distributions import Env
from deepgm.flows import CNF, Flow, ODENet, Transform
from deepgm.losses.expr import Loss
from deepgm.models import FlowModel
from deepgm.zoo.flows_common import Preprocess, base_distribution, preprocessing
from deepgm.zoo.options import at_least, non_negative, option
from deepgm.zoo.registry import DataInfo, register


@dataclass
class FFJORDConfig:
    """Options of FFJORD (each a ``deepgm train ffjord`` flag). ``solver``: ``rk4``/``euler`` (built in,
    ``steps`` fixed steps) or an adaptive torchdiffeq method (``dopri5``; needs torchdiffeq)."""

    hidden: tuple[int, ...] = (64, 64)
    blocks: int = 1
    trace: Literal["hutchinson", "exact"] = "hutchinson"
    noise: Literal["rademacher", "gaussian"] = "rademacher"
    solver: str = "rk4"
    steps: int = 4
    atol: float = 1e-5
    rtol: float = 1e-5
    adjoint: bool = False
    exact_eval_below: int = option(16, at_least(0))  # evaluate with the exact trace when x has at most this many values
    kinetic: float = option(0.0, non_negative())
    jacobian: float = option(0.0, non_negative())
    preprocess: Preprocess = "auto"
    levels: int = option(256, at_least(2))
    lr: float = 1e-3


class _Regularizer(Loss):
    """``mean(λ_K ∫‖f‖² dt + λ_J ∫‖εᵀ∂f/∂z‖² dt)`` of the CNF blocks' last solve (evaluate after the NLL)."""

    def __init__(self, blocks: list[CNF], kinetic: float, jacobian: float) -> None:
        self.blocks, self.kinetic, self.jacobian = blocks, kinetic, jacobian

    def _eval(self, env: Env) -> torch.Tensor:
        total = torch.zeros(())
        for b in self.blocks:
            r = b.regularization
            total = total + self.kinetic * r["kinetic"].mean() + self.jacobian * r["jacobian"].mean()
        return total

    def _render(self, latex: bool) -> str:
        return r"\mathcal{R}_{K,J}" if latex else "R_KJ"


@register("ffjord", "FFJORD: continuous normalising flow, Hutchinson trace (2-D toys)", FFJORDConfig, pixels="grey")
def build_ffjord(cfg: FFJORDConfig, data: DataInfo) -> FlowModel:
    """FFJORD for flat ``x`` of ``data``: ``[dequantise → logit] → CNF × blocks``."""
    d = data.x_dim
    ts: list[Transform] = preprocessing(cfg.preprocess, data, cfg.levels)
    eval_trace = "exact" if d <= cfg.exact_eval_below else cfg.trace
    blocks = [CNF(ODENet(d, cfg.hidden), d, trace=cfg.trace, noise=cfg.noise, solver=cfg.solver,  # type: ignore[arg-type]
                  steps=cfg.steps, atol=cfg.atol, rtol=cfg.rtol, adjoint=cfg.adjoint, eval_trace=eval_trace)
              for _ in range(cfg.blocks)]
    flow = Flow(var=["x"], base=base_distribution("normal", d), transforms=[*ts, *blocks], event_shape=[d], name="p")
    reg = _Regularizer(blocks, cfg.kinetic, cfg.jacobian) if cfg.kinetic or cfg.jacobian else None
    return FlowModel(flow, regularizer=reg, optimizer=torch.optim.Adam, optimizer_params={"lr": cfg.lr})
