"""Objectives scanned over time, carrying state (VRNN, DMM, SRNN, TD-VAE).

:class:`IterativeLoss` is ``Σ_t step_loss``: at step ``t`` each series variable is bound to its ``t``-th
slice, the step's objective is evaluated, and the values named in ``update_value`` become the next
step's state. :class:`Scan` is the loop itself, shared with the particle filter of
:mod:`deepgm.losses.smc`.

A random walk scored step by step: ``x_t ~ N(h, 1)`` where the state ``h`` is the previous ``x``
(``h_new`` is drawn, deterministically, as ``x_t`` and carried to the next step as ``h``):

>>> import torch
>>> from deepgm.distributions import Deterministic, Normal
>>> from deepgm.losses import E, LogProb
>>> p = Normal(var=["x"], cond_var=["h"], loc="h", scale=1.0)
>>> carry = Deterministic(var=["h_new"], cond_var=["x"], loc="x")
>>> walk = IterativeLoss(E(carry, LogProb(p)), series_var=["x"], update_value={"h_new": "h"})
>>> x = torch.tensor([0.0, 1.0, 3.0]).reshape(3, 1, 1)  # (time, batch, features)
>>> walk(x=x, h=torch.zeros(1, 1))  # log N(0; 0, 1) + log N(1; 0, 1) + log N(3; 1, 1)
tensor([-5.2568])

Sequences of different lengths share a batch through a mask (1 on real steps, 0 on padding): padded
steps add nothing and leave the state as it was. Here data are batch-first, ``(batch, time, features)``,
and the initial state is a learnable (here fixed) row given once:

>>> walk = IterativeLoss(E(carry, LogProb(p)), series_var=["x"], update_value={"h_new": "h"},
...                      mask_var="mask", time_dim=1, initial={"h": torch.zeros(1)})
>>> x = torch.tensor([[0.0, 1.0, 3.0], [0.0, 1.0, 0.0]]).unsqueeze(-1)
>>> walk(x=x, mask=torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]]))  # the second has 2 steps
tensor([-5.2568, -2.3379])
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from deepgm.distributions.base import Distribution, positive_int
from deepgm.distributions.env import Env
from deepgm.errors import ObjectiveError, ShapeError
from deepgm.losses.expr import Loss, as_loss

__all__ = ["IterativeLoss", "Scan", "ScanLoss", "InitialState"]


class InitialState(nn.Module):
    """The state a scan starts from: one row per state variable (a tensor, or an ``nn.Parameter`` to
    learn it), expanded over the batch. Registered as a module of the objective, so a model trains it."""

    def __init__(self, values: Mapping[str, torch.Tensor]) -> None:
        super().__init__()
        self.names = list(values)
        self.params = nn.ParameterDict({f"s{i}": v for i, v in enumerate(values.values())
                                        if isinstance(v, nn.Parameter)})
        for i, v in enumerate(values.values()):
            if not isinstance(v, nn.Parameter):
                if not torch.is_tensor(v):
                    raise ObjectiveError(f"initial state '{self.names[i]}': expected a tensor (one row), "
                                         f"got {type(v).__name__}")
                self.register_buffer(f"s{i}", v.detach().clone())

    def rows(self, batch: int) -> dict[str, torch.Tensor]:
        """Every state variable's row repeated ``batch`` times."""
        out = {}
        for i, name in enumerate(self.names):
            v = self.params[f"s{i}"] if f"s{i}" in self.params else getattr(self, f"s{i}")
            out[name] = v.expand(batch, *v.shape)
        return out


def _timestep_name(timestep_var: str | Sequence[str] | None) -> str | None:
    if timestep_var is None or isinstance(timestep_var, str):
        return timestep_var
    names = list(timestep_var)
    if len(names) != 1:
        raise ObjectiveError(f"timestep_var names one variable, got {names}")
    return str(names[0])


@dataclass
class StepView:
    """What one step of a :class:`Scan` sees: its index, its scope, and the mask of its rows."""

    t: int
    env: Env
    mask: torch.Tensor | None  # (batch,) True on the sequences that have step t, else None (no mask)
    batch: int | None = None  # sequences in the batch (rows of the step's values), when known
    permute: torch.Tensor | None = None  # set by the consumer: rows of the carried state to keep (resampling)
    # ``mask`` is None also on a step that every sequence of the batch has (nothing to mask)


