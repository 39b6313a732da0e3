"""Objectives for energy-based distributions ``p(x|y) ∝ exp(-E(x|y))``, as expressions.

Each evaluates to one value per data row (reduce with ``.mean()``), differentiates through torch and
prints as text and LaTeX. None needs the normaliser except noise-contrastive estimation, which learns it.

* :class:`ContrastiveDivergence` — maximum likelihood with MCMC negatives: ``E(x) - E(sg[x̃])``, whose
  gradient is the likelihood's ``∇E(x) - E_p[∇E]`` estimated with ``x̃`` from the distribution's chain,
  started at the data (CD-k), at fresh noise (short-run MCMC) or at a :class:`ReplayBuffer` of persistent
  chains (PCD); ``alpha`` adds Du & Mordatch's energy regulariser ``α (E(x)² + E(x̃)²)``.
* :class:`ScoreMatching` — Hyvärinen's ``½‖∇E(x)‖² - tr ∇²E(x)``: ``"exact"`` (the Hessian's trace by
  one backward pass per dimension: small dimension) or ``"sliced"`` (Song et al. 2019: random
  projections ``v``, ``½‖∇E‖² - vᵀ∇²E v``; its expectation over ``v`` is the exact objective).
* :class:`DenoisingScoreMatching` — Vincent's ``½‖-∇E(x̃) + ε/σ‖²`` at ``x̃ = x + σε``: equal, up to
  a constant, to exact score matching of the data convolved with ``N(0, σ²I)``.
* :class:`NCE` — noise-contrastive estimation (Gutmann & Hyvärinen 2010) against a given noise
  distribution ``q``, ``ν`` noise draws per data row: logistic regression of data against noise with the
  log-ratio ``log p(x) - log ν q(x)``; the distribution's ``log_normalizer="learn"`` is fitted with ``E``.

>>> import torch
>>> from deepgm.distributions import EnergyDistribution
>>> p = EnergyDistribution(var=["x"], energy=lambda x: 0.5 * (x ** 2).sum(-1), event_shape=[2])
>>> sm = ScoreMatching(p).mean()
>>> print(sm)
mean(SM_exact[E_p(x)])
>>> float(sm(x=torch.zeros(5, 2)).detach())  # ½‖x‖² - tr I = -2 at x = 0
-2.0
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from torch import nn
from torch.nn.functional import softplus

from deepgm.distributions.base import Distribution
from deepgm.distributions.energy import EnergyDistribution
from deepgm.distributions.env import Env
from deepgm.distributions.mcmc import MCMCSampler, ReplayBuffer
from deepgm.errors import ObjectiveError
from deepgm.losses.expr import Loss

__all__ = ["Energy", "ContrastiveDivergence", "ScoreMatching", "DenoisingScoreMatching", "NCE"]

EXACT_MAX_DIM = 256  # exact score matching costs one backward pass per dimension


def _energy_dist(p: Any, where: str) -> EnergyDistribution:
    if not isinstance(p, EnergyDistribution):
        raise ObjectiveError(f"{where} needs an EnergyDistribution (p(x) ∝ exp(-E(x))), got {type(p).__name__}")
    return p


def _energy_text(p: EnergyDistribution, latex: bool, arg: str | None = None) -> str:
    cond = "|" + ",".join(p.cond_var) if p.cond_var else ""
    x = arg or p.var[0]
    return f"E_{{{p.name}}}({x}{cond})" if latex else f"E_{p.name}({x}{cond})"


class _EnergyTerm(Loss):
    p: EnergyDistribution

    def own_distributions(self) -> tuple[Distribution, ...]:
        return (self.p,)


class Energy(_EnergyTerm):
    """``E(x|y)`` at the current values: one energy per row (``-Energy(p)`` is the unnormalised log-density).

    >>> import torch
    >>> from deepgm.distributions import EnergyDistribution
    >>> p = EnergyDistribution(var=["x"], energy=lambda x: x.sum(-1), event_shape=[3])
    >>> Energy(p)(x=torch.ones(2, 3)).tolist(), Energy(p).to_latex()
    ([3.0, 3.0], 'E_{p}(x)')
    """

    def __init__(self, p: EnergyDistribution) -> None:
        self.p = _energy_dist(p, "Energy")

    def _eval(self, env: Env) -> Any:
        return self.p.energy_at(env)

    def _render(self, latex: bool) -> str:
        return _energy_text(self.p, latex)


class ContrastiveDivergence(_EnergyTerm):
    """``E(x|y) - E(sg[x̃]|y) [+ α (E(x|y)² + E(x̃|y)²)]`` per data row, ``x̃`` from MCMC (module docstring).

    ``init``: where the chains start — ``"data"`` (CD-k), ``"noise"`` (short-run MCMC from the
    distribution's ``init``) or ``"buffer"`` (persistent chains in ``buffer``, made with ``capacity`` and
    ``reinit_prob`` when not given). ``sampler``: the chain (default: the distribution's own sampler);
    ``steps`` overrides its number of steps. The buffer is the objective's module: a model that trains
    it saves the chains with its weights. One chain per data row.
    """

    def __init__(self, p: EnergyDistribution, init: Literal["data", "noise", "buffer"] = "buffer",
                 sampler: MCMCSampler | None = None, steps: int | None = None, buffer: ReplayBuffer | None = None,
                 capacity: int = 10_000, reinit_prob: float = 0.05, alpha: float = 0.0) -> None:
        self.p = _energy_dist(p, "ContrastiveDivergence")
        if init not in ("data", "noise", "buffer"):
            raise ObjectiveError(f"ContrastiveDivergence: init must be 'data', 'noise' or 'buffer', got {init!r}")
        if sampler is not None and not isinstance(sampler, MCMCSampler):
            raise ObjectiveError(f"ContrastiveDivergence: sampler must be an MCMC sampler, "
                                 f"got {type(sampler).__name__}")
        base = sampler or p.sampler
        self.sampler = base.with_steps(steps) if steps is not None else base
        if not (isinstance(alpha, (int, float)) and math.isfinite(alpha) and alpha >= 0):
            raise ObjectiveError(f"ContrastiveDivergence: alpha must be a finite number >= 0, got {alpha!r}")
        self.init, self.alpha = init, float(alpha)
        self.buffer = (buffer or ReplayBuffer(capacity, p.event_shape, reinit_prob)) if init == "buffer" else None
        self.last_negatives: torch.Tensor | None = None

    def _eval(self, env: Env) -> Any:
        p = self.p
        lead, x, conds = p._flat(env)
        n = len(x)
        if self.init == "data":
            x0, slots = x.detach(), None
        elif self.buffer is not None:
            x0, slots = self.buffer.draw(n, lambda k: p.initial_states(k, like=x))
        else:
            x0, slots = p.initial_states(n, like=x), None
        neg = p.run_chain(x0.to(x.dtype), [c.detach() for c in conds], self.sampler)
        if self.buffer is not None and slots is not None:
            self.buffer.update(slots, neg)
        self.last_negatives = neg
        e_pos, e_neg = p.energy_rows(x, *conds), p.energy_rows(neg, *conds)
        out = e_pos - e_neg
        if self.alpha:
            out = out + self.alpha * (e_pos ** 2 + e_neg ** 2)
        return out.reshape(lead)

    def own_modules(self) -> tuple[nn.Module, ...]:
        return (self.buffer,) if self.buffer is not None else ()

    def _render(self, latex: bool) -> str:
        kind = {"data": "CD", "noise": "SR", "buffer": "PCD"}[self.init]
        neg = (rf"\operatorname{{sg}}[\tilde{{{self.p.var[0]}}}_{{\mathrm{{{kind}}}\text{{-}}{self.sampler.steps}}}]"
               if latex else f"sg[{self.p.var[0]}~{kind}-{self.sampler.steps}]")
        out = f"{_energy_text(self.p, latex)} - {_energy_text(self.p, latex, neg)}"
        if self.alpha:
            dot = r" \cdot " if latex else " * "
            out += f" + {self.alpha:g}{dot}({_energy_text(self.p, latex)}^2 + {_energy_text(self.p, latex, neg)}^2)"
        return out


def _grad_energy(p: EnergyDistribution, x: torch.Tensor, conds: list[torch.Tensor]) -> tuple[torch.Tensor,
                                                                                                torch.Tensor]:
    """``(x with grad, ∇_x E(x))`` with the graph kept, so the objective differentiates in the parameters."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        e = p.energy_rows(x, *conds)
        (g,) = torch.autograd.grad(e.sum(), x, create_graph=True)
    return x, g


class ScoreMatching(_EnergyTerm):
    """Hyvärinen score matching, ``½‖∇E(x)‖² - tr ∇²E(x)`` per row (module docstring): ``method`` is
    ``"exact"`` (one backward pass per dimension, at most 256 dimensions) or ``"sliced"`` (``projections``
    random directions per row, ``"rademacher"`` or ``"gaussian"``)."""

    def __init__(self, p: EnergyDistribution, method: Literal["exact", "sliced"] = "exact", projections: int = 1,
                 directions: Literal["rademacher", "gaussian"] = "rademacher") -> None:
        self.p = _energy_dist(p, "ScoreMatching")
        if method not in ("exact", "sliced"):
            raise ObjectiveError(f"ScoreMatching: method must be 'exact' or 'sliced', got {method!r}")
        dim = math.prod(p.event_shape)
        if method == "exact" and dim > EXACT_MAX_DIM:
            raise ObjectiveError(f"ScoreMatching: method='exact' costs one backward pass per dimension; {p.owner} "
                                 f"has {dim} (at most {EXACT_MAX_DIM}): use method='sliced'")
        if isinstance(projections, bool) or not isinstance(projections, int) or projections < 1:
            raise ObjectiveError(f"ScoreMatching: projections must be an integer >= 1, got {projections!r}")
        if directions not in ("rademacher", "gaussian"):
            raise ObjectiveError(f"ScoreMatching: directions must be 'rademacher' or 'gaussian', got {directions!r}")
        self.method, self.projections, self.directions = method, projections, directions

    def _eval(self, env: Env) -> Any:
        p = self.p
        lead, x, conds = p._flat(env)
        with torch.enable_grad():
            x, g = _grad_energy(p, x, conds)
            flat = g.reshape(len(g), -1)
            half_norm = 0.5 * (flat ** 2).sum(-1)
            if self.method == "exact":
                trace = torch.zeros_like(half_norm)
                for i in range(flat.shape[1]):
                    (h,) = torch.autograd.grad(flat[:, i].sum(), x, create_graph=True)
                    trace = trace + h.reshape(len(h), -1)[:, i]
                out = half_norm - trace
            else:
                quad = torch.zeros_like(half_norm)
                for _ in range(self.projections):
                    v = torch.randn_like(g) if self.directions == "gaussian" else \
                        torch.randint_like(g, 0, 2) * 2 - 1
                    (hv,) = torch.autograd.grad((g * v).sum(), x, create_graph=True)
                    quad = quad + (hv * v).reshape(len(v), -1).sum(-1)
                out = half_norm - quad / self.projections
        return out.reshape(lead)

    def _render(self, latex: bool) -> str:
        e = _energy_text(self.p, latex)
        if latex:
            tr = r"\operatorname{tr}\nabla^2" if self.method == "exact" else \
                r"\mathbb{E}_{v}\, v^\top \nabla^2"
            return rf"\tfrac{{1}}{{2}}\left\|\nabla {e}\right\|^2 - {tr} {e}"
        return f"SM_{self.method}[{e}]"


class DenoisingScoreMatching(_EnergyTerm):
    """``½‖-∇E(x̃) + ε/σ‖²`` per row at ``x̃ = x + σε``, ``ε ~ N(0, I)`` (``noise_std`` σ); times σ² with
    ``weighted=True`` (Song & Ermon's weighting, for comparing noise levels)."""

    def __init__(self, p: EnergyDistribution, noise_std: float, weighted: bool = False) -> None:
        self.p = _energy_dist(p, "DenoisingScoreMatching")
        if isinstance(noise_std, bool) or not isinstance(noise_std, (int, float)) or not math.isfinite(noise_std) \
                or noise_std <= 0:
            raise ObjectiveError(f"DenoisingScoreMatching: noise_std must be a finite number > 0, got {noise_std!r}")
        self.sigma, self.weighted = float(noise_std), weighted

    def _eval(self, env: Env) -> Any:
        p = self.p
        lead, x, conds = p._flat(env)
        eps = torch.randn_like(x)
        with torch.enable_grad():
            _, g = _grad_energy(p, x + self.sigma * eps, conds)
            out = 0.5 * ((-g + eps / self.sigma) ** 2).reshape(len(g), -1).sum(-1)
        if self.weighted:
            out = out * self.sigma ** 2
        return out.reshape(lead)

    def _render(self, latex: bool) -> str:
        x = self.p.var[0]
        if latex:
            e = _energy_text(self.p, latex, rf"\tilde{{{x}}}")
            return (rf"\mathbb{{E}}_{{\epsilon}}\tfrac{{1}}{{2}}\left\|-\nabla {e} + \epsilon / {self.sigma:g}"
                    rf"\right\|^2,\ \tilde{{{x}}} = {x} + {self.sigma:g}\,\epsilon")
        return f"DSM_{self.sigma:g}[{_energy_text(self.p, latex)}]"


class NCE(_EnergyTerm):
    """Noise-contrastive estimation per data row: ``-log σ(G(x)) - Σ_k log σ(-G(y_k))``, ``y_k ~ q``
    (``nu`` draws per row), ``G = log p - log q - log ν`` with ``p``'s learned log-normaliser."""

    def __init__(self, p: EnergyDistribution, noise: Distribution, nu: int = 1) -> None:
        self.p = _energy_dist(p, "NCE")
        if not isinstance(noise, Distribution):
            raise ObjectiveError(f"NCE: noise must be a distribution, got {type(noise).__name__}")
        if noise.var != p.var or noise.cond_var:
            raise ObjectiveError(f"NCE: the noise must be an unconditional distribution over {p.var}, got "
                                 f"{noise.prob_text}")
        if not p.normalized:
            raise ObjectiveError(f"NCE fits the log-normaliser of {p.owner}: build it with log_normalizer='learn' "
                                 "(or a number, to keep it fixed)")
        if isinstance(nu, bool) or not isinstance(nu, int) or nu < 1:
            raise ObjectiveError(f"NCE: nu (noise draws per data row) must be an integer >= 1, got {nu!r}")
        self.noise, self.nu = noise, nu

    def _eval(self, env: Env) -> Any:
        p, q = self.p, self.noise
        log_nu = math.log(self.nu)
        g_data = p.log_prob_at(env) - q.log_prob_at(env) - log_nu
        x = env.get(p.var[0], p)
        rows = int(x.shape[env.sdims.get(p.var[0], 0)])
        scope = env.child()
        scope.salt = id(self)
        q.draw_into(scope, (self.nu,), rows, False)
        g_noise = p.log_prob_at(scope) - q.log_prob_at(scope).detach() - log_nu
        return softplus(-g_data) + softplus(g_noise).sum(0)

    def own_distributions(self) -> tuple[Distribution, ...]:
        return (self.p, self.noise)

    def _render(self, latex: bool) -> str:
        p, q = self.p.prob_text, self.noise.prob_text
        if latex:
            return rf"\mathrm{{NCE}}_{{\nu={self.nu}}}\left[{p} \,\middle\|\, {q}\right]"
        return f"NCE_{self.nu}[{p}||{q}]"
