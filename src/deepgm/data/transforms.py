"""Binarisation of grey images with values in [0, 1], as the data loaders apply it.

Dequantisation and the logit transform, which change the density and so carry a log-determinant, are
flow transforms: :class:`deepgm.flows.Dequantize` and :class:`deepgm.flows.Logit`. Dynamic binarisation
(a fresh ``b ~ Bernoulli(x)`` per batch) is the training transform of :func:`deepgm.data.load_splits`.

>>> x = torch.tensor([0.2, 0.7])
>>> binarize_threshold(x)
tensor([0., 1.])
>>> torch.equal(binarize_fixed(x, seed=3), binarize_fixed(x, seed=3))
True
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["binarize_fixed", "binarize_threshold"]


def binarize_fixed(x: Tensor, seed: int = 0) -> Tensor:
    """Fixed binarisation: one draw ``b ~ Bernoulli(x)`` from a generator seeded with ``seed``.

    The same ``x`` and ``seed`` always give the same ``b``. Apply it once to a whole data tensor:
    calling it per example would reuse the same noise for every example.
    """
    gen = torch.Generator(device=x.device).manual_seed(int(seed))
    return torch.bernoulli(x.clamp(0.0, 1.0), generator=gen)


def binarize_threshold(x: Tensor, threshold: float = 0.5) -> Tensor:
    """Deterministic binarisation ``b = 1[x > threshold]`` as a float tensor."""
    return (x > threshold).to(x.dtype if x.is_floating_point() else torch.get_default_dtype())
