"""The Bernoulli–Bernoulli restricted Boltzmann machine, its exact and annealed-importance normalisers.

``E(v, h) = -bᵀv - cᵀh - vᵀWh`` over binary visible ``v`` and hidden ``h``. Summing ``h`` out gives the
*free energy* ``F(v) = -bᵀv - Σ_j softplus(c_j + (vW)_j)``, so an :class:`RBM` is an
:class:`~deepgm.distributions.energy.EnergyDistribution` over ``v`` with energy ``F``: contrastive
divergence (``ContrastiveDivergence(rbm, init="data", steps=k)``: CD-k; ``init="buffer"`` with
``reinit_prob=0``: PCD) trains it, and its chains are block Gibbs sampling (``h ~ p(h|v)``, ``v ~ p(v|h)``).

The normaliser ``Z = Σ_v exp(-F(v))``:

* :meth:`RBM.log_partition_exact` enumerates the smaller layer (at most 2²⁰ states);
* :func:`ais_log_partition` is annealed importance sampling (Salakhutdinov & Murray 2008) from the
  base-rate model ``p_A(v, h) ∝ exp(b_Aᵀv)`` (``b_A`` the logits of the training data's pixel means)
  through ``p_k(v) ∝ p_A*(v)^{1-β_k} p_B*(v)^{β_k}``, one Gibbs transition per temperature, many
  chains. ``log Ẑ = log Z_A + log mean_i w_i`` is unbiased in ``Z``, so in expectation it *under*-estimates
  ``log Z`` (and over-estimates a log-likelihood ``-F(v) - log Ẑ``) — with enough temperatures the
  bias is small; the result reports ``log Ẑ ± 3`` standard errors of ``Ẑ`` as S&M do.

>>> import torch
>>> _ = torch.manual_seed(0)
>>> rbm = RBM(["v"], visible=6, hidden=3, init_std=0.5)
>>> exact = rbm.log_partition_exact()
>>> v = torch.tensor([[0.0, 1, 0, 1, 1, 0]])
>>> by_h = rbm.joint_log_weights(v).logsumexp(-1)  # log Σ_h exp(-E(v, h)), by brute force over h
>>> torch.allclose(-rbm.free_energy(v), by_h)
True
>>> ais = ais_log_partition(rbm, chains=200, temperatures=500)
>>> abs(ais.log_z - float(exact)) < 0.05
True
>>> rbm.log_prob({"v": torch.full((1, 6), 2.0)})
Traceback (most recent call last):
...
deepgm.errors.SupportError: RBM p(v): variable 'v' must be binary (0 or 1); got [2.0, 2.0, 2.0, 2.0] (6 of 6 values)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.functional import softplus

from deepgm.distributions.energy import EnergyDistribution
from deepgm.distributions.mcmc import EnergyFn, MCMCSampler
from deepgm.errors import ConfigError, DeepGMError, ShapeError, SupportError

__all__ = ["RBM", "Gibbs", "AISResult", "ais_log_partition", "ais_betas", "base_rate_logits"]

EXACT_MAX_STATES = 2 ** 20


@dataclass(frozen=True, kw_only=True)
class Gibbs(MCMCSampler):
    """``steps`` sweeps of block Gibbs sampling of an RBM (``h ~ p(h|v)``, then ``v ~ p(v|h)``): it runs
    through :meth:`RBM.run_chain`, which knows the conditionals; an energy alone cannot drive it."""

    def run(self, energy: EnergyFn, x0: torch.Tensor) -> torch.Tensor:
        raise DeepGMError("Gibbs sampling needs an RBM's conditionals: use RBM.run_chain(x0, sampler=Gibbs(...))")


class RBM(EnergyDistribution):
    """A Bernoulli–Bernoulli RBM ``p(v) = exp(-F(v)) / Z`` over ``visible`` binary units (module docstring).

    ``hidden``: the number of hidden units; ``init_std``: the weights' initial standard deviation
    (S&M and Hinton's guide: 0.01); ``visible_bias``: initial ``b`` (e.g. :func:`base_rate_logits` of the
    training data), 0 by default; ``sampler``: the Gibbs sweeps of ``sample`` (default 1000) from
    ``init_states`` (independent pixels with ``b``'s probabilities). ``log_normalizer``: a known ``log Z``
    (e.g. from :func:`ais_log_partition`), needed by ``log_prob``.
    """

    def __init__(self, var: Sequence[str] | str = "x", visible: int = 784, hidden: int = 500, name: str = "p", *,
                 init_std: float = 0.01, visible_bias: torch.Tensor | None = None, sampler: Gibbs | None = None,
                 log_normalizer: float | torch.Tensor | None = None) -> None:
        for what, n in (("visible", visible), ("hidden", hidden)):
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise ConfigError("RBM", what, "an integer >= 1", n)
        if not (math.isfinite(init_std) and init_std >= 0):
            raise ConfigError("RBM", "init_std", "a finite number >= 0", init_std)
        super().__init__(var, (), name, energy=None, event_shape=[visible], sampler=sampler or Gibbs(steps=1000),
                         log_normalizer=log_normalizer)
        if not isinstance(self.sampler, Gibbs):
            raise TypeError(f"{self.owner}: sampler must be a Gibbs sampler, got {type(self.sampler).__name__}")
        self.visible, self.hidden = visible, hidden
        self.weight = nn.Parameter(torch.randn(visible, hidden) * init_std)
        b = torch.zeros(visible) if visible_bias is None else torch.as_tensor(visible_bias, dtype=torch.float32)
        if tuple(b.shape) != (visible,):
            raise ShapeError(f"{self.owner}: visible_bias must have shape ({visible},), got {tuple(b.shape)}")
        self.visible_bias = nn.Parameter(b.clone())
        self.hidden_bias = nn.Parameter(torch.zeros(hidden))

    # -- energies and conditionals -----------------------------------------------------------------
    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """``F(v) = -bᵀv - Σ_j softplus(c_j + (vW)_j)`` of rows ``v`` ``(N, visible)``: ``(N,)``."""
        return -v @ self.visible_bias - softplus(v @ self.weight + self.hidden_bias).sum(-1)

    def energy_rows(self, x: torch.Tensor, *conditions: torch.Tensor) -> torch.Tensor:
        return self.free_energy(x)

    def joint_log_weights(self, v: torch.Tensor) -> torch.Tensor:
        """``-E(v, h)`` for every row of ``v`` and every ``h ∈ {0,1}^hidden``: ``(N, 2^hidden)`` (brute force:
        small ``hidden`` only; a reference for :meth:`free_energy`)."""
        h = _all_states(self.hidden, v.dtype, v.device)
        return (v @ self.visible_bias)[:, None] + (h @ self.hidden_bias)[None] + (v @ self.weight) @ h.T

    def hidden_probs(self, v: torch.Tensor) -> torch.Tensor:
        """``p(h_j = 1 | v) = σ(c_j + (vW)_j)``."""
        return torch.sigmoid(v @ self.weight + self.hidden_bias)

    def visible_probs(self, h: torch.Tensor) -> torch.Tensor:
        """``p(v_i = 1 | h) = σ(b_i + (Wh)_i)``."""
        return torch.sigmoid(h @ self.weight.T + self.visible_bias)

    def gibbs(self, v: torch.Tensor, steps: int) -> torch.Tensor:
        """``steps`` sweeps of block Gibbs sampling from the rows ``v``; the binary last states."""
        with torch.no_grad():
            for _ in range(steps):
                h = torch.bernoulli(self.hidden_probs(v))
                v = torch.bernoulli(self.visible_probs(h))
        return v

    def run_chain(self, x0: torch.Tensor, conditions: Sequence[torch.Tensor] = (),
                  sampler: MCMCSampler | None = None) -> torch.Tensor:
        return self.gibbs(x0.detach(), (sampler or self.sampler).steps)

    def initial_states(self, n: int, like: torch.Tensor | None = None) -> torch.Tensor:
        """``n`` independent binary rows with the visible biases' probabilities ``σ(b)``."""
        with torch.no_grad():
            return torch.bernoulli(torch.sigmoid(self.visible_bias.detach()).expand(n, self.visible))

    def _check_value(self, x: torch.Tensor) -> None:
        with torch.no_grad():
            ok = (x == 0) | (x == 1)
            if not bool(ok.all()):
                bad = x[~ok]
                raise SupportError(f"{self.owner}: variable '{self.var[0]}' must be binary (0 or 1); got "
                                   f"{bad.flatten()[:4].tolist()} ({bad.numel()} of {x.numel()} values)")
        self._values_checked = True

    # -- the normaliser ----------------------------------------------------------------------------
    @torch.no_grad()
    def log_partition_exact(self) -> torch.Tensor:
        """``log Z`` by enumerating the smaller layer's ``2^min(visible, hidden)`` states (at most 2²⁰)."""
        small = min(self.visible, self.hidden)
        if 2 ** small > EXACT_MAX_STATES:
            raise DeepGMError(f"{self.owner}: exact log Z enumerates 2^{small} states (at most 2^20 = "
                              f"{EXACT_MAX_STATES}); use ais_log_partition")
        w, b, c = self.weight.double(), self.visible_bias.double(), self.hidden_bias.double()
        parts = []
        for states in _state_chunks(small, torch.float64, w.device):
            if self.hidden <= self.visible:  # Σ_h exp(cᵀh) Π_i (1 + exp(b_i + (Wh)_i))
                parts.append(states @ c + softplus(states @ w.T + b).sum(-1))
            else:  # Σ_v exp(-F(v))
                parts.append(states @ b + softplus(states @ w + c).sum(-1))
        return torch.cat(parts).logsumexp(0).to(self.weight.dtype)

    def log_likelihood(self, v: torch.Tensor, log_z: float | torch.Tensor) -> torch.Tensor:
        """``log p(v) = -F(v) - log Z`` of rows ``v`` given ``log Z``."""
        with torch.no_grad():
            return -self.free_energy(v) - torch.as_tensor(log_z, dtype=v.dtype)

    def extra_repr(self) -> str:
        return f"{self.prob_text}, visible={self.visible}, hidden={self.hidden}"


def _all_states(n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.tensor(list(itertools.product((0.0, 1.0), repeat=n)), dtype=dtype, device=device).reshape(-1, n)


def _state_chunks(n: int, dtype: torch.dtype, device: torch.device, chunk_bits: int = 14) -> list[torch.Tensor]:
    """All of ``{0,1}^n`` as rows, in chunks of at most ``2^chunk_bits``: the low bits vary within a chunk."""
    low = min(n, chunk_bits)
    base = _all_states(low, dtype, device)
    out = []
    for high in itertools.product((0.0, 1.0), repeat=n - low):
        prefix = torch.tensor(high, dtype=dtype, device=device).expand(len(base), n - low)
        out.append(torch.cat([prefix, base], dim=1))
    return out


def base_rate_logits(v: torch.Tensor, pseudo_count: float = 5.0) -> torch.Tensor:
    """The logits of the pixel means of binary data ``v`` ``(N, D)``, smoothed by ``pseudo_count``
    imaginary examples at ½ (no pixel gets a probability of exactly 0 or 1): the base-rate model's ``b_A``.

    >>> base_rate_logits(torch.tensor([[1.0, 0.0]] * 5), pseudo_count=5.0).tolist()  # means 0.75, 0.25
    [1.0986123085021973, -1.0986123085021973]
    """
    p = (v.sum(0) + 0.5 * pseudo_count) / (len(v) + pseudo_count)
    return torch.log(p) - torch.log1p(-p)


def ais_betas(temperatures: int) -> torch.Tensor:
    """``temperatures + 1`` inverse temperatures from 0 to 1, spaced as Salakhutdinov & Murray's 14,500:
    1/29 of them evenly in [0, 0.5), 8/29 in [0.5, 0.9), 20/29 in [0.9, 1].

    >>> b = ais_betas(14500); len(b), float(b[0]), float(b[500]), float(b[4500]), float(b[-1])
    (14501, 0.0, 0.5, 0.9, 1.0)
    """
    if isinstance(temperatures, bool) or not isinstance(temperatures, int) or temperatures < 3:
        raise ConfigError("ais_betas", "temperatures", "an integer >= 3", temperatures)
    n1 = max(1, round(temperatures * 500 / 14500))
    n2 = max(1, round(temperatures * 4000 / 14500))
    n3 = temperatures - n1 - n2
    return torch.cat([torch.linspace(0.0, 0.5, n1 + 1, dtype=torch.float64)[:-1],
                      torch.linspace(0.5, 0.9, n2 + 1, dtype=torch.float64)[:-1],
                      torch.linspace(0.9, 1.0, n3 + 1, dtype=torch.float64)])


@dataclass(frozen=True)
class AISResult:
    """An AIS estimate: ``log_z`` (``log Ẑ``), ``log_z_lo``/``log_z_hi`` (``log(Ẑ ∓ 3 s.e.)``; ``-inf``
    when ``Ẑ - 3 s.e. ≤ 0``), ``log_z_base`` (``log Z_A``), the number of ``chains`` and
    ``temperatures``, and ``log_weights`` of the chains."""

    log_z: float
    log_z_lo: float
    log_z_hi: float
    log_z_base: float
    chains: int
    temperatures: int
    log_weights: torch.Tensor


@torch.no_grad()
def ais_log_partition(rbm: RBM, chains: int = 100, temperatures: int = 14_500,
                      base_logits: torch.Tensor | None = None,
                      betas: Callable[[int], torch.Tensor] = ais_betas) -> AISResult:
    """Annealed importance sampling of ``log Z`` of ``rbm`` (module docstring): ``chains`` independent
    runs through ``temperatures`` intermediate distributions (``betas(temperatures)``, 0 to 1), from the
    base-rate model with visible logits ``base_logits`` (default 0: uniform), whose ``log Z_A`` is
    ``Σ_i softplus(b_A,i) + hidden · log 2`` (its hidden units have no weights). Runs in float64."""
    for what, n, lo in (("chains", chains, 1), ("temperatures", temperatures, 3)):
        if isinstance(n, bool) or not isinstance(n, int) or n < lo:
            raise ConfigError("ais_log_partition", what, f"an integer >= {lo}", n)
    w, b, c = rbm.weight.double(), rbm.visible_bias.double(), rbm.hidden_bias.double()
    b_a = torch.zeros_like(b) if base_logits is None else base_logits.to(b)
    if b_a.shape != b.shape:
        raise ShapeError(f"ais_log_partition: base_logits must have shape {tuple(b.shape)}, got {tuple(b_a.shape)}")
    beta = [float(bk) for bk in betas(temperatures)]
    v = torch.bernoulli(torch.sigmoid(b_a).expand(chains, rbm.visible))
    log_w = torch.zeros(chains, dtype=torch.float64, device=w.device)
    for k in range(1, len(beta)):
        # log p_k*(v) - log p_{k-1}*(v), with log p_β*(v) = (1-β) b_Aᵀv + β bᵀv + Σ_j softplus(β (c + vW)_j)
        act = v @ w + c
        step = beta[k] - beta[k - 1]
        log_w += step * (v @ (b - b_a)) + (softplus(beta[k] * act) - softplus(beta[k - 1] * act)).sum(-1)
        if k < len(beta) - 1:  # the transition T_k keeps p_k invariant: Gibbs at inverse temperature β_k
            h = torch.bernoulli(torch.sigmoid(beta[k] * act))
            v = torch.bernoulli(torch.sigmoid((1 - beta[k]) * b_a + beta[k] * (h @ w.T + b)))
    # at β = 0 each hidden unit still sums over its two states: p_0*(v) = 2^H exp(b_Aᵀv)
    log_z_a = float(softplus(b_a).sum()) + rbm.hidden * math.log(2.0)
    top = log_w.max()
    r = (log_w - top).exp()
    mean, se = r.mean(), r.std() / math.sqrt(chains) if chains > 1 else torch.zeros(())
    log_mean = float(top + mean.log())
    lower = float(top + (mean - 3 * se).log()) if float(mean - 3 * se) > 0 else -math.inf
    upper = float(top + (mean + 3 * se).log())
    return AISResult(log_z_a + log_mean, log_z_a + lower, log_z_a + upper, log_z_a, chains, temperatures, log_w.float())
