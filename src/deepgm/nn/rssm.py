"""Networks of a recurrent state-space model (PlaNet's RSSM, Hafner et al. 2019) over vector observations.

A deterministic state ``h`` (a GRU's) and a stochastic state ``s`` step as

    h_{t+1} = GRU(h_t, φ([s_t, a_t])),   s_t ~ q(s_t | h_t, o_t)  (filtering)  or  p(s_t | h_t)  (prior)

:class:`RSSMTransition` is the deterministic step, :class:`PosteriorHead` the posterior ``q(s|h, o)``;
:class:`RSSMFilter` runs both over whole sequences (``h_{0:T}``, ``s_{0:T}``, one Python step per time step:
the parts of every step that do not depend on the recurrence — the observation's and the action's input
layers — are computed for all steps at once before the loop), and :class:`OpenLoopRollout` rolls the prior
forward ``k = 1..K`` steps from every filtered state at once (latent overshooting). Scales are
``softplus(·) + min_std``. Each layer that reads a concatenation ``[x, y]`` is written as two linear maps
``W_x x + W_y y`` (the same function), so the part of a step that the recurrence does not need is not
recomputed inside the loop.

>>> import torch
>>> trans, post = RSSMTransition(state=3, action=1, deterministic=5, hidden=4), PosteriorHead(5, 2, 4, 3)
>>> rssm = RSSMFilter(trans, post)
>>> h, s, h_next = rssm(torch.zeros(2, 7, 2), torch.zeros(2, 6, 1))  # o_0..o_6 and a_0..a_5
>>> h.shape, s.shape, h_next.shape
(torch.Size([2, 7, 5]), torch.Size([2, 7, 3]), torch.Size([2, 6, 5]))
>>> bool(torch.equal(h_next, h[:, 1:])), bool(torch.equal(h[:, 0], rssm.h0.expand(2, 5)))
(True, True)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepgm.nn.mlp import call

__all__ = ["RSSMTransition", "PosteriorHead", "RSSMFilter", "OpenLoopRollout", "StopGradient"]


def _linear(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    out: torch.Tensor = call(layer, x)
    return out


class RSSMTransition(nn.Module):
    """The deterministic step ``h' = GRU(h, elu(W_s s + W_a a + b))`` (PlaNet's: one dense layer of
    ``hidden`` units before the GRU cell). :meth:`action_features` is the ``W_a a + b`` part, which a
    sequence's loop computes for all its steps at once; :meth:`step` takes it."""

    def __init__(self, state: int, action: int, deterministic: int, hidden: int) -> None:
        super().__init__()
        self.from_state = nn.Linear(state, hidden, bias=False)
        self.from_action = nn.Linear(action, hidden)
        self.cell = nn.GRUCell(hidden, deterministic)

    def action_features(self, a: torch.Tensor) -> torch.Tensor:
        """``W_a a + b`` for actions of any leading shape ``(..., action)``."""
        return _linear(self.from_action, a)

    def step(self, h: torch.Tensor, s: torch.Tensor, action_features: torch.Tensor) -> torch.Tensor:
        """``h'`` (N, deterministic) from ``h`` (N, deterministic), ``s`` (N, state) and the actions' features."""
        x = F.elu(_linear(self.from_state, s) + action_features)
        cell = self.cell
        return torch.gru_cell(x, h, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)

    def forward(self, h: torch.Tensor, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """``h'`` for any leading shape ``(..., ·)`` (folded into one batch for the cell and restored)."""
        lead = h.shape[:-1]
        out = self.step(h.reshape(-1, h.shape[-1]), s.reshape(-1, s.shape[-1]),
                        self.action_features(a).reshape(-1, self.cell.input_size))
        return out.reshape(*lead, out.shape[-1])


class PosteriorHead(nn.Module):
    """``q(s | h, o) = N(loc, scale²)`` with ``[loc, ρ] = W elu(W_h h + W_o o + b) + c`` and
    ``scale = softplus(ρ) + min_std``: as a network of a Normal, ``(h, o) -> {"loc", "scale"}``.
    :meth:`embed` is the ``W_o o + b`` part (a sequence's loop computes it for all steps at once)."""

    def __init__(self, deterministic: int, observation: int, hidden: int, state: int, min_std: float = 0.1) -> None:
        super().__init__()
        self.from_h = nn.Linear(deterministic, hidden, bias=False)
        self.from_o = nn.Linear(observation, hidden)
        self.out = nn.Linear(hidden, 2 * state)
        self.min_std = min_std

    def embed(self, o: torch.Tensor) -> torch.Tensor:
        """``W_o o + b`` for observations of any leading shape."""
        return _linear(self.from_o, o)

    def step(self, h: torch.Tensor, embedded: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(loc, scale)`` of ``q(s|h, o)`` from ``h`` and ``embed(o)``."""
        loc, rho = _linear(self.out, F.elu(_linear(self.from_h, h) + embedded)).chunk(2, -1)
        return loc, F.softplus(rho) + self.min_std

    def forward(self, h: torch.Tensor, o: torch.Tensor) -> dict[str, torch.Tensor]:
        loc, scale = self.step(h, self.embed(o))
        return {"loc": loc, "scale": scale}


class RSSMFilter(nn.Module):
    """The filter over batch-first sequences: observations ``o`` (B, T+1, D) and actions ``a`` (B, T, A)
    give ``h`` (B, T+1, H), ``s`` (B, T+1, S) and ``h_next = h[:, 1:]`` (B, T, H), where ``h_0`` is learned,
    ``s_t ~ q(s_t|h_t, o_t)`` (reparameterised; ``reparam=False`` detaches the draws) and
    ``h_{t+1} = transition(h_t, s_t, a_t)``."""

    def __init__(self, transition: RSSMTransition, posterior: PosteriorHead) -> None:
        super().__init__()
        self.transition, self.posterior = transition, posterior
        self.h0 = nn.Parameter(torch.zeros(transition.cell.hidden_size))

    def forward(self, o: torch.Tensor, a: torch.Tensor,
                reparam: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        transition, posterior = self.transition, self.posterior
        steps = a.shape[1]
        embedded = posterior.embed(o).unbind(1)
        actions = transition.action_features(a).unbind(1)
        h = self.h0.expand(o.shape[0], self.h0.shape[0])
        noise = torch.randn(o.shape[0], steps + 1, posterior.out.out_features // 2, dtype=o.dtype,
                            device=o.device).unbind(1)
        hs, ss = [], []
        for t in range(steps + 1):
            loc, scale = posterior.step(h, embedded[t])
            s = loc + scale * noise[t]
            if not reparam:
                s = s.detach()
            hs.append(h)
            ss.append(s)
            if t < steps:
                h = transition.step(h, s, actions[t])
        h_all = torch.stack(hs, 1)
        return h_all, torch.stack(ss, 1), h_all[:, 1:]


class OpenLoopRollout(nn.Module):
    """The prior rolled forward from every filtered state at once, for latent overshooting: given ``h``
    (B, T+1, H) and the actions ``a`` (B, T, A), returns ``g`` (K, B, T+1, H) where ``g[k-1, :, t]`` is
    the deterministic state at ``t`` after ``k`` steps in which ``s`` was drawn from the prior
    ``p(s|·)`` (``prior(h) -> {"loc", "scale"}``), starting from the filtered ``h_{t-k}``:

        g^0 = h,   s^{k-1}_t ~ p(s | g^{k-1}_t),   g^k_t = transition(g^{k-1}_{t-1}, s^{k-1}_{t-1}, a_{t-1})

    ``g^k_t`` for ``t ≤ k`` starts from the learned ``h_0`` (no posterior state) or is filler (``t = 0``):
    a caller weighs those out."""

    def __init__(self, transition: RSSMTransition, prior: nn.Module, distances: int) -> None:
        super().__init__()
        if distances < 1:
            raise ValueError(f"OpenLoopRollout: distances must be at least 1, got {distances}")
        self.transition, self.prior, self.distances = transition, prior, distances

    def forward(self, h: torch.Tensor, a: torch.Tensor, reparam: bool = True) -> tuple[torch.Tensor]:
        actions = self.transition.action_features(a)
        lead = h.shape[:2]
        g, out = h, []
        for _ in range(self.distances):
            params = call(self.prior, g)
            s = params["loc"] + params["scale"] * torch.randn_like(params["loc"])
            if not reparam:
                s = s.detach()
            cell = self.transition
            nxt = cell.step(g[:, :-1].reshape(-1, g.shape[-1]), s[:, :-1].reshape(-1, s.shape[-1]),
                            actions.reshape(-1, actions.shape[-1]))
            g = torch.cat([g[:, :1], nxt.reshape(lead[0], lead[1] - 1, -1)], 1)
            out.append(g)
        return (torch.stack(out),)


class StopGradient(nn.Module):
    """``net``'s outputs (a dict of parameters) without gradients: the stop-gradient ``sg[q]`` of a
    distribution that another term should not move (the posterior in latent overshooting's KL)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, *inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            out: dict[str, torch.Tensor] = call(self.net, *inputs)
        return out
