"""Point masses over several variables: one network's outputs (an LSTM's ``h`` and ``c``), and the
time steps picked out of whole series (TD-VAE's jumpy pairs ``t_1 < t_2``).

:class:`MultiDeterministic` binds each of its variables to one output of a network called once:

>>> from deepgm.nn import LSTMStep
>>> cell = MultiDeterministic(var=["h_new", "c_new"], cond_var=["x", "h", "c"], net=LSTMStep([3], 4))
>>> out = cell.sample({"x": torch.zeros(2, 3), "h": torch.zeros(2, 4), "c": torch.zeros(2, 4)})
>>> out["h_new"].shape, out["c_new"].shape
(torch.Size([2, 4]), torch.Size([2, 4]))

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

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from deepgm.distributions.base import Binding, Distribution, Shape
from deepgm.distributions.env import Env
from deepgm.errors import DeepGMError, ShapeError
from deepgm.nn.mlp import call

__all__ = ["JumpySlice", "MultiDeterministic"]


class MultiDeterministic(Distribution):
    """``δ(v_1 - f_1(cond)) ⋯ δ(v_n - f_n(cond))`` for the ``n`` variables ``var``: ``net(*cond)`` is called
    once and returns the values in ``var``'s order (a tuple) or by name (a dict). No density; the values
    carry the conditions' largest number of sample dimensions."""

    has_density = False

    def __init__(self, var: Sequence[str], cond_var: Sequence[str] = (), net: nn.Module | None = None,
                 name: str = "f") -> None:
        super().__init__(var, cond_var, name)
        if net is None:
            raise ValueError(f"{self.owner}: needs net, the network computing {self.var}")
        self.net = net

    def new_bindings(self, env: Env, sample_shape: Shape, batch_n: int | None, reparam: bool) -> tuple[Binding, ...]:
        if sample_shape:
            raise DeepGMError(f"{self.owner} is a point mass: it takes no sample_shape")
        conditions = [env.get(n, self) for n in self.cond_var]
        net = self._modules.get("net")
        out = call(net, *conditions) if net is not None else self.__dict__["net"](*conditions)
        values = [out[v] for v in self.var] if isinstance(out, Mapping) else list(out)
        if len(values) != len(self.var):
            raise ShapeError(f"{self.owner}: its network returned {len(values)} values for the {len(self.var)} "
                             f"variables {self.var}")
        sdim = max([env.sdims.get(n, 0) for n in self.cond_var], default=0)
        return tuple((v, value, sdim, env.new_version()) for v, value in zip(self.var, values, strict=True))


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
