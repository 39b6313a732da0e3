"""A linear-Gaussian state-space model whose log p(x_{1:T}) is exact (test helper for the sequential bounds).

From a fixed, known state ``z_0``::

    z_t = A z_{t-1} + N(0, Q),    x_t = C z_t + N(0, R),    t = 1..T

with ``dz = 2``, ``dx = 3``, fixed seeded ``A`` and ``C`` and diagonal ``Q``, ``R`` (deepgm's Normal is
diagonal). The exact log-likelihood comes from the Kalman filter (:func:`kalman_log_likelihood`), checked
independently against the joint Gaussian of the stacked observations (:func:`brute_force_log_likelihood`);
:func:`deepgm_parts` gives the same model as deepgm distributions, with a deliberately imperfect proposal.
All sequences are time-first, ``(T, B, dx)``.

>>> x = sample(4, 2, generator=torch.Generator().manual_seed(0))
>>> x.shape
torch.Size([4, 2, 3])
>>> bool(torch.allclose(kalman_log_likelihood(x), brute_force_log_likelihood(x)))
True
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from deepgm.distributions import Normal

__all__ = ["DZ", "DX", "A", "C", "Q_SCALE", "R_SCALE", "Z0", "sample", "kalman_log_likelihood",
           "brute_force_log_likelihood", "Parts", "deepgm_parts"]

DZ, DX = 2, 3
_g = torch.Generator().manual_seed(11)
#: transition matrix: a damped rotation (spectral radius 0.9) with a seeded perturbation
A = (0.9 * torch.tensor([[0.8, -0.6], [0.6, 0.8]], dtype=torch.float64)
     + 0.05 * torch.randn(DZ, DZ, generator=_g, dtype=torch.float64))
#: emission matrix
C = torch.randn(DX, DZ, generator=_g, dtype=torch.float64)
#: standard deviations of the transition and emission noises (Q = diag(Q_SCALE²), R = diag(R_SCALE²))
Q_SCALE = torch.tensor([0.6, 0.4], dtype=torch.float64)
R_SCALE = torch.tensor([0.5, 0.7, 0.4], dtype=torch.float64)
#: the known initial state
Z0 = torch.tensor([1.0, -0.5], dtype=torch.float64)
Q = torch.diag(Q_SCALE**2)
R = torch.diag(R_SCALE**2)


def sample(length: int, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``batch`` sequences ``x_{1:length}`` drawn from the model, ``(length, batch, DX)``, float64."""
    if length < 1 or batch < 1:
        raise ValueError(f"sample: length and batch must be >= 1, got length={length}, batch={batch}")
    z = Z0.expand(batch, DZ)
    xs = []
    for _ in range(length):
        z = z @ A.T + torch.randn(batch, DZ, generator=generator, dtype=torch.float64) * Q_SCALE
        xs.append(z @ C.T + torch.randn(batch, DX, generator=generator, dtype=torch.float64) * R_SCALE)
    return torch.stack(xs)


def _check_x(x: torch.Tensor, name: str) -> torch.Tensor:
    if not torch.is_tensor(x) or x.dim() != 3 or x.shape[-1] != DX:
        raise ValueError(f"{name}: x must be a (T, B, {DX}) tensor, got {tuple(getattr(x, 'shape', ()))}")
    return x.to(torch.float64)


