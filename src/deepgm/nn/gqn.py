"""Networks of the generative query network (Eslami et al. 2018, "Neural scene representation and rendering").

* :class:`Tower` — the representation network of one view: an image ``(N, 3, H, W)`` and its viewpoint
  ``(N, 7)`` to ``r (N, C_r, H/4, W/4)``: convolutions with skip connections, the viewpoint broadcast
  over the grid after the first half. :class:`SceneRepresentation` sums it over a scene's context
  views, so the order of the views does not matter.
* :class:`ConvLSTMCell` — an LSTM whose gates are convolutions; the gates' part that reads inputs fixed
  over the steps (the query viewpoint, ``r``, the query image) is computed once (:meth:`ConvLSTMCell.fixed`).
* :class:`GenerationCore` — the convolutional DRAW core of ``L`` steps. Step ``l`` updates the inference
  LSTM from the query image, viewpoint, ``r``, the generator's state ``h^g_l`` and the canvas ``u_l``
  (``h^e_l``); draws ``z_l = μ_l + σ_l ε_l`` from the posterior ``q(z_l | h^e_l)`` (a convolutional head,
  :class:`ConvNormalHead`; ``h^e_l`` is computed from ``h^g_l``), and updates the generator LSTM from
  ``z_l``, viewpoint and ``r``; the canvas grows by a transposed convolution of the new ``h^g``:
  ``u_{l+1} = u_l + Δ(h^g_{l+1})``. The prior ``p(z_l | h^g_l)`` is the other head. Its output — the
  states ``h^e_l``, ``h^g_l`` of every step and the final canvas — is what the objective scores (the KL of
  the two heads at each step and the image likelihood of the canvas). :meth:`GenerationCore.generate`
  runs the generator alone, ``z_l`` from the prior.
* :class:`DeterministicCore` — the same generator with no latents (the regression baseline).
* :class:`ImageMean` — the canvas to the image's mean, ``sigmoid(conv1×1(u))``, as ``{"loc": ...}``.

Shapes: batch ``B``, ``K`` context views, ``L`` steps, the grid ``h × w = H/4 × W/4``.

>>> tower = Tower(r_channels=8)
>>> rep = SceneRepresentation(tower)
>>> x, v = torch.rand(2, 3, 3, 16, 16), torch.rand(2, 3, 7)  # 2 scenes, 3 context views of 16×16
>>> r = rep(x, v)["loc"]
>>> r.shape, bool(torch.allclose(r, rep(x.flip(1), v.flip(1))["loc"], atol=1e-5))  # order-invariant
(torch.Size([2, 8, 4, 4]), True)
>>> core = GenerationCore((3, 16, 16), r_channels=8, h_channels=6, z_channels=2, steps=3, u_channels=4)
>>> out = core(torch.rand(2, 3, 16, 16), torch.rand(2, 7), r, torch.randn(2, 3, 2, 4, 4))
>>> out["h_e"].shape, out["h_g"].shape, out["u"].shape
(torch.Size([2, 3, 6, 4, 4]), torch.Size([2, 3, 6, 4, 4]), torch.Size([2, 4, 16, 16]))
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepgm.errors import ShapeError
from deepgm.nn.conv import check_sides_by_4

__all__ = ["VIEWPOINT_DIM", "Tower", "SceneRepresentation", "ConvLSTMCell", "ConvNormalHead", "GenerationCore",
           "DeterministicCore", "ImageMean"]

VIEWPOINT_DIM = 7  # (x, y, z, cos yaw, sin yaw, cos pitch, sin pitch)


def _grid(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Viewpoints ``(N, 7)`` broadcast over the grid of ``like (N, C, h, w)``: ``(N, 7, h, w)``."""
    return v[:, :, None, None].expand(v.shape[0], v.shape[1], like.shape[-2], like.shape[-1])


