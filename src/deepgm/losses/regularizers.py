"""Terms of the VAE family's regularisers: exact enumeration over a discrete latent, the DIP-VAE
covariance penalty and the total correlation of the aggregate posterior (β-TCVAE).

>>> import torch
>>> from deepgm.distributions import Categorical, Normal
>>> from deepgm.losses import Entropy, LogProb
>>> q = Categorical(var=["y"], probs=torch.tensor([0.2, 0.3, 0.5]), name="q")
>>> torch.allclose(Enumerate(q, LogProb(q))(), -Entropy(q)())  # Σ_k q_k log q_k = -H[q], exactly
True
>>> encoder = Normal(var=["z"], cond_var=["x"], loc="x", scale=1.0, name="q")
>>> x = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])  # Cov[μ(x)] = I
>>> float(DIPCovariance(encoder)(x=x)), float(DIPCovariance(encoder)(x=2 * x))  # 100 · Σ (4 - 1)²
(0.0, 1800.0)
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
import torch.distributions as td

from deepgm.distributions.base import Distribution
from deepgm.distributions.env import Env
from deepgm.distributions.families import Categorical, Normal, normal_log_density
from deepgm.errors import ObjectiveError
from deepgm.losses.core import Expectation, _check_dist
from deepgm.losses.expr import Loss, as_loss

__all__ = ["Enumerate", "DIPCovariance", "TotalCorrelation"]


def _normal(q: Distribution, where: str) -> Normal:
    if not isinstance(q, Normal):
        raise ObjectiveError(f"{where} needs a Normal q(z|x), got {type(q).__name__}")
    return q


class Enumerate(Expectation):
    """The exact expectation over a categorical variable, ``Σ_k q(y=k|x) f(y=e_k)``: ``f`` is evaluated
    once for all K one-hot values at once (they are a leading sample dimension), then weighted by
    ``q``'s probabilities. Used for the unlabelled term of the semi-supervised M2 model."""

    def __init__(self, q: Distribution, f: Loss | float) -> None:
        if not isinstance(_check_dist(q, "Enumerate"), Categorical):
            raise ObjectiveError(f"Enumerate needs a Categorical distribution, got {type(q).__name__}")
        self.q = q
        self.f = as_loss(f)

    def _eval(self, env: Env) -> Any:
        q = self.q
        assert isinstance(q, Categorical)
        dist = q.torch_dist(q.params_at(env))
        assert isinstance(dist, td.OneHotCategorical)
        probs: torch.Tensor = dist.probs  # (..., B, K)
        k = probs.shape[-1]
        values = torch.eye(k, dtype=probs.dtype, device=probs.device)
        values = values.reshape((k,) + (1,) * (probs.dim() - 1) + (k,)).expand((k,) + probs.shape)
        scope = env.child()
        base = max([env.sdims.get(c, 0) for c in q.cond_var], default=0)
        scope.set(q.var[0], values, base + 1)
        f = self.f._eval(scope)  # (K, ..., B)
        return (probs.movedim(-1, 0) * f).sum(0)

    def _render(self, latex: bool) -> str:
        inner = self.f._render(latex)
        y = self.q.var[0]
        if latex:
            return rf"\sum_{{{y}}} {self.q.prob_text}\left[{inner}\right]"
        return f"sum_{y} {self.q.prob_text}[{inner}]"


class DIPCovariance(Loss):
    """The DIP-VAE penalty (Kumar et al. 2018) on the covariance ``C`` of the aggregate posterior over
    the batch: ``λ_od Σ_{i≠j} C_ij² + λ_d Σ_i (C_ii - 1)²`` with ``C = Cov[μ(x)]`` (DIP-VAE-I) or
    ``C = Cov[μ(x)] + E[diag σ²(x)]`` (DIP-VAE-II). A scalar."""

    def __init__(self, q: Distribution, kind: Literal["i", "ii"] = "i", lambda_od: float = 10.0,
                 lambda_d: float = 100.0) -> None:
        self.q = _normal(_check_dist(q, "DIPCovariance"), "DIPCovariance")
        if kind not in ("i", "ii"):
            raise ObjectiveError(f"DIPCovariance: kind must be 'i' or 'ii', got {kind!r}")
        self.kind, self.lambda_od, self.lambda_d = kind, lambda_od, lambda_d

    def _eval(self, env: Env) -> Any:
        params = self.q.params_at(env)
        mu = params["loc"].reshape(params["loc"].shape[0], -1)
        centred = mu - mu.mean(0, keepdim=True)
        cov = centred.T @ centred / mu.shape[0]
        if self.kind == "ii":
            cov = cov + torch.diag((params["scale"].reshape(mu.shape) ** 2).mean(0))
        diag = torch.diagonal(cov)
        off = cov - torch.diag(diag)
        return self.lambda_od * (off**2).sum() + self.lambda_d * ((diag - 1) ** 2).sum()

    def own_distributions(self) -> tuple[Distribution, ...]:
        return (self.q,)

    def _render(self, latex: bool) -> str:
        name = f"DIP-{self.kind.upper()}"
        return rf"\mathrm{{{name}}}\left[{self.q.prob_text}\right]" if latex else f"{name}[{self.q.prob_text}]"


class TotalCorrelation(Loss):
    """The total correlation ``TC = E_{q(z)}[log q(z) - Σ_d log q(z_d)]`` of the aggregate posterior
    ``q(z) = E_{p(x)} q(z|x)``, by minibatch-weighted sampling (Chen et al. 2018, appendix C):
    ``log q(z_i) ≈ log Σ_j w_ij q(z_i|x_j)`` over a batch of ``M`` from a data set of ``N``, with weight
    ``1/N`` for the point's own term and ``(N-1)/(N(M-1))`` for the others (so a batch holding the whole
    data set gives the exact aggregate posterior). Uses the draw of ``z`` the other terms use. A scalar."""

    def __init__(self, q: Distribution, dataset_size: int) -> None:
        self.q = _normal(_check_dist(q, "TotalCorrelation"), "TotalCorrelation")
        if dataset_size < 1:
            raise ObjectiveError(f"TotalCorrelation: dataset_size must be positive, got {dataset_size}")
        self.dataset_size = dataset_size

    def _eval(self, env: Env) -> Any:
        q = self.q
        scope = env.child()
        q.draw_into(scope, (), None, True)
        z = scope.values[q.var[0]]
        params = q.params_at(scope)
        b = z.shape[0]
        z, loc, scale = (t.reshape(b, -1) for t in (z, params["loc"], params["scale"]))
        # log q(z_i,d | x_j): (B_i, B_j, D)
        lq = normal_log_density(z.unsqueeze(1), loc.unsqueeze(0), scale.unsqueeze(0))
        n = max(self.dataset_size, b)
        log_w = torch.full((b, b), math.log((n - 1) / (n * (b - 1))) if b > 1 else 0.0, dtype=z.dtype,
                           device=z.device)
        log_w.fill_diagonal_(-math.log(n))
        log_qz = (lq.sum(-1) + log_w).logsumexp(1)
        log_prod = (lq + log_w.unsqueeze(-1)).logsumexp(1).sum(-1)
        return (log_qz - log_prod).mean()

    def own_distributions(self) -> tuple[Distribution, ...]:
        return (self.q,)

    def own_drawn(self) -> tuple[str, ...]:
        return tuple(self.q.var)

    def _render(self, latex: bool) -> str:
        return rf"\mathrm{{TC}}\left[{self.q.prob_text}\right]" if latex else f"TC[{self.q.prob_text}]"
