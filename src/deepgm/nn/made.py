"""MADE (Germain et al. 2015): a masked autoencoder whose output ``i`` sees only the inputs before ``i`` in an
ordering, the one home of the masked linear layer and of MADE's masks (flows' MAF/IAF and the binary MADE
distribution both use it).

Each input has a *degree* (its position in the ordering, 1..D), each hidden unit a degree in ``1..D-1``; a
weight from degree ``a`` to a hidden unit of degree ``b`` is kept when ``b ≥ a``, to an output of degree ``b``
when ``b > a``. :meth:`MADE.resample_masks` draws a new ordering and new hidden degrees (order- and
connectivity-agnostic training); :meth:`MADE.use_masks` sets the masks numbered ``seed`` (the same masks for
the same number), which serve a mask ensemble at test time.

>>> import torch
>>> _ = torch.manual_seed(0)
>>> made = MADE(4, n_params=1, hidden=(16,), zero_init=False)
>>> made.use_masks(3)  # another ordering and connectivity, still autoregressive
>>> x = torch.randn(1, 4)
>>> J = torch.autograd.functional.jacobian(lambda v: made(v)[:, 0], x)[0, :, 0]  # d out_i / d x_j
>>> order = made.degrees.argsort()  # the inputs in their ordering
>>> bool((J[order][:, order].triu() == 0).all())  # output i depends on inputs before i only
True
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from deepgm.errors import ShapeError

__all__ = ["MaskedLinear", "MADE", "made_masks"]


class MaskedLinear(nn.Linear):
    """``y = (W ⊙ M) x + b`` with a fixed 0/1 mask ``M`` of the weight's shape."""

    mask: torch.Tensor

    def __init__(self, in_features: int, out_features: int, mask: torch.Tensor) -> None:
        super().__init__(in_features, out_features)
        if mask.shape != (out_features, in_features):
            raise ShapeError(f"MaskedLinear: mask must be ({out_features}, {in_features}), got {tuple(mask.shape)}")
        self.register_buffer("mask", mask.to(self.weight.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


def made_masks(deg_in: torch.Tensor, hidden_degrees: Sequence[torch.Tensor], n_params: int) -> list[torch.Tensor]:
    """The masks of MADE's layers for input degrees ``deg_in`` (a permutation of 1..D) and the hidden units'
    degrees: ``b ≥ a`` into each hidden layer, ``b > a`` into the ``n_params × D`` outputs.

    >>> [m.tolist() for m in made_masks(torch.tensor([1, 2]), [torch.tensor([1, 1])], 1)]
    [[[1.0, 0.0], [1.0, 0.0]], [[0.0, 0.0], [1.0, 1.0]]]
    """
    masks = []
    prev = deg_in
    for deg_h in hidden_degrees:
        masks.append((deg_h[:, None] >= prev[None, :]).float())
        prev = deg_h
    deg_out = deg_in.repeat(n_params)
    masks.append((deg_out[:, None] > prev[None, :]).float())
    return masks


class MADE(nn.Module):
    """Masked autoencoder (Germain et al. 2015): ``k`` outputs per input dimension, output ``i`` depending
    only on the inputs before ``i`` in ``order`` (default ``0, 1, …, D-1``), and on the whole context.

    Returns ``(N, k, D)``. Degrees: input ``i`` has degree ``order⁻¹(i) + 1``; hidden units cycle through
    ``1 … D-1`` when a layer has at least ``D-1`` units, else are spread evenly over ``1 … D-1`` (so that the
    last outputs still see their nearest predecessors; after :meth:`resample_masks`/:meth:`use_masks`: drawn
    uniformly from ``min degree below … D-1``);
    ``zero_init`` starts the last layer at zero.
    """

    degrees: torch.Tensor

    def __init__(self, dim: int, n_params: int = 2, hidden: Sequence[int] = (64, 64), context_dim: int = 0,
                 order: Sequence[int] | torch.Tensor | None = None, zero_init: bool = True) -> None:
        super().__init__()
        if dim < 1 or not hidden:
            raise ValueError(f"MADE: needs dim >= 1 and at least one hidden layer, got dim={dim}, hidden={hidden}")
        order_t = torch.arange(dim) if order is None else torch.as_tensor(order, dtype=torch.long)
        if sorted(order_t.tolist()) != list(range(dim)):
            raise ValueError(f"MADE: order must be a permutation of 0..{dim - 1}, got {order_t.tolist()}")
        deg_in = torch.empty(dim, dtype=torch.long)
        deg_in[order_t] = torch.arange(1, dim + 1)
        self.register_buffer("degrees", deg_in)
        hidden_deg = [_spread_degrees(h, dim) for h in hidden]
        masks = made_masks(deg_in, hidden_deg, n_params)
        sizes = [dim, *hidden]
        self.hidden = nn.ModuleList(MaskedLinear(a, b, m) for a, b, m in zip(sizes[:-1], sizes[1:], masks[:-1]))
        self.out = MaskedLinear(sizes[-1], n_params * dim, masks[-1])
        if zero_init:
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)
        self.context = nn.Linear(context_dim, hidden[0]) if context_dim else None
        self.dim, self.n_params, self.context_dim = dim, n_params, context_dim
        self.hidden_sizes = tuple(int(h) for h in hidden)

    def set_masks(self, order: torch.Tensor, hidden_degrees: Sequence[torch.Tensor]) -> None:
        """Use the ordering ``order`` (a permutation of ``0..D-1``: ``order[t]`` is the input at position ``t``)
        and the hidden units' degrees ``hidden_degrees`` (one tensor per hidden layer)."""
        deg_in = torch.empty(self.dim, dtype=torch.long)
        deg_in[order.long().cpu()] = torch.arange(1, self.dim + 1)
        self.degrees.copy_(deg_in)
        layers = [*self.hidden, self.out]
        for layer, m in zip(layers, made_masks(deg_in, list(hidden_degrees), self.n_params), strict=True):
            layer.mask.copy_(m)

    def resample_masks(self, generator: torch.Generator | None = None, order: bool = True) -> None:
        """A new random ordering (when ``order``) and new hidden degrees, each hidden unit's drawn uniformly
        from the smallest degree of the layer below up to ``D-1`` (connectivity-agnostic training)."""
        d = self.dim
        perm = torch.randperm(d, generator=generator) if order else self.degrees.argsort().cpu()
        degrees = []
        low = 1
        for h in self.hidden_sizes:
            top = max(d - 1, 1)
            deg = torch.randint(min(low, top), top + 1, (h,), generator=generator)
            degrees.append(deg)
            low = int(deg.min())
        self.set_masks(perm, degrees)

    def use_masks(self, seed: int, order: bool = True) -> None:
        """The masks numbered ``seed``: those :meth:`resample_masks` draws from a generator seeded with it."""
        self.resample_masks(torch.Generator().manual_seed(int(seed)), order)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ShapeError(f"MADE: expected inputs (N, {self.dim}), got {tuple(x.shape)}")
        _check_context(context, self.context_dim, x.shape[0])
        h = self.hidden[0](x)
        if self.context is not None:
            h = h + self.context(context)
        h = F.relu(h)
        for layer in self.hidden[1:]:
            h = F.relu(layer(h))
        out: torch.Tensor = self.out(h)
        return out.reshape(x.shape[0], self.n_params, self.dim)


def _spread_degrees(h: int, dim: int) -> torch.Tensor:
    """Degrees of ``h`` hidden units for ``dim`` inputs: ``1 … D-1`` in turn when ``h ≥ D-1``, else ``h`` values
    spread evenly over ``1 … D-1`` (every degree a unit could use is at most one gap ``(D-1)/h`` away).

    >>> _spread_degrees(5, 3).tolist(), _spread_degrees(3, 10).tolist()
    ([1, 2, 1, 2, 1], [1, 4, 7])
    """
    top = max(dim - 1, 1)
    if h >= top:
        return torch.arange(h) % top + min(1, dim - 1)
    return 1 + (torch.arange(h) * top) // h


def _check_context(context: torch.Tensor | None, context_dim: int, n: int) -> None:
    if context_dim and context is None:
        raise ValueError(f"MADE is conditional (context_dim={context_dim}) but was given no context")
    if context is not None:
        if not context_dim:
            raise ValueError("MADE is not conditional (context_dim=0) but was given a context")
        if context.dim() != 2 or context.shape != (n, context_dim):
            raise ShapeError(f"MADE: context must have shape ({n}, {context_dim}), got {tuple(context.shape)}")
