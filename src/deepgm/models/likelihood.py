"""Importance-sampled estimates of the marginal log-likelihood.

``log p(x) ≈ log (1/k) Σ_i p(x, z_i) / q(z_i|x)`` with ``z_i ~ q(z|x)``, for every data point. With
k = 5000 over a test set this is the most expensive number a VAE paper reports (about 2·10¹³ flops
for a 784-200-200-50 model on MNIST), so :func:`log_likelihood` is organised for the hardware:

* **passes of a few thousand rows.** The data points are split into blocks of ``b`` and the ``k`` draws
  into chunks of ``n``, with ``b·n ≈ rows`` (2048 by default): the decoder sees ``(n·b, ...)`` batches
  whose activations take a few megabytes and stay in cache, instead of ``chunk × batch × D`` tensors of
  hundreds of megabytes.
* **the proposal's parameters once per data point.** Each block is one evaluation (one ``Env``); its
  passes are child scopes of it, so ``q(z|x)``'s network runs once per block, and what a pass adds to
  the memo (its draws, the decoder's outputs) is dropped when the pass ends (``Env.forget_since``).
* **a stable sum.** Each pass reduces its ``n`` log-weights with ``logsumexp``; a block's partial sums
  are combined with one more ``logsumexp``. The result is ``logsumexp`` over all ``k`` draws, whatever the
  chunking, to float tolerance.
* **no graph, all threads.** Everything runs under ``torch.no_grad``; the kernels use as many threads
  as torch has (``torch.set_num_threads``, ``OMP_NUM_THREADS``), which this function never changes.

It works for any ``p`` and ``q`` through the evaluation protocol (``q.draw_into(env, (n,), None, False)``,
``p``'s factors' ``log_prob_at(env)``, ``q.log_prob_at(env)``). One factor has a fast path that computes
the same value with fewer passes over memory: a :class:`~deepgm.distributions.Bernoulli` over observed
data with logits, whose log-density ``Σ_d x_d l_d - softplus(l_d)`` is taken as a product with ``x``
minus a sum of ``softplus`` (computed in slices of 1 MB) instead of the elementwise cross-entropy and its
temporaries. Measured by ``benchmarks/eval_speed.py``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from deepgm.distributions.base import Distribution
from deepgm.distributions.env import Env
from deepgm.distributions.families import Bernoulli
from deepgm.errors import ObjectiveError

__all__ = ["log_likelihood", "DEFAULT_ROWS"]

_SLICE_ELEMENTS = 1 << 18
"""Elements of one slice of the softplus temporary (1 MB of float32): it stays in a core's L2 cache, and
the allocator reuses it rather than asking the system for fresh pages in every pass."""

DEFAULT_ROWS = 2048
"""(data point, draw) pairs evaluated in one pass by default: a 784-unit decoder's activations of a pass
then take a few megabytes."""


@torch.no_grad()
def log_likelihood(p: Distribution, q: Distribution, inputs: Mapping[str, Any], k: int = 5000,
                   chunk: int | None = None, batch_size: int | None = None,
                   rows: int = DEFAULT_ROWS) -> torch.Tensor:
    """``log p(x) ≈ log (1/k) Σ_k p(x,z_k)/q(z_k|x)``, ``z_k ~ q(z|x)``, per data point.

    ``p`` is the joint ``p(x,z)``; ``q`` the proposal (usually the encoder). ``inputs`` are batched along
    their first dimension (deepgm's convention). One pass evaluates ``n`` draws for each of ``b`` data
    points: ``chunk`` caps ``n`` and ``batch_size`` sets ``b``; by default both are chosen so that
    ``n·b ≈ rows``. The estimate does not depend on them beyond the order in which the draws are made.
    See the module docstring for how the passes are organised.

    With the exact posterior as proposal every weight is ``p(x)``: here ``z ~ N(0, 1)``,
    ``x|z ~ N(z, 1)``, ``p(z|x) = N(x/2, ½)`` and ``log p(x) = -½ log 4π - x²/4``.

    >>> import math
    >>> from deepgm.distributions import Normal
    >>> prior = Normal(var=["z"], loc=0.0, scale=1.0, features_shape=[1])
    >>> decoder = Normal(var=["x"], cond_var=["z"], loc="z", scale=1.0)
    >>> class Posterior(torch.nn.Module):
    ...     def forward(self, x):
    ...         return {"loc": x / 2, "scale": torch.full_like(x, math.sqrt(0.5))}
    >>> q = Normal(var=["z"], cond_var=["x"], net=Posterior(), name="q")
    >>> x = torch.tensor([[0.0], [1.0], [2.0]])
    >>> log_likelihood(decoder * prior, q, {"x": x}, k=10, chunk=3)  # 10 draws in passes of 3, 3 and 3 + 1
    tensor([-1.2655, -1.5155, -2.2655])
    >>> -0.5 * math.log(4 * math.pi) - x[:, 0] ** 2 / 4
    tensor([-1.2655, -1.5155, -2.2655])
    """
    for name, value in (("k", k), ("chunk", chunk), ("batch_size", batch_size), ("rows", rows)):
        if value is not None and value < 1:
            raise ObjectiveError(f"log_likelihood: {name} must be a positive integer, got {name}={value}")
    missing = [v for v in q.var if v not in p.var]
    if missing:
        raise ObjectiveError(f"log_likelihood: p must be the joint over the data and {q.var}; "
                             f"{p.prob_text} lacks {missing}")
    n_data = _batch_len(p, q, inputs)
    draws, block = _layout(k, chunk, batch_size, rows, n_data)
    if n_data is None or block >= n_data:
        out = _block_log_likelihood(p, q, dict(inputs), k, draws)
    else:
        out = torch.cat([_block_log_likelihood(p, q, _rows_of(inputs, n_data, i, i + block), k, draws)
                         for i in range(0, n_data, block)])
    return out - math.log(k)


def _layout(k: int, chunk: int | None, batch_size: int | None, rows: int, n_data: int | None) -> tuple[int, int]:
    """(draws per pass, data points per pass): what is given is kept (``chunk`` as a cap), the rest is
    chosen to make passes of about ``rows``; the draws are spread evenly over the passes."""
    if batch_size is not None and chunk is not None:
        n = min(chunk, k)
    elif batch_size is not None:
        n = min(k, max(1, rows // min(batch_size, n_data or batch_size)))
    else:
        n = min(k, rows, k if chunk is None else chunk)
    passes = -(-k // n)
    n = -(-k // passes)
    return n, batch_size if batch_size is not None else max(1, rows // n)


def _batch_len(p: Distribution, q: Distribution, inputs: Mapping[str, Any]) -> int | None:
    """The number of data points: the leading size of the observed data (``p``'s variables that ``q``
    does not draw), or None when the data carries no batch dimension."""
    for name in p.var:
        if name in q.var:
            continue
        value = inputs.get(name)
        if torch.is_tensor(value):
            return int(value.shape[0]) if value.dim() >= 2 else None
    return None


def _rows_of(inputs: Mapping[str, Any], n_data: int, start: int, stop: int) -> dict[str, Any]:
    """The data points ``start:stop`` of every batched input; other inputs as they are."""
    return {name: (v[start:stop] if torch.is_tensor(v) and v.dim() >= 1 and v.shape[0] == n_data else v)
            for name, v in inputs.items()}


def _block_log_likelihood(p: Distribution, q: Distribution, inputs: dict[str, Any], k: int,
                          draws: int) -> torch.Tensor:
    """``log Σ_k p(x,z_k)/q(z_k|x)`` for one block of data points, ``draws`` at a time (one Env)."""
    env = Env(inputs)
    parts: list[torch.Tensor] = []
    keep: tuple[int, int, int] | None = None
    for start in range(0, k, draws):
        scope = env.child()
        scope.salt = start + 1
        q.draw_into(scope, (min(draws, k - start),), None, False)
        if keep is None:  # the proposal's parameters are memoised now: keep them for the later passes
            keep = env.memo_mark()
        parts.append((_log_joint(p, scope) - q.log_prob_at(scope)).logsumexp(0))
        env.forget_since(keep)
    return parts[0] if len(parts) == 1 else torch.stack(parts).logsumexp(0)


def _log_joint(p: Distribution, env: Env) -> torch.Tensor:
    """``log p(x,z)``: the sum of ``p``'s factors' log-densities, as ``JointDistribution`` sums them."""
    total: torch.Tensor | None = None
    for f in p.factors():
        if not f.has_density:
            continue
        lp = _bernoulli_log_prob(f, env) if isinstance(f, Bernoulli) else None
        if lp is None:
            lp = f.log_prob_at(env)
        total = lp if total is None else total + lp
    if total is None:
        raise ObjectiveError(f"log_likelihood: {p.prob_factorized_text} has no factor with a density")
    return total


def _bernoulli_log_prob(f: Bernoulli, env: Env) -> torch.Tensor | None:
    """``f.log_prob_at(env)`` for observed ``x`` (no sample dimensions) and logits ``(S, *x.shape)``:
    ``x·l - Σ softplus(l)`` over the event dimensions, without the cross-entropy's temporaries.
    None when the case is another one (then the factor's own ``log_prob_at`` is used)."""
    name = f.var[0]
    x = env.values.get(name)
    ne = f.event_ndim
    if not torch.is_tensor(x) or env.sdims.get(name, 0) or ne < 1 or x.dim() < ne:
        return None
    logits = f.params_at(env).get("logits")
    if logits is None or logits.dtype != x.dtype or logits.dim() != x.dim() + 1 or logits.shape[1:] != x.shape:
        return None
    batch = x.shape[: x.dim() - ne]
    flat_x = x.reshape(math.prod(batch), -1)
    flat_l = logits.reshape(logits.shape[0], flat_x.shape[0], flat_x.shape[1])
    if flat_x.shape[0] == 1:  # one data point per pass (k in the thousands): a matrix-vector product
        dot = (flat_l[:, 0] @ flat_x[0]).unsqueeze(1)
    else:
        dot = torch.einsum("sbd,bd->sb", flat_l, flat_x)
    rows = flat_l.reshape(-1, flat_l.shape[-1])
    step = max(1, _SLICE_ELEMENTS // rows.shape[1])
    soft = torch.cat([F.softplus(rows[i:i + step]).sum(-1) for i in range(0, len(rows), step)])
    return (dot - soft.reshape(dot.shape)).reshape(logits.shape[:1] + batch)
