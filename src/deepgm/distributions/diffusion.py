"""Denoising diffusion (Ho et al. 2020) as named Gaussian variables: the noise schedule, the forward
process and its posterior in closed form, and the reverse model built on a noise-prediction network.

The data ``x`` are grey levels in [0, 1] (as deepgm's loaders give them); the process acts on
``x_0 = 2x - 1`` in [-1, 1]. With ``β_1..β_T``, ``α_t = 1 - β_t`` and ``ᾱ_t = Π_{s≤t} α_s``:

* ``q(x_t|x_0) = N(√ᾱ_t x_0, (1 - ᾱ_t) I)`` (the forward marginal);
* ``q(x_{t-1}|x_t,x_0) = N(μ̃_t, β̃_t I)``, ``μ̃_t = √ᾱ_{t-1} β_t/(1-ᾱ_t) x_0 + √α_t (1-ᾱ_{t-1})/(1-ᾱ_t) x_t``,
  ``β̃_t = (1-ᾱ_{t-1})/(1-ᾱ_t) β_t`` (its posterior);
* ``p_θ(x_{t-1}|x_t) = N(μ_θ, σ_t² I)`` with ``μ_θ = (x_t - β_t/√(1-ᾱ_t) ε_θ(x_t, t))/√α_t`` and ``σ_t² = β_t``
  (``variance="beta"``) or ``β̃_t`` (``"posterior"``);
* ``p_θ(x_0|x_1)``: the discretised Gaussian over 256 levels at ``μ_θ(x_1, 1)``
  (:class:`~deepgm.distributions.discretized_normal.DiscretizedNormal`); its variance and, with
  ``"posterior"``, nothing else, is ``β̃_2``, as in Ho et al.'s released code.

:class:`DiffusionProcess` holds these as distributions over the variables ``x``, ``t``, ``x_t``,
``x_{t-1}``, ``x_1``, ``x_T``, ``eps`` (objectives are built from them in :mod:`deepgm.models.diffusion`),
and samples: ancestrally through ``p_θ(x_{t-1}|x_t)``, or with DDIM (Song et al. 2021) on a strided
subsequence of the steps. ``t`` is an integer in ``1..T``, given as a ``(B, 1)`` tensor.

>>> import torch
>>> s = NoiseSchedule.linear(1000)
>>> round(float(s.alpha_bar[-1]), 6), s.steps  # ᾱ_T ≈ 4e-5: x_T is almost pure noise
(4e-05, 1000)
>>> NoiseSchedule.linear(10, beta_start=0.0)
Traceback (most recent call last):
...
deepgm.errors.ConfigError: NoiseSchedule: beta_start must be a number in (0, 1), got 0.0
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import nn

from deepgm.distributions.discretized_normal import DiscretizedNormal
from deepgm.distributions.families import Normal
from deepgm.distributions.special import Deterministic
from deepgm.distributions.uniform import DiscreteUniform
from deepgm.errors import ConfigError, ShapeError

__all__ = ["NoiseSchedule", "DiffusionProcess", "ImageNoisePredictor", "ddim_timesteps", "Variance"]

Variance = Literal["beta", "posterior"]
EpsModel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _check_unit(owner: str, name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ConfigError(owner, name, "a number in (0, 1)", value)
    return float(value)


def _check_steps(owner: str, name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(owner, name, "an integer of at least 1", value)
    return value


class NoiseSchedule(nn.Module):
    """``β_1..β_T`` and the closed forms derived from them (buffers; index them with :meth:`at`)."""

    betas: torch.Tensor
    alphas: torch.Tensor
    alpha_bar: torch.Tensor
    alpha_bar_prev: torch.Tensor
    posterior_variance: torch.Tensor

    def __init__(self, betas: torch.Tensor | Sequence[float]) -> None:
        super().__init__()
        b = torch.as_tensor(betas, dtype=torch.float64).flatten()
        if b.numel() < 1:
            raise ConfigError("NoiseSchedule", "betas", "at least one β (T >= 1)", b.tolist())
        bad = b[~((b > 0) & (b < 1))]
        if bad.numel():
            raise ConfigError("NoiseSchedule", "betas", "numbers in (0, 1)", bad[:4].tolist())
        a = 1 - b
        abar = torch.cumprod(a, 0)
        prev = torch.cat([torch.ones(1, dtype=b.dtype), abar[:-1]])
        dtype = torch.get_default_dtype()
        for name, v in (("betas", b), ("alphas", a), ("alpha_bar", abar), ("alpha_bar_prev", prev),
                        ("posterior_variance", b * (1 - prev) / (1 - abar))):
            self.register_buffer(name, v.to(dtype))

    @classmethod
    def linear(cls, steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> NoiseSchedule:
        """Ho et al.'s schedule: ``β_t`` linear from ``beta_start`` to ``beta_end`` over ``steps`` = T."""
        steps = _check_steps("NoiseSchedule", "steps", steps)
        lo, hi = _check_unit("NoiseSchedule", "beta_start", beta_start), _check_unit("NoiseSchedule", "beta_end",
                                                                                     beta_end)
        return cls(torch.linspace(lo, hi, steps, dtype=torch.float64))

    @classmethod
    def cosine(cls, steps: int = 1000, offset: float = 0.008, max_beta: float = 0.999) -> NoiseSchedule:
        """Nichol & Dhariwal's schedule: ``ᾱ_t = f(t)/f(0)``, ``f(t) = cos²((t/T + s)/(1 + s) · π/2)``,
        ``β_t = 1 - ᾱ_t/ᾱ_{t-1}`` capped at ``max_beta``."""
        steps = _check_steps("NoiseSchedule", "steps", steps)
        max_beta = _check_unit("NoiseSchedule", "max_beta", max_beta)
        t = torch.arange(steps + 1, dtype=torch.float64) / steps
        f = torch.cos((t + offset) / (1 + offset) * math.pi / 2) ** 2
        return cls((1 - f[1:] / f[:-1]).clamp(1e-8, max_beta))

    @property
    def steps(self) -> int:
        """T, the number of diffusion steps."""
        return int(self.betas.shape[0])

    def at(self, values: torch.Tensor, t: torch.Tensor | int) -> torch.Tensor:
        """``values[t - 1]`` for steps ``t`` in ``1..T`` (an integer tensor, e.g. ``(B, 1)``, or an int)."""
        if isinstance(t, int):
            return values[t - 1]
        if t.is_floating_point():
            t = t.round().long()
        return values[t.to(values.device) - 1]

    def marginal(self, x0: torch.Tensor, t: torch.Tensor | int) -> tuple[torch.Tensor, torch.Tensor]:
        """``q(x_t|x_0)``'s ``(loc, scale)``: ``√ᾱ_t x_0`` and ``√(1 - ᾱ_t)``."""
        abar = self.at(self.alpha_bar, t)
        return abar.sqrt() * x0, (1 - abar).sqrt().expand_as(x0)

    def posterior(self, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor | int) -> tuple[torch.Tensor,
                                                                                            torch.Tensor]:
        """``q(x_{t-1}|x_t,x_0)``'s ``(loc, scale)``: ``μ̃_t`` and ``√β̃_t`` (0 at t = 1)."""
        b, a = self.at(self.betas, t), self.at(self.alphas, t)
        abar, prev = self.at(self.alpha_bar, t), self.at(self.alpha_bar_prev, t)
        loc = prev.sqrt() * b / (1 - abar) * x0 + a.sqrt() * (1 - prev) / (1 - abar) * xt
        return loc, self.at(self.posterior_variance, t).sqrt().expand_as(loc)

    def predict_x0(self, xt: torch.Tensor, t: torch.Tensor | int, eps: torch.Tensor) -> torch.Tensor:
        """``x̂_0 = (x_t - √(1 - ᾱ_t) ε)/√ᾱ_t``."""
        abar = self.at(self.alpha_bar, t)
        return (xt - (1 - abar).sqrt() * eps) / abar.sqrt()

    def reverse_mean(self, xt: torch.Tensor, t: torch.Tensor | int, eps: torch.Tensor) -> torch.Tensor:
        """``μ_θ = (x_t - β_t/√(1 - ᾱ_t) ε)/√α_t`` (equal to ``μ̃_t`` at ``x_0 = x̂_0``)."""
        b, a, abar = self.at(self.betas, t), self.at(self.alphas, t), self.at(self.alpha_bar, t)
        return (xt - b / (1 - abar).sqrt() * eps) / a.sqrt()

    def reverse_variance(self, t: torch.Tensor | int, variance: Variance) -> torch.Tensor:
        """``σ_t²``: ``β_t`` or ``β̃_t`` for ``t ≥ 2``; at ``t = 1`` (the decoder) ``β̃_2`` (``β_1`` if T = 1)."""
        first = self.posterior_variance[1] if self.steps > 1 else self.betas[0]
        table = self.betas if variance == "beta" else self.posterior_variance
        table = torch.cat([first.reshape(1), table[1:]])
        return self.at(table, t)