class Scan:
    """The loop over time that :class:`IterativeLoss` and the particle filter share.

    ``series_var`` are sliced at ``t`` along ``time_dim`` (0: time-first ``(T, B, ...)``; 1: batch-first
    ``(B, T, ...)``) — unless ``slice_step`` is given: a distribution drawn at every step, from the whole
    series and the timestep variable, that binds what the step needs (TD-VAE's ``x_{t_2}``, ``b_{t_1}``,
    ``b_{t_2}``; see :class:`~deepgm.distributions.JumpySlice`). ``mask_var`` names a ``(T, B)`` or
    ``(B, T)`` mask (by ``time_dim``): the scan stops after the last step any sequence has, and a state
    is carried unchanged over the padded steps of a sequence (when all padding comes after the real
    steps — the usual case — nothing real follows a padded step, so its state is left as computed).
    ``initial`` gives state values (one row each, see :class:`InitialState`) for the ones not given as
    inputs. With ``particles=K`` (the particle
    filter), every sequence's rows are repeated ``K`` times, particle-major (row ``k·B + b``): the series,
    the mask and the initial state, once, before the loop.
    """

    def __init__(self, series_var: Sequence[str] = (), update_value: Mapping[str, str | Sequence[str]] | None = None,
                 max_iter: int | None = None, timestep_var: str | Sequence[str] | None = None,
                 slice_step: Distribution | None = None, mask_var: str | None = None, time_dim: int = 0,
                 initial: InitialState | Mapping[str, torch.Tensor] | None = None, owner: str = "IterativeLoss"
                 ) -> None:
        if max_iter is None and not series_var and mask_var is None:
            raise ObjectiveError(f"{owner}: give max_iter, a mask_var or at least one series_var")
        if max_iter is not None:
            max_iter = positive_int(max_iter, f"{owner}: max_iter", 1, ObjectiveError)
        if time_dim not in (0, 1):
            raise ObjectiveError(f"{owner}: time_dim must be 0 (time-first) or 1 (batch-first), got {time_dim!r}")
        if slice_step is not None and not isinstance(slice_step, Distribution):
            raise ObjectiveError(f"{owner}: slice_step must be a distribution, got {type(slice_step).__name__}")
        self.owner = owner
        self.max_iter = max_iter
        self.series_var = list(series_var)
        self.update_value = dict(update_value or {})
        # {"z": "z_prev"} or {"z": ("z_prev", "zq_prev")}: a value carried into one or several state variables
        self._targets = [(new, (old,) if isinstance(old, str) else tuple(old))
                         for new, old in self.update_value.items()]
        self.timestep_var = _timestep_name(timestep_var)
        self.slice_step = slice_step
        self.mask_var = mask_var
        self.time_dim = time_dim
        if initial is not None and not isinstance(initial, InitialState):
            initial = InitialState(initial)
        self.initial = initial
        if slice_step is not None and self.timestep_var is None:
            self.timestep_var = "t"

    # -- what the scan reads ------------------------------------------------------------------------
    def _mask(self, env: Env) -> torch.Tensor | None:
        if self.mask_var is None:
            return None
        mask = env.get(self.mask_var, self.owner)
        if not torch.is_tensor(mask) or mask.dim() != 2:
            raise ShapeError(f"{self.owner}: the mask '{self.mask_var}' must be a 2-D tensor "
                             f"({'(batch, time)' if self.time_dim else '(time, batch)'}), got "
                             f"{tuple(getattr(mask, 'shape', ()))}")
        return mask if self.time_dim == 0 else mask.transpose(0, 1)  # (T, B)

    def steps(self, env: Env, mask: torch.Tensor | None) -> tuple[int, list[bool] | None, bool]:
        """How many steps: ``max_iter``, else the series' length, cut after the mask's last real step; with a
        mask, whether each step is real in every sequence (then it needs no masking), and whether every
        sequence's padding comes after its real steps (then no state needs holding over padding: nothing
        real follows it)."""
        lengths = {v: env.get(v, self.owner).shape[self.time_dim] for v in self.series_var}
        if len(set(lengths.values())) > 1:
            raise ObjectiveError(f"{self.owner}: series variables differ in length along dimension "
                                 f"{self.time_dim}: {lengths}")
        if mask is not None:
            for v, n in lengths.items():
                if n != mask.shape[0]:
                    raise ShapeError(f"{self.owner}: the series '{v}' has {n} steps but the mask "
                                     f"'{self.mask_var}' has {mask.shape[0]}")
                rows = env.get(v, self.owner).shape[1 - self.time_dim]
                if rows != mask.shape[1]:
                    raise ShapeError(f"{self.owner}: the series '{v}' has {rows} sequences but the mask "
                                     f"'{self.mask_var}' has {mask.shape[1]} (shape {tuple(mask.shape)})")
        n_steps = self.max_iter if self.max_iter is not None else (
            next(iter(lengths.values())) if lengths else mask.shape[0] if mask is not None else 0)
        full: list[bool] | None = None
        trailing = True
        if mask is not None:  # one host synchronisation: the longest sequence, padding at the ends, full steps
            real = mask > 0
            summary = torch.cat([real.sum(0).max().reshape(1), (real[1:] <= real[:-1]).all().reshape(1),
                                 real.all(1)]).tolist()
            n_steps = min(n_steps, int(summary[0]))
            trailing = bool(summary[1])
            full = [bool(f) for f in summary[2:]]
        if self.max_iter is None and self.slice_step is not None:  # a slice reading later steps stops earlier
            n_steps -= int(getattr(self.slice_step, "lookahead", 0))
        return n_steps, full, trailing

    def batch_size(self, env: Env, mask: torch.Tensor | None) -> int | None:
        if mask is not None:
            return int(mask.shape[1])
        if self.series_var:
            value = env.get(self.series_var[0], self.owner)
            return int(value.shape[1 - self.time_dim]) if value.dim() > 1 else None
        return None

    # -- the loop -----------------------------------------------------------------------------------
    def run(self, env: Env, particles: int = 1) -> Iterator[StepView]:
        """Yield each step's view; after the consumer has evaluated the step (in ``view.env``, while the
        generator is suspended) the state named in ``update_value`` is carried to the next step."""
        mask = self._mask(env)
        n_steps, full, trailing = self.steps(env, mask)
        batch = self.batch_size(env, mask)
        k = particles

        def rows(v: torch.Tensor, dim: int = 0) -> torch.Tensor:  # each sequence's rows, K times
            return v if k == 1 else v.repeat(*[k if d == dim else 1 for d in range(v.dim())])

        state = env.child()
        if k > 1:  # a state given as an input, repeated like the rest
            for _, olds in self._targets:
                for old in olds:
                    if old in state.values and torch.is_tensor(state.values[old]):
                        state.set(old, rows(state.values[old]), state.sdims.get(old, 0))
        if self.initial is not None:
            if batch is None:
                raise ObjectiveError(f"{self.owner}: an initial state needs the batch size (give a mask or a "
                                     f"batched series)")
            for name, value in self.initial.rows(batch * k).items():
                if name not in state.values:
                    state.set(name, value)
        # every step's slices at once (views, one call per series), unless a slicing distribution picks them
        batch_dim = 1 - self.time_dim
        series = [] if self.slice_step is not None else [
            (v, rows(env.get(v, self.owner), batch_dim).unbind(self.time_dim)) for v in self.series_var]
        masks = None if mask is None else rows(mask > 0, 1).unbind(0)
        for t in range(n_steps):
            step = state.child()
            # each step draws afresh, also what no state conditions (a per-step noise): its own salt
            step.salt = hash((state.salt, id(self), t))
            for v, slices in series:
                step.set(v, slices[t])
            if self.timestep_var is not None:
                step.set(self.timestep_var, torch.tensor(t))
            # a step every sequence has needs no mask: None, as without one
            m = None if masks is None or (full is not None and full[t]) else masks[t]
            view = StepView(t, step, m, batch)
            trace = env.open_trace()  # what this step, and only this step, draws or computes
            try:
                if self.slice_step is not None:
                    self.slice_step.draw_into(step, (), None, True)
                yield view
            finally:
                env.close_trace(trace)
            for new, olds in self._targets:
                if new not in trace:
                    raise ObjectiveError(f"{self.owner}: update_value needs '{new}', which step {t} "
                                         f"did not draw or compute")
                drawn, sdim = trace[new]
                if view.permute is not None:
                    drawn = drawn.index_select(sdim, view.permute)
                for old in olds:
                    value = drawn
                    if m is not None and not trailing and old in state.values:
                        keep = m.reshape((1,) * sdim + m.shape + (1,) * (value.dim() - sdim - m.dim()))
                        value = torch.where(keep, value, state.values[old])
                    state.set(old, value, sdim)

    def render_top(self) -> str:
        return "T" if self.max_iter is None else str(self.max_iter)

    def wrap(self, inner: str, latex: bool) -> str:
        """``inner`` under the step's slicing distribution, as the expression prints."""
        if self.slice_step is None:
            return inner
        text = self.slice_step.prob_text
        return rf"\mathbb{{E}}_{{{text}}} \left[{inner} \right]" if latex else f"E_{{{text}}}[{inner}]"


