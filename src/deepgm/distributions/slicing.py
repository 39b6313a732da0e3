"""Point masses that pick time steps out of whole series: TD-VAE's jumpy pairs ``t_1 < t_2``.

:class:`JumpySlice` is the ``slice_step`` of an :class:`~deepgm.losses.IterativeLoss`: at step ``t`` it
binds, for each named batch-first series ``v`` (``(B, T, ...)``), ``v_t1 = v[:, t]`` and
``v_t2 = v[b, t + δ_b]`` with a jump ``δ_b`` drawn uniformly from ``1..max_jump`` for each sequence
(and cut at the series' end). It has no density.

>>> import torch
>>> f = JumpySlice(at_t1=["b"], at_t2=["x", "b"], max_jump=1)
>>> x = torch.arange(8.0).reshape(2, 4, 1); b = 10 * x
>>> out = f.sample({"t": torch.tensor(1), "x": x, "b": b})
>>> out["b_t1"].flatten().tolist(), out["x_t2"].flatten().tolist(), out["b_t2"].flatten().tolist()
([10.0, 50.0], [2.0, 6.0], [20.0, 60.0])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from deepgm.distributions.base import Binding, Distribution, Shape
from deepgm.distributions.env import Env
from deepgm.errors import DeepGMError, ShapeError

__all__ = ["JumpySlice"]


class JumpySlice(Distribution):
    """``v_t1 = v[:, t]`` for ``v`` in ``at_t1`` and ``v_t2 = v[:, t + δ]`` for ``v`` in ``at_t2``, with
    ``δ ~ U{1, ..., max_jump}`` per sequence (see the module docstring); ``t`` is ``timestep_var``."""

    has_density = False
    lookahead = 1  # reads one step beyond t at least: a scan over T steps runs T - 1 of them

    def __init__(self, at_t1: Sequence[str], at_t2: Sequence[str], max_jump: int = 1, timestep_var: str = "t",
                 name: str = "f_{jump}") -> None:
        if not isinstance(max_jump, int) or isinstance(max_jump, bool) or max_jump < 1:
            raise ValueError(f"JumpySlice: max_jump must be an integer >= 1, got {max_jump!r}")
        self.at_t1, self.at_t2 = list(at_t1), list(at_t2)
        series = list(dict.fromkeys(self.at_t1 + self.at_t2))
        super().__init__([f"{v}_t1" for v in self.at_t1] + [f"{v}_t2" for v in self.at_t2],
                         [timestep_var, *series], name)
        self.max_jump = max_jump
        self.timestep_var = timestep_var
        self.series = series

    def new_bindings(self, env: Env, sample_shape: Shape, batch_n: int | None, reparam: bool) -> tuple[Binding, ...]:
        if sample_shape:
            raise DeepGMError(f"{self.owner} slices given series: it takes no sample_shape")
        t = int(env.get(self.timestep_var, self))
        values = {v: env.get(v, self) for v in self.series}
        b, length = next(iter(values.values())).shape[:2]
        for v, value in values.items():
            if value.dim() < 2 or value.shape[:2] != (b, length):
                raise ShapeError(f"{self.owner}: the series '{v}' must be batch-first (B, T, ...) with B={b}, "
                                 f"T={length}, got {tuple(value.shape)}")
        if not 0 <= t < length - 1:
            raise ShapeError(f"{self.owner}: step t={t} needs a later step to jump to; the series have {length} "
                             f"steps (scan at most T - 1 steps)")
        device = next(iter(values.values())).device
        jump = torch.randint(1, self.max_jump + 1, (b,), device=device)
        t2 = (t + jump).clamp(max=length - 1)
        rows = torch.arange(b, device=device)
        out: list[Binding] = []
        for v in self.at_t1:
            out.append((f"{v}_t1", values[v][:, t], 0, env.new_version()))
        for v in self.at_t2:
            out.append((f"{v}_t2", values[v][rows, t2], 0, env.new_version()))
        return tuple(out)
