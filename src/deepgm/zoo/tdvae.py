"""Temporal-difference VAE (Gregor, Papamakarios, Besse, Buesing & Weber 2019), the one-layer model that
seed 002 writes in Pixyz. A forward RNN's belief ``b_t`` over ``x_{≤t}`` defines ``p_B(z|b)``; at a pair
of steps ``t_1 = t < t_2 = t + δ`` (``δ ~ U{1..max_jump}``, :class:`~deepgm.distributions.JumpySlice`):

    L_t = E_{p_B(z_{t_2}|b_{t_2})} [ D_KL[q(z_{t_1}|z_{t_2},b_{t_1},b_{t_2}) || p_B(z_{t_1}|b_{t_1})]
          + E_q [ log p_B(z_{t_2}|b_{t_2}) - log p_d(x_{t_2}|z_{t_2}) - log p_t(z_{t_2}|z_{t_1}) ] ]

    loss = mean( E_{b = RNN(x)} [ Σ_t L_t ] )

Jumpy predictions: from the belief after some frames, draw ``z ~ p_B(z|b)`` and roll the transition
``p_t`` forward, decoding each state (``figures``: ``jumpy_predictions.png``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from deepgm.distributions import Bernoulli, Deterministic, JumpySlice, Normal
from deepgm.losses import KL, E, IterativeLoss, LogProb
from deepgm.models import SequenceModel, generate_sequences
from deepgm.nn import MLP, ForwardRNN, LogitsHead, NormalHead
from deepgm.zoo.options import at_least, option
from deepgm.zoo.registry import DataInfo, register
from deepgm.zoo.sequence_common import CLIP_GRAD_NORM


@dataclass
class TDVAEConfig:
    """Options of the TD-VAE (each a ``deepgm train tdvae`` flag)."""

    b_dim: int = 128  # belief (GRU state)
    z_dim: int = 8
    hidden: int = 128
    max_jump: int = option(4, at_least(1))
    context: int = option(5, at_least(1))  # frames observed before a jumpy prediction (figures)
    lr: float = 1e-3


@register("tdvae", "TD-VAE: belief states and jumpy transitions t1 < t2 (videos)", TDVAEConfig,
          sequences=True)
def build_tdvae(cfg: TDVAEConfig, data: DataInfo) -> SequenceModel:
    """The TD-VAE of ``cfg`` for videos (or any binary sequences) described by ``data``."""
    x_dim, z, b_dim, hid = data.x_dim, cfg.z_dim, cfg.b_dim, cfg.hidden
    belief_rnn = ForwardRNN(x_dim, b_dim)
    belief = Deterministic(var=["b"], cond_var=["x"], net=belief_rnn, name="f_{belief}")
    belief_net = NormalHead(MLP([b_dim, hid], "relu", out_activation="relu"), hid, z)
    p_b1 = Normal(var=["z_t1"], cond_var=["b_t1"], net=belief_net, name="p_B")
    p_b2 = Normal(var=["z_t2"], cond_var=["b_t2"], net=belief_net, name="p_B")
    q = Normal(var=["z_t1"], cond_var=["z_t2", "b_t1", "b_t2"], name="q",
               net=NormalHead(MLP([z + 2 * b_dim, hid], "relu", out_activation="relu"), hid, z))
    p_t = Normal(var=["z_t2"], cond_var=["z_t1"], name="p_t",
                 net=NormalHead(MLP([z, hid], "relu", out_activation="relu"), hid, z))
    p_d = Bernoulli(var=["x_t2"], cond_var=["z_t2"], name="p_d", event_ndim=len(data.x_shape),
                    net=LogitsHead(nn.Sequential(MLP([z, hid, x_dim], "relu"), nn.Unflatten(-1, data.x_shape))))
    jump = JumpySlice(at_t1=["b"], at_t2=["x", "b"], max_jump=cfg.max_jump)

    reconst = E(q, LogProb(p_b2) - LogProb(p_d) - LogProb(p_t))
    step = E(p_b2, KL(q, p_b1) + reconst)
    per_sequence = E(belief, IterativeLoss(step, series_var=["x", "b"], slice_step=jump, mask_var="mask",
                                           time_dim=1))

    @torch.no_grad()
    def jumpy_predictions(test: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The first ``context`` frames of 8 test videos, then a rollout of as many jumpy transitions."""
        x = test["x"][:8]
        seen = min(cfg.context, x.shape[1] - 1)
        b = belief_rnn(x[:, :seen])["loc"][:, -1]
        z0 = p_b1.sample({"b_t1": b})["z_t1"]
        states = generate_sequences([p_t], len(x), x.shape[1] - seen, {"z_t2": "z_t1"}, {}, start={"z_t1": z0})["z_t2"]
        frames = p_d.mean({"z_t2": states.flatten(0, 1)}).reshape(*states.shape[:2], *x.shape[2:])
        return torch.cat([x[:, :seen], frames], 1)  # observed frames, then the decoded jumpy states

    return SequenceModel(
        per_sequence.mean(), [belief, p_b1, p_b2, q, p_t, p_d], elbo=-per_sequence, elbo_name="tdvae_loss",
        extra_figures={"jumpy_predictions": jumpy_predictions},
        optimizer=torch.optim.Adam, optimizer_params={"lr": cfg.lr}, clip_grad_norm=CLIP_GRAD_NORM,
    )