class ScanLoss(Loss):
    """What an objective over a :class:`Scan` declares to the expression tree: its slicing distribution
    and initial state (which it owns), what it binds, what it reads. :class:`IterativeLoss` and
    :class:`~deepgm.losses.SMCBound` are such objectives."""

    scan: Scan

    def own_distributions(self) -> tuple[Distribution, ...]:
        return (self.scan.slice_step,) if self.scan.slice_step is not None else ()

    def own_modules(self) -> tuple[nn.Module, ...]:
        return (self.scan.initial,) if self.scan.initial is not None else ()

    def own_drawn(self) -> tuple[str, ...]:
        scan = self.scan
        drawn = tuple(scan.update_value) + ((scan.timestep_var,) if scan.timestep_var else ())
        drawn += tuple(scan.initial.names) if scan.initial is not None else ()
        return drawn + (tuple(scan.slice_step.var) if scan.slice_step is not None else ())

    def own_inputs(self) -> tuple[str, ...]:
        scan = self.scan
        names = ((scan.mask_var,) if scan.mask_var else ()) + tuple(scan.series_var)
        return names + (tuple(scan.slice_step.cond_var) if scan.slice_step is not None else ())


class IterativeLoss(ScanLoss):
    """``Σ_{t=0}^{T-1} step_loss`` where at step ``t`` every ``series_var`` ``v`` is bound to ``v[t]``
    (along ``time_dim``: 0 time-first, 1 batch-first) and, after each step, ``update_value={"h_new": "h"}``
    binds ``h`` to the value ``h_new`` took in that step (drawn or computed there), for the next step.
    ``T`` is ``max_iter`` or the length of the series. ``timestep_var`` (optional) names a variable that
    holds ``t``. Initial state values come from the inputs or from ``initial``.

    ``mask_var`` names a 0/1 mask of the real steps of each sequence (padded steps contribute nothing and
    carry no state); ``slice_step`` is a distribution drawn at each step that binds the step's values
    from the whole series and ``t`` (instead of slicing ``series_var``), e.g. TD-VAE's jumpy pairs
    ``t_1 < t_2``. See :class:`Scan`.
    """

    def __init__(self, step_loss: Loss, max_iter: int | None = None, series_var: Sequence[str] = (),
                 update_value: Mapping[str, str | Sequence[str]] | None = None,
                 timestep_var: str | Sequence[str] | None = None,
                 slice_step: Distribution | None = None, mask_var: str | None = None, time_dim: int = 0,
                 initial: Mapping[str, torch.Tensor] | None = None) -> None:
        self.step_loss = as_loss(step_loss)
        self.scan = Scan(series_var, update_value, max_iter, timestep_var, slice_step, mask_var, time_dim,
                         initial, owner="IterativeLoss")

    @property
    def max_iter(self) -> int | None:
        return self.scan.max_iter

    def _eval(self, env: Env) -> Any:
        total: Any = 0.0
        for view in self.scan.run(env):
            value = self.step_loss._eval(view.env)
            if view.t == 0 and self.scan.mask_var is not None and (
                    not torch.is_tensor(value) or value.dim() == 0 or value.shape[-1] != view.batch):
                raise ShapeError(f"IterativeLoss: with a mask, the step's objective must give one value per "
                                 f"sequence ({view.batch}), got shape {tuple(getattr(value, 'shape', ()))} from "
                                 f"{self.step_loss} (sum a density's event dimensions with event_ndim)")
            if view.mask is not None:
                value = torch.where(view.mask, value, 0.0)
            total = total + value
        return total

    def children(self) -> tuple[Loss, ...]:
        return (self.step_loss,)

    def _render(self, latex: bool) -> str:
        inner = self.scan.wrap(self.step_loss._render(latex), latex)
        top = self.scan.render_top()
        return rf"\sum_{{t=1}}^{{{top}}} \left[{inner}\right]" if latex else f"sum_(t=1..{top}) [{inner}]"
