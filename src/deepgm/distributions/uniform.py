"""The uniform distribution over the integers ``low, ..., high``: a discrete time variable (a diffusion
model's step ``t``) or any index drawn uniformly.

Values are integer tensors (``torch.long``) with the distribution's event shape (``features_shape``,
default ``(1,)``: one integer per row, so that a network given ``t`` sees ``(B, 1)`` like any other
condition); ``log_prob`` is ``-log(high - low + 1)`` per element inside the range, ``-inf`` outside.
Draws are not differentiable (there is nothing to differentiate).

>>> import torch
>>> q = DiscreteUniform(var=["t"], low=1, high=4, name="q")
>>> t = q.sample(batch_n=1000)["t"]
>>> tuple(t.shape), int(t.min()), int(t.max()), t.dtype
((1000, 1), 1, 4, torch.int64)
>>> q.log_prob({"t": torch.tensor([[1], [4], [5]])})  # log ¼ inside, -inf outside
tensor([-1.3863, -1.3863,    -inf])
>>> q.values().tolist()
[1, 2, 3, 4]
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from deepgm.distributions.base import Distribution, Shape, as_shape
from deepgm.distributions.env import Env
from deepgm.errors import ParameterError, ShapeError

__all__ = ["DiscreteUniform"]


class DiscreteUniform(Distribution):
    """``U{low, ..., high}`` elementwise over integers (see the module docstring); no conditions.

    A draw without conditions has ``batch_n`` rows (as any unconditioned distribution: ``sample(batch_n=B)``,
    or :class:`~deepgm.losses.BatchE` inside an objective, which takes the batch size from the data).
    """

    def __init__(self, var: Sequence[str] | str = ("t",), name: str = "q", *, low: int, high: int,
                 features_shape: int | Sequence[int] | None = (1,)) -> None:
        super().__init__(var, (), name)
        if len(self.var) != 1:
            raise ValueError(f"{self.owner}: is over exactly one variable, got {self.var}")
        for what, v in (("low", low), ("high", high)):
            if isinstance(v, bool) or not isinstance(v, int):
                raise ParameterError(f"{self.owner}: {what} must be an int, got {v!r}")
        if high < low:
            raise ParameterError(f"{self.owner}: high must be >= low, got low={low}, high={high}")
        self.low, self.high = int(low), int(high)
        self.event_shape: Shape = as_shape(features_shape)

    @property
    def count(self) -> int:
        """How many values the variable takes: ``high - low + 1``."""
        return self.high - self.low + 1

    def values(self) -> torch.Tensor:
        """All the values, ``low, ..., high``, as a 1-D integer tensor."""
        return torch.arange(self.low, self.high + 1)

    def new_draw(
        self, env: Env, sample_shape: Shape, batch_n: int | None, reparam: bool
    ) -> tuple[torch.Tensor, int]:
        shape = sample_shape + ((batch_n,) if batch_n is not None else ()) + self.event_shape
        return torch.randint(self.low, self.high + 1, shape), len(sample_shape)

    def log_prob_at(self, env: Env, detach_params: bool = False) -> torch.Tensor:
        t = env.get(self.var[0], self)
        if not torch.is_tensor(t):
            t = torch.as_tensor(t)
        ne = len(self.event_shape)
        if ne and tuple(t.shape[t.dim() - ne:]) != self.event_shape:
            raise ShapeError(f"{self.owner}: variable '{self.var[0]}' must end in the event shape "
                             f"{self.event_shape}, got shape {tuple(t.shape)}")
        inside = (t >= self.low) & (t <= self.high) & (t == t.round() if t.is_floating_point() else True)
        lp = torch.where(inside, -math.log(self.count), -math.inf).to(torch.get_default_dtype())
        return lp.sum(tuple(range(-ne, 0))) if ne else lp

    def replace_var(self, **mapping: str) -> DiscreteUniform:
        return self._renamed(mapping)

    def extra_repr(self) -> str:
        return f"{self.prob_text}, {{{self.low}, ..., {self.high}}}"
