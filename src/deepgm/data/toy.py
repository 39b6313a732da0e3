"""Procedural, seeded 2-D toy densities for density estimation and mode-coverage checks.

Every sampler draws i.i.d. points from a fixed density (a mixture, where there is a discrete
choice) and returns a float32 tensor ``(n, 2)``. Scales are chosen so that all densities live
roughly in the square [-4, 4]²:

=================  ==========================================================================
``moons``          two interleaved half circles (radius 1, noise 0.1, centred), scaled by 2
``8gaussians``     8 Gaussians, std 0.1, centred on the circle of radius 2 at angles 2πk/8
``25gaussians``    25 Gaussians, std 0.1, centred on the grid {-4, -2, 0, 2, 4}²
``checkerboard``   uniform on the 8 "black" cells (side 2) of a 4×4 board covering [-4, 4]²
``pinwheel``       5 curved arms (Johnson et al., 2016), scaled by 2
``rings``          4 concentric circles of radii 1, 2, 3, 4 (ring chosen ∝ radius), noise 0.08
``2spirals``       two interleaved spirals of 1.5 turns out to radius 4, noise 0.1
=================  ==========================================================================
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from .datasets import TensorDictDataset

__all__ = [
    "TOY_2D",
    "toy_2d",
    "toy_2d_dataset",
    "toy_2d_mode_std",
    "toy_2d_modes",
    "toy_2d_names",
]

Seed = int | torch.Generator | None
Sampler = Callable[..., Tensor]


def _generator(seed: Seed) -> torch.Generator | None:
    """``None`` -> torch's global generator; an int -> a fresh generator seeded with it."""
    if seed is None or isinstance(seed, torch.Generator):
        return seed
    return torch.Generator().manual_seed(int(seed))


def _randn(n: int, gen: torch.Generator | None, d: int = 2) -> Tensor:
    return torch.randn(n, d, generator=gen)


def _rand(n: int, gen: torch.Generator | None, d: int = 1) -> Tensor:
    return torch.rand(n, d, generator=gen)


def _ring_centres(radius: float = 2.0, n_modes: int = 8) -> Tensor:
    angles = 2 * math.pi * torch.arange(n_modes) / n_modes
    return radius * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)


def _grid_centres(spacing: float = 2.0, side: int = 5) -> Tensor:
    axis = (torch.arange(side) - (side - 1) / 2) * spacing
    gx, gy = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)


def _mixture(centres: Tensor, std: float, n: int, gen: torch.Generator | None) -> Tensor:
    k = torch.randint(len(centres), (n,), generator=gen)
    return centres[k] + std * _randn(n, gen)


def sample_moons(n: int, gen: torch.Generator | None = None, noise: float = 0.1, scale: float = 2.0) -> Tensor:
    """Two moons: ``scale · (m + N(0, noise²))`` where ``m`` is ``(cos t, sin t)`` or
    ``(1 - cos t, 1/2 - sin t)`` with ``t ~ U[0, π]``, shifted by ``(-1/2, -1/4)`` to centre them;
    each moon with probability 1/2."""
    t = math.pi * _rand(n, gen).squeeze(1)
    inner = torch.rand(n, generator=gen) < 0.5
    outer_pts = torch.stack([torch.cos(t), torch.sin(t)], dim=1)
    inner_pts = torch.stack([1 - torch.cos(t), 0.5 - torch.sin(t)], dim=1)
    x = torch.where(inner[:, None], inner_pts, outer_pts) - torch.tensor([0.5, 0.25])
    return scale * (x + noise * _randn(n, gen))


def sample_8gaussians(n: int, gen: torch.Generator | None = None, radius: float = 2.0, std: float = 0.1) -> Tensor:
    """Equal mixture of ``N(μ_k, std² I)``, ``μ_k = radius (cos 2πk/8, sin 2πk/8)``, k = 0..7."""
    return _mixture(_ring_centres(radius, 8), std, n, gen)


def sample_25gaussians(n: int, gen: torch.Generator | None = None, spacing: float = 2.0, std: float = 0.1) -> Tensor:
    """Equal mixture of ``N(μ_ij, std² I)``, ``μ_ij = spacing (i, j)``, i, j ∈ {-2, ..., 2}."""
    return _mixture(_grid_centres(spacing, 5), std, n, gen)


def sample_checkerboard(n: int, gen: torch.Generator | None = None, cell: float = 2.0) -> Tensor:
    """Uniform on cells (i, j) of a 4×4 board with ``i + j`` even: ``x = cell (i + u - 2, j + v - 2)``."""
    filled = torch.tensor([(i, j) for i in range(4) for j in range(4) if (i + j) % 2 == 0], dtype=torch.float32)
    k = torch.randint(len(filled), (n,), generator=gen)
    return cell * (filled[k] + _rand(n, gen, 2) - 2.0)


def sample_pinwheel(
    n: int,
    gen: torch.Generator | None = None,
    n_arms: int = 5,
    radial_std: float = 0.3,
    tangential_std: float = 0.1,
    rate: float = 0.25,
    scale: float = 2.0,
) -> Tensor:
    """Pinwheel: ``r ~ N(1, radial_std²)``, ``s ~ N(0, tangential_std²)``, arm ``a ~ U{0..K-1}``;
    the point ``(r, s)`` is rotated by ``θ = 2πa/K + rate·exp(r)`` and multiplied by ``scale``."""
    arm = torch.randint(n_arms, (n,), generator=gen).float()
    eps = _randn(n, gen)
    r = 1.0 + radial_std * eps[:, 0]
    s = tangential_std * eps[:, 1]
    theta = 2 * math.pi * arm / n_arms + rate * torch.exp(r)
    c, si = torch.cos(theta), torch.sin(theta)
    return scale * torch.stack([c * r - si * s, si * r + c * s], dim=1)


