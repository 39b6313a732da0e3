"""Networks of sequential latent-variable models: recurrent cells as state updates, a backward RNN over
padded sequences, the DMM's gated transition and combiner.

A recurrent cell is a state update: :class:`LSTMStep` returns ``(h', c')`` (for a
:class:`~deepgm.distributions.MultiDeterministic` over both), :class:`GRUState` ``{"loc": h'}`` (for a
``Deterministic``).

>>> h, c = LSTMStep([3], 4)(torch.zeros(2, 3), torch.zeros(2, 4), torch.zeros(2, 4))
>>> h.shape, c.shape
(torch.Size([2, 4]), torch.Size([2, 4]))
>>> rnn = BackwardRNN(3, 5)
>>> x, mask = torch.randn(2, 4, 3), torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 0.0, 0.0]])
>>> h = rnn(x, mask)["loc"]  # h_t summarises x_t, ..., x_{T_i} of each sequence i
>>> bool(torch.allclose(h[1, :2], rnn(x[1:, :2], mask[1:, :2])["loc"][0]))  # padding changes nothing
True
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from deepgm.nn.mlp import call

__all__ = ["LSTMStep", "GRUState", "BackwardRNN", "ForwardRNN", "RNNStep", "GatedTransition",
           "Combiner", "reverse_padded"]


class LSTMStep(nn.Module):
    """``(h', c') = LSTMCell([inputs...], (h, c))``: the last two inputs are the state, the others are
    concatenated (leading dimensions beyond the batch are folded and restored)."""

    def __init__(self, input_sizes: Sequence[int], hidden: int) -> None:
        super().__init__()
        self.cell = nn.LSTMCell(sum(input_sizes), hidden)

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        *xs, h, c = inputs
        x = xs[0] if len(xs) == 1 else torch.cat(xs, -1)
        if x.dim() == 2:
            return call(self._modules["cell"], x, (h, c))  # type: ignore[arg-type,no-any-return]
        lead = x.shape[:-1]
        h2, c2 = self.cell(x.reshape(-1, x.shape[-1]), (h.reshape(-1, h.shape[-1]), c.reshape(-1, c.shape[-1])))
        return h2.reshape(*lead, -1), c2.reshape(*lead, -1)


class GRUState(nn.Module):
    """``h' = GRUCell([inputs...], h)`` as ``{"loc": h'}``; the last input is the state ``h``."""

    def __init__(self, input_sizes: Sequence[int], hidden: int) -> None:
        super().__init__()
        self.cell = nn.GRUCell(sum(input_sizes), hidden)

    def forward(self, *inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        *xs, h = inputs
        x = xs[0] if len(xs) == 1 else torch.cat(xs, -1)
        lead = x.shape[:-1]
        out = self.cell(x.reshape(-1, x.shape[-1]), h.reshape(-1, h.shape[-1]))
        return {"loc": out.reshape(*lead, out.shape[-1])}


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each sequence of the batch-first ``x`` reversed within its own length (padding stays at the end)."""
    t = torch.arange(x.shape[1], device=x.device)
    index = (lengths.unsqueeze(1) - 1 - t).clamp(min=0)
    index = torch.where(t < lengths.unsqueeze(1), index, t)
    return x.gather(1, index.reshape(*index.shape, *([1] * (x.dim() - 2))).expand_as(x))