class Tower(nn.Module):
    """One view's representation ``r (N, C_r, H/4, W/4)`` from its image ``(N, 3, H, W)`` (H, W divisible
    by 4) and viewpoint ``(N, 7)``: the paper's "tower" at ``C_r`` channels (it uses 256)."""

    def __init__(self, r_channels: int = 64, image_channels: int = 3) -> None:
        super().__init__()
        c, half = r_channels, max(1, r_channels // 2)
        self.conv1 = nn.Conv2d(image_channels, c, 2, stride=2)
        self.skip1 = nn.Conv2d(c, c, 2, stride=2)
        self.conv2 = nn.Conv2d(c, half, 3, padding=1)
        self.conv3 = nn.Conv2d(half, c, 2, stride=2)
        self.skip2 = nn.Conv2d(c + VIEWPOINT_DIM, c, 3, padding=1)
        self.conv4 = nn.Conv2d(c + VIEWPOINT_DIM, half, 3, padding=1)
        self.conv5 = nn.Conv2d(half, c, 3, padding=1)
        self.conv6 = nn.Conv2d(c, c, 1)

    def forward(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        h1 = F.relu(self.conv1(x))  # H/2
        h = F.relu(self.conv3(F.relu(self.conv2(h1)))) + F.relu(self.skip1(h1))  # H/4
        h = torch.cat([h, _grid(v, h)], 1)
        h = F.relu(self.conv5(F.relu(self.conv4(h)))) + F.relu(self.skip2(h))
        out: torch.Tensor = F.relu(self.conv6(h))
        return out


class SceneRepresentation(nn.Module):
    """``r = Σ_k tower(x_k, v_k)`` over a scene's context views: ``x (B, K, 3, H, W)``, ``v (B, K, 7)`` to
    ``{"loc": r (B, C_r, H/4, W/4)}`` (the location of a ``Deterministic``)."""

    def __init__(self, tower: Tower) -> None:
        super().__init__()
        self.tower = tower

    def forward(self, x: torch.Tensor, v: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.dim() != 5 or v.dim() != 3 or x.shape[:2] != v.shape[:2] or v.shape[-1] != VIEWPOINT_DIM:
            raise ShapeError(f"SceneRepresentation: context views must be x (B, K, C, H, W) and v (B, K, 7) with "
                             f"the same B, K; got {tuple(x.shape)} and {tuple(v.shape)}")
        b, k = x.shape[:2]
        r = self.tower(x.reshape(b * k, *x.shape[2:]), v.reshape(b * k, -1))
        return {"loc": r.reshape(b, k, *r.shape[1:]).sum(1)}


class ConvLSTMCell(nn.Module):
    """An LSTM over a grid: ``gates = W_f * fixed + W_s * [inputs, h]`` (convolutions, ``kernel`` odd),
    ``c' = σ(f) c + σ(i) tanh(g)``, ``h' = σ(o) tanh(c')``. ``fixed(inputs)`` is the gates' part from the
    inputs that stay the same at every step, computed once per sequence of steps."""

    def __init__(self, fixed_channels: int, step_channels: int, hidden: int, kernel: int = 5) -> None:
        super().__init__()
        if kernel % 2 != 1:
            raise ValueError(f"ConvLSTMCell: kernel must be odd (same-size output), got {kernel}")
        self.hidden = hidden
        self.fixed_conv = nn.Conv2d(fixed_channels, 4 * hidden, kernel, padding=kernel // 2)
        self.step_conv = nn.Conv2d(step_channels + hidden, 4 * hidden, kernel, padding=kernel // 2, bias=False)

    def fixed(self, inputs: torch.Tensor) -> torch.Tensor:
        """The gates' contribution ``(N, 4·hidden, h, w)`` of the fixed inputs ``(N, fixed_channels, h, w)``."""
        out: torch.Tensor = self.fixed_conv(inputs)
        return out

    def forward(self, fixed_gates: torch.Tensor, inputs: torch.Tensor | None, h: torch.Tensor,
                c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = h if inputs is None else torch.cat([inputs, h], 1)
        i, f, g, o = (fixed_gates + self.step_conv(x)).chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class ConvNormalHead(nn.Module):
    """States ``(..., C, h, w)`` to ``{"loc", "scale"}`` of shape ``(..., z, h, w)``: one convolution,
    ``scale = softplus(·) + 1e-3``; leading dimensions (batch, steps) are folded and restored."""

    def __init__(self, in_channels: int, z_channels: int, kernel: int = 5) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 2 * z_channels, kernel, padding=kernel // 2)

    def forward(self, h: torch.Tensor) -> dict[str, torch.Tensor]:
        lead = h.shape[:-3]
        out = self.conv(h.reshape(-1, *h.shape[-3:]))
        loc, scale = out.reshape(*lead, *out.shape[1:]).chunk(2, -3)
        return {"loc": loc, "scale": F.softplus(scale) + 1e-3}


class _Generator(nn.Module):
    """The generator LSTM and the canvas update, shared by the latent and deterministic cores."""

    def __init__(self, image_shape: tuple[int, int, int], r_channels: int, h_channels: int, z_channels: int,
                 steps: int, u_channels: int, kernel: int) -> None:
        super().__init__()
        self.image_shape = check_sides_by_4(image_shape, "GQN networks")
        self.steps, self.h_channels, self.u_channels = steps, h_channels, u_channels
        self.gen_cell = ConvLSTMCell(VIEWPOINT_DIM + r_channels, z_channels, h_channels, kernel)
        self.upsample = nn.ConvTranspose2d(h_channels, u_channels, 4, stride=4, bias=False)

    def _start(self, v: torch.Tensor, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The generator's fixed gates, a zero state ``(B, C_h, h, w)`` and a zero canvas ``(B, U, H, W)``."""
        b, (_, hh, ww) = r.shape[0], self.image_shape
        if r.shape[-2:] != (hh // 4, ww // 4) or v.shape != (b, VIEWPOINT_DIM):
            raise ShapeError(f"{type(self).__name__}: r must be (B, C_r, {hh // 4}, {ww // 4}) and the query viewpoint "
                             f"(B, 7); got {tuple(r.shape)} and {tuple(v.shape)}")
        gates = self.gen_cell.fixed(torch.cat([_grid(v, r), r], 1))
        zero = r.new_zeros(b, self.h_channels, hh // 4, ww // 4)
        return gates, zero, r.new_zeros(b, self.u_channels, hh, ww)


class GenerationCore(_Generator):
    """The DRAW-style core of ``steps`` steps with latents ``z_l (z_channels, h, w)`` (see the module
    docstring); ``kernel``: the LSTMs' and heads' convolution size (the paper's 5)."""

    def __init__(self, image_shape: tuple[int, int, int], r_channels: int = 64, h_channels: int = 64,
                 z_channels: int = 4, steps: int = 8, u_channels: int = 16, kernel: int = 5) -> None:
        super().__init__(image_shape, r_channels, h_channels, z_channels, steps, u_channels, kernel)
        self.z_channels = z_channels
        c = self.image_shape[0]
        # the inference LSTM reads the query image as 4×4 blocks of pixels stacked in channels
        self.inf_cell = ConvLSTMCell(16 * c + VIEWPOINT_DIM + r_channels, 2 * h_channels, h_channels, kernel)
        self.downsample = nn.Conv2d(u_channels, h_channels, 4, stride=4, bias=False)
        self.posterior = ConvNormalHead(h_channels, z_channels, kernel)
        self.prior = ConvNormalHead(h_channels, z_channels, kernel)

    def noise_shape(self) -> tuple[int, int, int, int]:
        """The shape ``(L, z, h, w)`` of one query's standard-normal noise ``ε`` (``z_l = μ_l + σ_l ε_l``)."""
        _, hh, ww = self.image_shape
        return (self.steps, self.z_channels, hh // 4, ww // 4)

    def _check_noise(self, eps: torch.Tensor, b: int) -> None:
        if tuple(eps.shape) != (b, *self.noise_shape()):
            raise ShapeError(f"GenerationCore: the noise must be (B, L, z, h, w) = {(b, *self.noise_shape())}, "
                             f"got {tuple(eps.shape)}")

    def forward(self, x: torch.Tensor, v: torch.Tensor, r: torch.Tensor, eps: torch.Tensor
                ) -> dict[str, torch.Tensor]:
        """The posterior path for query images ``x (B, 3, H, W)`` at viewpoints ``v (B, 7)`` given ``r``:
        ``{"h_e": (B, L, C_h, h, w), "h_g": (B, L, C_h, h, w), "u": (B, U, H, W)}``, where ``h_g[:, l]`` is
        the generator's state before step ``l`` (the prior's input) and ``h_e[:, l]`` the inference state
        after it (the posterior's)."""
        b = r.shape[0]
        gen_gates, h_g, u = self._start(v, r)
        self._check_noise(eps, b)
        if tuple(x.shape) != (b, *self.image_shape):
            raise ShapeError(f"GenerationCore: query images must be (B, *{self.image_shape}), got {tuple(x.shape)}")
        inf_gates = self.inf_cell.fixed(torch.cat([F.pixel_unshuffle(x, 4), _grid(v, r), r], 1))
        c_g, h_e, c_e = h_g, h_g, h_g
        states_e, states_g = [], []
        for step in range(self.steps):
            h_e, c_e = self.inf_cell(inf_gates, torch.cat([h_g, self.downsample(u)], 1), h_e, c_e)
            q = self.posterior(h_e)
            z = q["loc"] + q["scale"] * eps[:, step]
            states_e.append(h_e)
            states_g.append(h_g)
            h_g, c_g = self.gen_cell(gen_gates, z, h_g, c_g)
            u = u + self.upsample(h_g)
        return {"h_e": torch.stack(states_e, 1), "h_g": torch.stack(states_g, 1), "u": u}

    def generate(self, v: torch.Tensor, r: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """The canvas ``u (B, U, H, W)`` of the generator alone, ``z_l = μ_l + σ_l ε_l`` from the prior."""
        gen_gates, h_g, u = self._start(v, r)
        self._check_noise(eps, r.shape[0])
        c_g = h_g
        for step in range(self.steps):
            p = self.prior(h_g)
            h_g, c_g = self.gen_cell(gen_gates, p["loc"] + p["scale"] * eps[:, step], h_g, c_g)
            u = u + self.upsample(h_g)
        return u


class DeterministicCore(_Generator):
    """The generator of :class:`GenerationCore` without latents: ``(v (B, 7), r) -> {"loc": u (B, U, H, W)}``."""

    def __init__(self, image_shape: tuple[int, int, int], r_channels: int = 64, h_channels: int = 64,
                 steps: int = 8, u_channels: int = 16, kernel: int = 5) -> None:
        super().__init__(image_shape, r_channels, h_channels, 0, steps, u_channels, kernel)

    def forward(self, v: torch.Tensor, r: torch.Tensor) -> dict[str, torch.Tensor]:
        gen_gates, h_g, u = self._start(v, r)
        c_g = h_g
        for _ in range(self.steps):
            h_g, c_g = self.gen_cell(gen_gates, None, h_g, c_g)
            u = u + self.upsample(h_g)
        return {"loc": u}


class ImageMean(nn.Module):
    """The canvas ``u (B, U, H, W)`` to the image likelihood's mean ``{"loc": sigmoid(conv1×1(u))}`` in (0, 1)."""

    def __init__(self, u_channels: int, image_channels: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(u_channels, image_channels, 1)

    def forward(self, u: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"loc": torch.sigmoid(self.conv(u))}