def ddim_timesteps(total: int, steps: int) -> list[int]:
    """``steps`` steps of ``1..total``, evenly spaced and including 1 and ``total``, descending (DDIM's
    strided subsequence); ``steps`` above ``total`` is a :class:`~deepgm.errors.ConfigError`.

    >>> ddim_timesteps(1000, 5)
    [1000, 750, 500, 251, 1]
    """
    steps = _check_steps("DDIM", "steps", steps)
    if steps > total:
        raise ConfigError("DDIM", "steps", f"an integer in [1, T] = [1, {total}]", steps)
    if steps == 1:
        return [total]
    return sorted({round(1 + i * (total - 1) / (steps - 1)) for i in range(steps)}, reverse=True)


class ImageNoisePredictor(nn.Module):
    """``ε_θ`` on flat images: reshapes ``x_t (N, C·H·W)`` to ``(N, C, H, W)`` for an image network
    ``net(x, t)`` (e.g. :class:`deepgm.nn.UNet`) and flattens its output."""

    def __init__(self, net: nn.Module, image_shape: Sequence[int]) -> None:
        super().__init__()
        self.net, self.image_shape = net, tuple(int(s) for s in image_shape)

    def forward(self, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if xt.shape[-1] != math.prod(self.image_shape):
            raise ShapeError(f"ImageNoisePredictor: x_t must have {math.prod(self.image_shape)} values per row "
                             f"(images {self.image_shape}), got shape {tuple(xt.shape)}")
        out: torch.Tensor = self.net(xt.reshape(-1, *self.image_shape), t.reshape(-1))
        return out.reshape(xt.shape)


def _x0(x: torch.Tensor) -> torch.Tensor:
    """The data's grey levels in [0, 1] as the process's ``x_0`` in [-1, 1]."""
    return 2 * x - 1


class _Marginal(nn.Module):
    def __init__(self, s: NoiseSchedule, t: int | None = None) -> None:
        super().__init__()
        self.s, self.t = s, t

    def forward(self, x: torch.Tensor, t: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        loc, scale = self.s.marginal(_x0(x), self.t if t is None else t)  # type: ignore[arg-type]
        return {"loc": loc, "scale": scale}


class _Posterior(nn.Module):
    def __init__(self, s: NoiseSchedule) -> None:
        super().__init__()
        self.s = s

    def forward(self, xt: torch.Tensor, x: torch.Tensor, t: torch.Tensor) -> dict[str, torch.Tensor]:
        loc, scale = self.s.posterior(_x0(x), xt, t)
        return {"loc": loc, "scale": scale}


class _Noised(nn.Module):
    def __init__(self, s: NoiseSchedule) -> None:
        super().__init__()
        self.s = s

    def forward(self, x: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> dict[str, torch.Tensor]:
        loc, scale = self.s.marginal(_x0(x), t)
        return {"loc": loc + scale * eps}


class _Eps(nn.Module):
    def __init__(self, eps_model: nn.Module) -> None:
        super().__init__()
        self.eps_model = eps_model

    def forward(self, xt: torch.Tensor, t: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"loc": self.eps_model(xt, t)}


class _Reverse(nn.Module):
    def __init__(self, s: NoiseSchedule, eps_model: nn.Module, variance: Variance, t: int | None = None) -> None:
        super().__init__()
        self.s, self.eps_model, self.variance, self.t = s, eps_model, variance, t

    def forward(self, xt: torch.Tensor, t: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        if t is None:  # the decoder: t = 1, in the data's space [0, 1]
            t = torch.ones(xt.shape[0], 1, dtype=torch.long, device=xt.device)
            loc = self.s.reverse_mean(xt, t, self.eps_model(xt, t))
            scale = self.s.reverse_variance(t, self.variance).sqrt().expand_as(loc)
            return {"loc": (loc + 1) / 2, "scale": scale / 2}
        loc = self.s.reverse_mean(xt, t, self.eps_model(xt, t))
        return {"loc": loc, "scale": self.s.reverse_variance(t, self.variance).sqrt().expand_as(loc)}


class DiffusionProcess(nn.Module):
    """The distributions of DDPM over flat data ``x`` of ``dim`` values in [0, 1] (see the module
    docstring), given a schedule and ``eps_model(x_t, t) -> ε`` (``(N, dim)`` and ``(N, 1)`` to ``(N, dim)``).

    Attributes (each a deepgm distribution): ``prior`` p(x_T); ``q_T`` q(x_T|x); ``q_1`` q(x_1|x); ``q_t``
    q(x_t|x,t); ``posterior`` q(x_{t-1}|x_t,x,t); ``reverse`` p(x_{t-1}|x_t,t); ``decoder`` p(x|x_1);
    ``time`` U{2..T} (the steps of the KL terms) and ``time_all`` U{1..T}; ``noise`` p(eps) = N(0, I);
    ``noised`` the point mass at ``x_t = √ᾱ_t x_0 + √(1-ᾱ_t) ε``; ``noise_model`` p(eps|x_t,t) = N(ε_θ, I).
    """

    def __init__(self, schedule: NoiseSchedule, eps_model: nn.Module, dim: int, variance: Variance = "beta",
                 levels: int = 256) -> None:
        super().__init__()
        if variance not in ("beta", "posterior"):
            raise ConfigError("DiffusionProcess", "variance", "'beta' or 'posterior'", variance)
        dim = _check_steps("DiffusionProcess", "dim", dim)
        self.schedule, self.eps_model, self.dim, self.variance = schedule, eps_model, dim, variance
        s, T = schedule, schedule.steps
        self.prior = Normal(var=["x_T"], loc=0.0, scale=1.0, features_shape=[dim], name="p")
        self.q_T = Normal(var=["x_T"], cond_var=["x"], net=_Marginal(s, T), name="q")
        self.q_1 = Normal(var=["x_1"], cond_var=["x"], net=_Marginal(s, 1), name="q")
        self.q_t = Normal(var=["x_t"], cond_var=["x", "t"], net=_Marginal(s), name="q")
        self.posterior = Normal(var=["x_{t-1}"], cond_var=["x_t", "x", "t"], net=_Posterior(s), name="q")
        self.reverse = Normal(var=["x_{t-1}"], cond_var=["x_t", "t"], net=_Reverse(s, eps_model, variance), name="p")
        self.decoder = DiscretizedNormal(var=["x"], cond_var=["x_1"], net=_Reverse(s, eps_model, variance),
                                         levels=levels, low=0.0, high=1.0, name="p")
        self.time = DiscreteUniform(var=["t"], low=min(2, T), high=T, name="q")
        self.time_all = DiscreteUniform(var=["t"], low=1, high=T, name="q")
        self.noise = Normal(var=["eps"], loc=0.0, scale=1.0, features_shape=[dim], name="p")
        self.noised = Deterministic(var=["x_t"], cond_var=["x", "t", "eps"], net=_Noised(s), name="q")
        self.noise_model = Normal(var=["eps"], cond_var=["x_t", "t"], net=_Eps(eps_model), scale=1.0, name="p")

    @property
    def steps(self) -> int:
        """T."""
        return self.schedule.steps

    def _eps(self, x: torch.Tensor, t: int) -> torch.Tensor:
        tt = torch.full((x.shape[0], 1), t, dtype=torch.long, device=x.device)
        out: torch.Tensor = self.eps_model(x, tt)
        return out

    def _start(self, n: int, x_T: torch.Tensor | None) -> torch.Tensor:
        if x_T is None:
            return self.prior.sample(batch_n=n)["x_T"]
        if x_T.dim() != 2 or x_T.shape[1] != self.dim:
            raise ShapeError(f"DiffusionProcess: x_T must have shape (n, {self.dim}), got {tuple(x_T.shape)}")
        return x_T

    @torch.no_grad()
    def sample_ancestral(self, n: int, clip: bool = True, x_T: torch.Tensor | None = None) -> torch.Tensor:
        """``n`` draws of ``x`` (in [0, 1]): ``x_T ~ p(x_T)``, ``x_{t-1} ~ p_θ(x_{t-1}|x_t)`` for t = T..2,
        then the decoder's mean at ``x_1`` (no noise at the last step, as Ho et al. display samples).
        ``clip``: the mean computed from ``x̂_0`` clipped to [-1, 1] (as Ho et al.'s code samples)."""
        s, x = self.schedule, self._start(n, x_T)
        for t in range(self.steps, 0, -1):
            eps = self._eps(x, t)
            if clip:
                loc = s.posterior(s.predict_x0(x, t, eps).clamp(-1, 1), x, t)[0]
            else:
                loc = s.reverse_mean(x, t, eps)
            if t > 1:
                x = loc + s.reverse_variance(t, self.variance).sqrt() * torch.randn_like(x)
            else:
                x = loc
        return ((x + 1) / 2).clamp(0, 1)

    @torch.no_grad()
    def sample_ddim(self, n: int, steps: int | None = None, eta: float = 0.0, clip: bool = True,
                    x_T: torch.Tensor | None = None) -> torch.Tensor:
        """``n`` draws of ``x`` (in [0, 1]) by DDIM over ``steps`` of the T steps (default: all): from step
        ``τ`` to the previous one ``τ'`` (``ᾱ_0 = 1`` after the last), ``x_τ' = √ᾱ_τ' x̂_0 + √(1-ᾱ_τ'-σ²) ε_θ
        + σ z`` with ``σ = η √((1-ᾱ_τ')/(1-ᾱ_τ)) √(1-ᾱ_τ/ᾱ_τ')``; ``eta = 0`` is deterministic given ``x_T``."""
        if not (isinstance(eta, (int, float)) and 0 <= eta <= 1):
            raise ConfigError("DDIM", "eta", "a number in [0, 1]", eta)
        s, x = self.schedule, self._start(n, x_T)
        taus = ddim_timesteps(self.steps, self.steps if steps is None else steps)
        x0 = x
        for i, t in enumerate(taus):
            eps = self._eps(x, t)
            abar = s.alpha_bar[t - 1]
            x0 = s.predict_x0(x, t, eps)
            if clip:
                x0 = x0.clamp(-1, 1)
                eps = (x - abar.sqrt() * x0) / (1 - abar).sqrt()
            prev = s.alpha_bar[taus[i + 1] - 1] if i + 1 < len(taus) else torch.ones_like(abar)
            sigma = eta * ((1 - prev) / (1 - abar)).sqrt() * (1 - abar / prev).sqrt()
            x = prev.sqrt() * x0 + (1 - prev - sigma**2).clamp_min(0).sqrt() * eps
            if eta > 0 and i + 1 < len(taus):
                x = x + sigma * torch.randn_like(x)
        return ((x + 1) / 2).clamp(0, 1)