class BackwardRNN(nn.Module):
    """``h_t = RNN(x_t, h_{t+1})`` run from each sequence's last real step back to its first, over
    batch-first padded ``x`` with a 0/1 ``mask`` (the last input; several series before it are
    concatenated per step); returns ``{"loc": h}`` (B, T, hidden), zero on padding. The initial state is
    learned."""

    def __init__(self, x_dim: int, hidden: int, nonlinearity: str = "relu") -> None:
        super().__init__()
        self.rnn = nn.RNN(x_dim, hidden, nonlinearity=nonlinearity, batch_first=True)
        self.h0 = nn.Parameter(torch.zeros(1, 1, hidden))

    def forward(self, *inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        *xs, mask = inputs  # several series are concatenated per step
        x = torch.cat([v.flatten(2) for v in xs], -1) if len(xs) > 1 else xs[0].flatten(2)
        lengths = mask.sum(1).long()
        rev = reverse_padded(x, lengths)
        h, _ = self.rnn(rev, self.h0.expand(1, x.shape[0], -1).contiguous())
        return {"loc": reverse_padded(h, lengths) * mask.unsqueeze(-1)}


class ForwardRNN(nn.Module):
    """``d_t = GRU(u_t, d_{t-1})`` over batch-first sequences (``x`` flattened per step), returning
    ``{"loc": d}`` (B, T, hidden). With ``shift=True`` the input at ``t`` is ``x_{t-1}`` (zeros at the first
    step), so ``d_t`` summarises the past only (SRNN's deterministic layer); :meth:`step` is one step of
    the same GRU, for sampling. Several inputs are concatenated per step."""

    def __init__(self, x_dim: int, hidden: int, shift: bool = False) -> None:
        super().__init__()
        self.rnn = nn.GRU(x_dim, hidden, batch_first=True)
        self.shift = shift

    def forward(self, *inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        x = torch.cat([v.flatten(2) for v in inputs], -1) if len(inputs) > 1 else inputs[0].flatten(2)
        if self.shift:
            x = torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], 1)
        d, _ = self.rnn(x)
        return {"loc": d}

    def step(self, x_prev: torch.Tensor, d_prev: torch.Tensor) -> dict[str, torch.Tensor]:
        """One step ``d' = GRU(x_prev, d_prev)`` with the layer's weights."""
        w_ih, w_hh, b_ih, b_hh = self.rnn.all_weights[0]
        d = torch.gru_cell(x_prev.flatten(1), d_prev, w_ih, w_hh, b_ih, b_hh)
        return {"loc": d}


class RNNStep(nn.Module):
    """One step of a :class:`ForwardRNN`, sharing its weights: ``(x_prev, d_prev) -> {"loc": d}``."""

    def __init__(self, rnn: ForwardRNN) -> None:
        super().__init__()
        self.rnn = rnn

    def forward(self, x_prev: torch.Tensor, d_prev: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.rnn.step(x_prev, d_prev)


class GatedTransition(nn.Module):
    """The DMM's transition ``p(z_t|z_{t-1})`` (Krishnan et al. 2017): a gate mixes a linear map of
    ``z_{t-1}`` (initialised to the identity) with a non-linear proposal; the scale is a softplus plus
    ``min_scale`` (a scale that underflows to 0 makes a log-density infinite)."""

    def __init__(self, z_dim: int, hidden: int, min_scale: float = 1e-3) -> None:
        super().__init__()
        self.min_scale = min_scale
        self.gate = nn.Sequential(nn.Linear(z_dim, hidden), nn.ReLU(), nn.Linear(hidden, z_dim), nn.Sigmoid())
        self.propose1, self.propose2 = nn.Linear(z_dim, hidden), nn.Linear(hidden, z_dim)
        self.linear = nn.Linear(z_dim, z_dim)
        self.to_scale = nn.Linear(z_dim, z_dim)
        with torch.no_grad():
            self.linear.weight.copy_(torch.eye(z_dim))
            self.linear.bias.zero_()

    def forward(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        g = self.gate(z)
        proposed = self.propose2(F.relu(self.propose1(z)))
        loc = (1 - g) * self.linear(z) + g * proposed
        return {"loc": loc, "scale": F.softplus(self.to_scale(F.relu(proposed))) + self.min_scale}


class Combiner(nn.Module):
    """The DMM's posterior ``q(z_t|z_{t-1}, h_t)``: ``ĥ = ½ (tanh(W z_{t-1}) + h_t)``, then a linear
    location and a softplus scale plus ``min_scale``."""

    def __init__(self, z_dim: int, rnn_dim: int, min_scale: float = 1e-3) -> None:
        super().__init__()
        self.min_scale = min_scale
        self.from_z = nn.Linear(z_dim, rnn_dim)
        self.loc, self.scale = nn.Linear(rnn_dim, z_dim), nn.Linear(rnn_dim, z_dim)

    def forward(self, z: torch.Tensor, h: torch.Tensor) -> dict[str, torch.Tensor]:
        combined = 0.5 * (torch.tanh(self.from_z(z)) + h)
        return {"loc": self.loc(combined), "scale": F.softplus(self.scale(combined)) + self.min_scale}
