"""NADE's hidden layer and logits for all ``D`` conditionals at once, with a hand-written backward pass.

``a_d = c + Σ_{k<d} x_k W_{:,k}`` (an exclusive cumulative sum over the inputs), ``h_d = σ(a_d)``,
``logit_d = b_d + V_d · h_d``. Written with autograd this costs a cumulative sum over ``(M, D, H)`` and
about ten passes over tensors of that size; :func:`nade_logits` computes the prefix sums blockwise as
small matrix products (inside a block of ``k`` inputs a strictly lower-triangular mask, across blocks a
cumulative sum of ``(M, D/k, H)`` block totals), works in place, processes the batch in chunks, and keeps
only ``h`` for its backward pass. Gradients flow to ``W``, ``c``, ``V`` and ``b``; ``x`` is data (0/1 pixels)
and gets none (:func:`nade_logits` falls back to plain autograd when ``x`` requires a gradient).

>>> import torch
>>> _ = torch.manual_seed(0)
>>> x = torch.bernoulli(torch.full((3, 10), 0.5))
>>> W, V = torch.randn(4, 10), torch.randn(10, 4)
>>> c, b = torch.randn(3, 4), torch.randn(3, 10)
>>> ref = nade_logits_reference(x, W, c, V, b)
>>> bool(torch.allclose(nade_logits(x, W, c, V, b, block=3), ref, atol=1e-5))
True
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["nade_logits", "nade_logits_reference"]

CHUNK_ELEMENTS = 2 ** 23  # rows of the batch per chunk: about this many (D · H) entries, ~32 MB of float32


def nade_logits_reference(x: torch.Tensor, W: torch.Tensor, c: torch.Tensor, V: torch.Tensor,
                          b: torch.Tensor) -> torch.Tensor:
    """The same logits by plain autograd (an exclusive ``cumsum`` over ``(M, D, H)``): the definition
    :func:`nade_logits` is tested against. Shapes: ``x`` ``(M, D)``, ``W`` ``(H, D)``, ``c`` ``(M, H)``,
    ``V`` ``(D, H)``, ``b`` ``(M, D)``."""
    contrib = x.unsqueeze(-1) * W.t().unsqueeze(0)
    a = c.unsqueeze(1) + contrib.cumsum(1) - contrib
    return (torch.sigmoid(a) * V.unsqueeze(0)).sum(-1) + b


def _blocks(x: torch.Tensor, Wt: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """``x`` ``(M, nb, k)`` and ``Wt`` ``(nb, k, H)``, both zero-padded to ``nb · k ≥ D`` inputs."""
    pad = (-x.shape[1]) % k
    if pad:
        x, Wt = F.pad(x, (0, pad)), F.pad(Wt, (0, 0, 0, pad))
    nb = x.shape[1] // k
    return x.reshape(x.shape[0], nb, k), Wt.reshape(nb, k, Wt.shape[1]), pad


def _hidden(xb: torch.Tensor, Wb: torch.Tensor, c: torch.Tensor, tri: torch.Tensor) -> torch.Tensor:
    """``h = σ(a)`` ``(M, nb, k, H)`` for one chunk (padded inputs included)."""
    a = torch.einsum("mbij,bjh->mbih", xb.unsqueeze(2) * tri, Wb)  # inside each block: Σ_{j<i}
    totals = torch.einsum("mbj,bjh->mbh", xb, Wb)
    a += (totals.cumsum(1) - totals + c.unsqueeze(1)).unsqueeze(2)  # the blocks before, and c
    return a.sigmoid_()


class _NADELogits(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, W: torch.Tensor, c: torch.Tensor, V: torch.Tensor,
                block: int) -> torch.Tensor:
        m, d = x.shape
        k = max(1, min(block, d))
        xb, Wb, pad = _blocks(x, W.t(), k)
        Vb = F.pad(V, (0, 0, 0, pad)).reshape(Wb.shape)
        tri = torch.ones(k, k, dtype=x.dtype, device=x.device).tril(-1)
        rows = max(1, CHUNK_ELEMENTS // (d * W.shape[0]))
        out, hs = [], []
        for s in range(0, m, rows):
            h = _hidden(xb[s:s + rows], Wb, c[s:s + rows], tri)
            out.append(torch.einsum("mbih,bih->mbi", h, Vb))
            hs.append(h)
        ctx.save_for_backward(xb, Vb, tri, *hs)
        ctx.rows, ctx.d, ctx.w_shape = rows, d, W.shape
        return torch.cat(out).reshape(m, -1)[:, :d]

    @staticmethod
    def backward(ctx: Any, *grads: torch.Tensor) -> tuple[Any, ...]:
        xb, Vb, tri, *hs = ctx.saved_tensors
        g = F.pad(grads[0], (0, xb.shape[1] * xb.shape[2] - ctx.d)).reshape(xb.shape)
        dWb, dVb = torch.zeros_like(Vb), torch.zeros_like(Vb)
        dc = []
        for i, s in enumerate(range(0, xb.shape[0], ctx.rows)):
            h, gs, xs = hs[i], g[s:s + ctx.rows], xb[s:s + ctx.rows]
            dVb += torch.einsum("mbi,mbih->bih", gs, h)
            da = torch.sub(1.0, h).mul_(h).mul_(gs.unsqueeze(-1)).mul_(Vb)  # ∂/∂a = g V σ'(a)
            dWb += torch.einsum("mbij,mbih->bjh", xs.unsqueeze(2) * tri, da)  # a_i ← x_j, j < i in a block
            per_block = da.sum(2)  # (M, nb, H): each block's a collects the totals of the blocks before
            later = per_block.flip(1).cumsum(1).flip(1) - per_block
            dWb += torch.einsum("mbj,mbh->bjh", xs, later)
            dc.append(per_block.sum(1))
        n = ctx.w_shape[1]
        dW = dWb.reshape(-1, dWb.shape[-1])[:n].t()
        dV = dVb.reshape(-1, dVb.shape[-1])[:n]
        return None, dW, torch.cat(dc), dV, None


def nade_logits(x: torch.Tensor, W: torch.Tensor, c: torch.Tensor, V: torch.Tensor, b: torch.Tensor,
                block: int = 28) -> torch.Tensor:
    """All ``D`` conditional logits ``(M, D)`` of NADE at events ``x`` ``(M, D)`` (module docstring).

    ``W`` ``(H, D)`` and ``V`` ``(D, H)``: the input and output weights; ``c`` ``(M, H)`` and ``b`` ``(M, D)``:
    the hidden and output biases per event (conditions may shift them). ``block``: inputs per block of the
    prefix sums (28: one row of an MNIST image)."""
    if x.requires_grad:
        return nade_logits_reference(x, W, c, V, b)
    out: torch.Tensor = _NADELogits.apply(x, W, c, V, block)
    return out + b