def kalman_log_likelihood(x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Exact ``log p(x_{1:T})`` per sequence, ``(B,)`` float64, by the Kalman filter.

    ``mask`` (``(T, B)``, 1 on real steps) leaves out padded steps the way deepgm's scans do: a padded
    step neither observes nor advances the state, so the next real step follows the last real one.

    >>> x = sample(3, 2, generator=torch.Generator().manual_seed(1))
    >>> alone = kalman_log_likelihood(x[:2, 1:])
    >>> padded = kalman_log_likelihood(x, torch.tensor([[1.0, 1.0], [1.0, 1.0], [1.0, 0.0]]))
    >>> bool(torch.allclose(padded[1], alone[0]))
    True
    """
    x = _check_x(x, "kalman_log_likelihood")
    n_steps, batch, _ = x.shape
    if mask is not None and tuple(mask.shape) != (n_steps, batch):
        raise ValueError(f"kalman_log_likelihood: mask must have shape {(n_steps, batch)}, got {tuple(mask.shape)}")
    m = (Z0 @ A.T).expand(batch, DZ).clone()  # predicted mean of z_t given x_{<t}
    p = Q.expand(batch, DZ, DZ).clone()  # its covariance (z_0 is known)
    total = torch.zeros(batch, dtype=torch.float64)
    eye = torch.eye(DZ, dtype=torch.float64)
    for t in range(n_steps):
        s = C @ p @ C.T + R  # (B, DX, DX)
        pred = m @ C.T
        ll = torch.distributions.MultivariateNormal(pred, s).log_prob(x[t])
        gain = p @ C.T @ torch.linalg.inv(s)  # (B, DZ, DX)
        m_f = m + (gain @ (x[t] - pred).unsqueeze(-1)).squeeze(-1)
        p_f = (eye - gain @ C) @ p
        m_next, p_next = m_f @ A.T, A @ p_f @ A.T + Q
        if mask is None:
            total, m, p = total + ll, m_next, p_next
        else:
            keep = mask[t].to(torch.float64) > 0
            total = total + torch.where(keep, ll, torch.zeros_like(ll))
            m = torch.where(keep.unsqueeze(-1), m_next, m)
            p = torch.where(keep.reshape(-1, 1, 1), p_next, p)
    return total


def brute_force_log_likelihood(x: torch.Tensor) -> torch.Tensor:
    """``log p(x_{1:T})`` per sequence from the joint Gaussian of the stacked ``(T·DX)`` vector (no filter).

    ``Cov(z_s, z_t) = A^{t-s} Σ_s`` for ``s ≤ t`` with ``Σ_s = Σ_{j<s} A^j Q A^jᵀ``, and
    ``Cov(x_s, x_t) = C Cov(z_s, z_t) Cᵀ + [s = t] R``.
    """
    x = _check_x(x, "brute_force_log_likelihood")
    n_steps, batch, _ = x.shape
    powers = [torch.linalg.matrix_power(A, k) for k in range(n_steps + 1)]
    sigma = []
    acc = torch.zeros(DZ, DZ, dtype=torch.float64)
    for s in range(n_steps):
        acc = acc + powers[s] @ Q @ powers[s].T
        sigma.append(acc.clone())  # Cov(z_{s+1})
    mean = torch.cat([C @ powers[t + 1] @ Z0 for t in range(n_steps)])
    cov = torch.zeros(n_steps * DX, n_steps * DX, dtype=torch.float64)
    for s in range(n_steps):
        for t in range(s, n_steps):
            block = C @ powers[t - s] @ sigma[s] @ C.T
            if s == t:
                block = block + R
            cov[t * DX:(t + 1) * DX, s * DX:(s + 1) * DX] = block
            cov[s * DX:(s + 1) * DX, t * DX:(t + 1) * DX] = block.T
    stacked = x.transpose(0, 1).reshape(batch, n_steps * DX)
    return torch.distributions.MultivariateNormal(mean, cov).log_prob(stacked)


class _Linear(nn.Module):
    """``{"loc": M u (+ G (x - H M u)), "scale": s}`` for the transition, emission and proposal."""

    m: torch.Tensor
    s: torch.Tensor
    g: torch.Tensor

    def __init__(self, m: torch.Tensor, scale: torch.Tensor, gain: torch.Tensor | None = None) -> None:
        super().__init__()
        self.register_buffer("m", m.clone())
        self.register_buffer("s", scale.clone())
        self.register_buffer("g", gain.clone() if gain is not None else torch.zeros(0))

    def forward(self, u: torch.Tensor, x: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        loc = u @ self.m.to(u.dtype).T
        if x is not None:
            loc = loc + (x - loc @ C.to(u.dtype).T) @ self.g.to(u.dtype).T
        return {"loc": loc, "scale": self.s.to(u.dtype).expand_as(loc)}


@dataclass
class Parts:
    """The model as deepgm distributions: ``transition`` p(z|z_prev), ``emission`` p(x|z), ``proposal``
    q(z|z_prev, x) (imperfect), ``bootstrap`` (= the transition, as a proposal) and ``z0`` (one row)."""

    transition: Normal
    emission: Normal
    proposal: Normal
    bootstrap: Normal
    z0: torch.Tensor


def deepgm_parts(gain_factor: float = 0.5, scale_factor: float = 1.3, dtype: torch.dtype = torch.float64) -> Parts:
    """The model as deepgm distributions. The proposal is ``N(A z_prev + G (x - C A z_prev), s²)`` with
    ``G = gain_factor ·`` the locally optimal gain ``Q Cᵀ (C Q Cᵀ + R)⁻¹`` and ``s = scale_factor ·``
    the square root of the diagonal of the locally optimal covariance: exact step by step at
    ``(1, 1)`` up to its off-diagonal terms, imperfect by default.

    >>> parts = deepgm_parts()
    >>> parts.proposal.cond_var, parts.transition.cond_var
    (['z_prev', 'x'], ['z_prev'])
    """
    if gain_factor < 0 or scale_factor <= 0:
        raise ValueError(f"deepgm_parts: expected gain_factor >= 0 and scale_factor > 0, got {gain_factor}, "
                         f"{scale_factor}")
    opt_gain = Q @ C.T @ torch.linalg.inv(C @ Q @ C.T + R)
    opt_cov = (torch.eye(DZ, dtype=torch.float64) - opt_gain @ C) @ Q
    transition = Normal(var=["z"], cond_var=["z_prev"], net=_Linear(A, Q_SCALE), name="p_{trans}")
    emission = Normal(var=["x"], cond_var=["z"], net=_Linear(C, R_SCALE), name="p_{emit}")
    proposal = Normal(var=["z"], cond_var=["z_prev", "x"], name="q",
                      net=_Linear(A, scale_factor * opt_cov.diagonal().sqrt(), gain_factor * opt_gain))
    bootstrap = Normal(var=["z"], cond_var=["z_prev"], net=_Linear(A, Q_SCALE), name="q_{boot}")
    return Parts(transition, emission, proposal, bootstrap, Z0.to(dtype))
