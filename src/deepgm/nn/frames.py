"""Networks of World Models (Ha & Schmidhuber 2018): V's convolutional encoder and decoder of RGB frames,
M's LSTM over ``[z_t, a_t]`` with its step, and the mixture-density head.

The encoder is the paper's stack of stride-2 4×4 convolutions (32, 64, 128, 256 channels for 64×64
frames: one layer fewer per halving of the side, so 16×16 test frames get two), the decoder mirrors it
with transposed convolutions and a sigmoid.

>>> import torch
>>> enc, dec = FrameEncoder(16, z_dim=4), FrameDecoder(4, 16)
>>> params = enc(torch.rand(2, 3, 16, 16))
>>> params["loc"].shape, dec(params["loc"])["loc"].shape
(torch.Size([2, 4]), torch.Size([2, 3, 16, 16]))
>>> head = MixtureHead(8, z_dim=4, components=5)
>>> {k: tuple(v.shape) for k, v in head(torch.zeros(2, 7, 8)).items()}
{'logits': (2, 7, 4, 5), 'loc': (2, 7, 4, 5), 'scale': (2, 7, 4, 5)}
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FrameEncoder", "FrameDecoder", "frame_layers", "SequenceLSTM", "MixtureHead", "DoneHead"]

_CHANNELS = (32, 64, 128, 256)


def frame_layers(side: int) -> int:
    """The number of stride-2 layers for square frames of ``side`` pixels: down to 4×4 (at most four)."""
    n = int(math.log2(side)) - 2 if side > 0 else 0
    if side < 8 or 2 ** (n + 2) != side or n > len(_CHANNELS):
        raise ValueError(f"frame networks need square frames of side 8, 16, 32 or 64, got {side}")
    return n


class FrameEncoder(nn.Module):
    """Frames ``(N, 3, S, S)`` in [0, 1] → ``{"loc", "scale"}`` of a ``z_dim`` Normal (scale = exp(½ logvar))."""

    def __init__(self, side: int, z_dim: int, channels: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = channels
        for out in _CHANNELS[:frame_layers(side)]:
            layers += [nn.Conv2d(c, out, 4, stride=2, padding=1), nn.ReLU()]
            c = out
        self.body = nn.Sequential(*layers, nn.Flatten())
        self.heads = nn.Linear(c * 16, 2 * z_dim)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        loc, logvar = self.heads(self.body(x)).chunk(2, -1)
        return {"loc": loc, "scale": (0.5 * logvar.clamp(-20.0, 10.0)).exp()}


class FrameDecoder(nn.Module):
    """``z (N, z_dim)`` → ``{"loc": (N, 3, S, S)}`` in (0, 1): linear → 4×4 grid → transposed convolutions."""

    def __init__(self, z_dim: int, side: int, channels: int = 3) -> None:
        super().__init__()
        chans = _CHANNELS[:frame_layers(side)][::-1]
        self.grid = (chans[0], 4, 4)
        self.lift = nn.Linear(z_dim, chans[0] * 16)
        layers: list[nn.Module] = []
        for c_in, c_out in zip(chans, (*chans[1:], channels)):
            layers += [nn.ReLU(), nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1)]
        self.up = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"loc": torch.sigmoid(self.up(self.lift(z).reshape(z.shape[0], *self.grid)))}


class SequenceLSTM(nn.Module):
    """``h_t = LSTM([z_t, a_t], h_{t-1})`` over batch-first sequences, returning ``{"loc": h}`` (B, T, H);
    :meth:`step` is one step of the same LSTM, for dreaming."""

    def __init__(self, input_sizes: tuple[int, ...], hidden: int) -> None:
        super().__init__()
        self.rnn = nn.LSTM(sum(input_sizes), hidden, batch_first=True)
        self.hidden = hidden

    def forward(self, *inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        h, _ = self.rnn(torch.cat(inputs, -1) if len(inputs) > 1 else inputs[0])
        return {"loc": h}

    def step(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One step ``(h', c') = LSTMCell(x, (h, c))`` with the layer's weights."""
        w_ih, w_hh, b_ih, b_hh = self.rnn.all_weights[0]
        h2, c2 = torch.lstm_cell(x, (h, c), w_ih, w_hh, b_ih, b_hh)
        return h2, c2


class MixtureHead(nn.Module):
    """``h (..., H)`` → a K-component Normal mixture per latent dimension: ``{"logits", "loc", "scale"}``
    each ``(..., z_dim, K)`` (one linear layer, as the paper's MDN)."""

    def __init__(self, hidden: int, z_dim: int, components: int) -> None:
        super().__init__()
        self.z_dim, self.k = z_dim, components
        self.out = nn.Linear(hidden, 3 * z_dim * components)

    def forward(self, h: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.out(h).unflatten(-1, (self.z_dim, 3, self.k))
        logits, loc, log_scale = out.unbind(-2)
        return {"logits": logits, "loc": loc, "scale": F.softplus(log_scale) + 1e-3}


class DoneHead(nn.Module):
    """``h (..., H)`` → ``{"logits": (...)}`` of the probability that the episode ends."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.out = nn.Linear(hidden, 1)

    def forward(self, h: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": self.out(h).squeeze(-1)}