def sample_rings(
    n: int,
    gen: torch.Generator | None = None,
    radii: tuple[float, ...] = (1.0, 2.0, 3.0, 4.0),
    noise: float = 0.08,
) -> Tensor:
    """Concentric rings: ring ``k`` with probability ∝ ``radii[k]`` (uniform along the curves),
    angle ``φ ~ U[0, 2π)``, radius ``radii[k] + N(0, noise²)``."""
    r_all = torch.tensor(radii, dtype=torch.float32)
    k = torch.multinomial(r_all / r_all.sum(), n, replacement=True, generator=gen)
    phi = 2 * math.pi * _rand(n, gen).squeeze(1)
    r = r_all[k] + noise * _randn(n, gen, 1).squeeze(1)
    return torch.stack([r * torch.cos(phi), r * torch.sin(phi)], dim=1)


def sample_2spirals(
    n: int, gen: torch.Generator | None = None, turns: float = 1.5, radius: float = 4.0, noise: float = 0.1
) -> Tensor:
    """Two spirals ``±(ρ cos t, ρ sin t)`` with ``ρ = radius · t / T``, ``T = 2π·turns``,
    ``t = T·sqrt(u)`` (about uniform along the arc), plus ``N(0, noise²)``; each arm with probability 1/2."""
    t_max = 2 * math.pi * turns
    t = t_max * torch.sqrt(_rand(n, gen).squeeze(1))
    rho = radius * t / t_max
    sign = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
    x = sign[:, None] * torch.stack([rho * torch.cos(t), rho * torch.sin(t)], dim=1)
    return x + noise * _randn(n, gen)


TOY_2D: dict[str, Sampler] = {
    "moons": sample_moons,
    "8gaussians": sample_8gaussians,
    "25gaussians": sample_25gaussians,
    "checkerboard": sample_checkerboard,
    "pinwheel": sample_pinwheel,
    "rings": sample_rings,
    "2spirals": sample_2spirals,
}

_ALIASES = {
    "two_moons": "moons",
    "ring8": "8gaussians",
    "8_gaussians": "8gaussians",
    "grid25": "25gaussians",
    "25_gaussians": "25gaussians",
    "grid": "25gaussians",
    "circles": "rings",
    "spirals": "2spirals",
    "two_spirals": "2spirals",
}

_MODES: dict[str, tuple[Callable[..., Tensor], float]] = {
    "8gaussians": (lambda radius=2.0, **_: _ring_centres(radius, 8), 0.1),
    "25gaussians": (lambda spacing=2.0, **_: _grid_centres(spacing, 5), 0.1),
}


def toy_2d_names() -> tuple[str, ...]:
    """Canonical names of the 2-D toy densities."""
    return tuple(TOY_2D)


def _resolve(name: str) -> str:
    key = name.lower().strip().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key not in TOY_2D:
        raise ValueError(f"unknown 2-D toy density {name!r}; valid names: {', '.join(TOY_2D)}")
    return key


def toy_2d(name: str, n: int, seed: Seed = None, **kwargs: float) -> Tensor:
    """Draw ``n`` points ``(n, 2)`` (float32) from the toy density ``name``.

    ``seed`` is an int (same points for the same seed), a ``torch.Generator``, or None for torch's
    global generator. ``kwargs`` override the density's parameters (e.g. ``std=0.05``).
    """
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    return TOY_2D[_resolve(name)](int(n), _generator(seed), **kwargs).float()


def toy_2d_modes(name: str, **kwargs: float) -> Tensor:
    """Centres ``(K, 2)`` of a mixture toy density (``8gaussians``: K = 8, ``25gaussians``: K = 25).

    Pass the same ``radius`` / ``spacing`` given to :func:`toy_2d`, if any.
    """
    key = _resolve(name)
    if key not in _MODES:
        raise ValueError(f"{name!r} has no discrete modes; densities with modes: {', '.join(_MODES)}")
    return _MODES[key][0](**kwargs).float()


def toy_2d_mode_std(name: str) -> float:
    """Default standard deviation of each mixture component of ``name`` (for mode-coverage thresholds)."""
    key = _resolve(name)
    if key not in _MODES:
        raise ValueError(f"{name!r} has no discrete modes; densities with modes: {', '.join(_MODES)}")
    return _MODES[key][1]


_SPLIT_CODES = {"train": 0, "valid": 1, "test": 2}


def toy_2d_dataset(name: str, n: int, seed: int = 0, split: str = "train", **kwargs: float) -> TensorDictDataset:
    """``n`` points of ``name`` as a dataset of ``{"x": (2,)}`` items.

    Each split draws from its own seed, derived from ``(seed, split)`` by ``numpy.random.SeedSequence``,
    so train, validation and test points are independent samples.
    """
    if split not in _SPLIT_CODES:
        raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(_SPLIT_CODES)}")
    derived = int(np.random.SeedSequence([int(seed), _SPLIT_CODES[split]]).generate_state(1)[0])
    return TensorDictDataset({"x": toy_2d(name, n, derived, **kwargs)})
