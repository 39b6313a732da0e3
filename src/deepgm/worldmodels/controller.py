"""World Models' C: a linear controller ``a = tanh(W [z, h] + b)``, evolved by CMA-ES (the ``cma`` package)
in M's dream or in the real environment.

Candidates are flat parameter vectors; :func:`population_policy` applies P of them at once to P·R rows
(R rollouts per candidate, candidate-major), so every candidate's dreams run as one batched tensor.

>>> import torch
>>> c = LinearController(in_dim=3, action_dim=1)
>>> c.n_params
4
>>> policy = population_policy(c, torch.zeros(2, 4), repeats=3)  # 2 candidates × 3 rollouts
>>> policy(torch.ones(6, 2), torch.ones(6, 1)).shape
torch.Size([6, 1])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["LinearController", "population_policy", "Policy"]

Policy = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (z (n, D), features (n, H)) -> action (n, A)


@dataclass(frozen=True)
class LinearController:
    """The shape of C: ``in_dim = dim z + dim features`` inputs, ``action_dim`` outputs; parameters are
    flat vectors ``[W (in_dim × action_dim) row-major, b (action_dim)]``."""

    in_dim: int
    action_dim: int

    @property
    def n_params(self) -> int:
        """The number of parameters CMA-ES searches over."""
        return (self.in_dim + 1) * self.action_dim

    def unpack(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(W (..., in_dim, A), b (..., A))`` of flat parameters ``(..., n_params)``."""
        if params.shape[-1] != self.n_params:
            raise ValueError(f"LinearController: parameters must have {self.n_params} entries "
                             f"({self.in_dim} inputs × {self.action_dim} actions + biases), got {params.shape[-1]}")
        k = self.in_dim * self.action_dim
        w = params[..., :k].unflatten(-1, (self.in_dim, self.action_dim))
        return w, params[..., k:]

    def policy(self, params: torch.Tensor) -> Policy:
        """One controller for every row."""
        w, b = self.unpack(params.to(torch.get_default_dtype()))

        def act(z: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
            return torch.tanh(torch.cat([z, h], -1) @ w + b)

        return act


def population_policy(controller: LinearController, population: torch.Tensor, repeats: int) -> Policy:
    """The policy of P candidates ``population (P, n_params)`` acting on ``P·repeats`` rows, rows
    ``[p·repeats, (p+1)·repeats)`` driven by candidate ``p``."""
    w, b = controller.unpack(population.to(torch.get_default_dtype()))
    n_pop = population.shape[0]

    def act(z: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        x = torch.cat([z, h], -1).reshape(n_pop, repeats, -1)
        return torch.tanh(torch.baddbmm(b.unsqueeze(1), x, w)).reshape(n_pop * repeats, -1)

    return act
