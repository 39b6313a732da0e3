"""A model is an objective, the distributions it trains, and an optimiser.

Every objective a model has — the main one and the auxiliary ones (a GAN's discriminator, a density
ratio's classifier) — is stepped by one function, :meth:`Model._step`: mixed precision (autocast and a
gradient scaler per optimiser), averaging of the value and gradients over processes, the non-finite
guard (``on_nonfinite``), gradient clipping, the ``schedule`` of the objective's parameters, and the
objective's post-step hooks apply to each in the same way.

The non-finite guard checks, before the optimiser steps, the objective's value, its distributions'
parameters at the first evaluation (where they are validated), and the gradients (after unscaling with
mixed precision, after averaging over processes), the latter cheaply: the sum of every gradient (a NaN
or infinite entry makes its sum non-finite), stacked, with one host synchronisation; only when a sum is
not finite are the entries themselves looked at (a sum of large finite entries may overflow). On a CPU
that costs about a tenth of what ``torch._foreach_norm(grads, inf)`` would.
With mixed precision, a non-finite gradient while the gradient scaler's scale is above 1 is an overflow
of the scaled loss: the scaler skips that step and lowers its scale, as it always does (not an error);
at a scale of 1 or below, the gradient itself is non-finite and ``on_nonfinite`` applies.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from deepgm.distributions.base import Distribution
from deepgm.distributions.env import Env
from deepgm.errors import NonFiniteLossError, NonFiniteParameterError, ObjectiveError
from deepgm.io import save_atomic
from deepgm.losses.expr import Loss
from deepgm.training import distributed as _dist
from deepgm.training.checkpoint import load_state_file

__all__ = ["Model", "AuxiliaryObjective"]

OptimizerFactory = Callable[..., torch.optim.Optimizer]


@dataclass
class AuxiliaryObjective:
    """A second objective with parameters and an optimiser of its own (a discriminator, a critic),
    stepped ``steps`` times ``before`` or ``after`` every step of the main objective. ``modules`` default
    to the modules the objective owns (e.g. the discriminator of ``DensityRatio.discriminator_loss()``);
    ``after_step`` functions run after every step of its optimiser (e.g. a WGAN critic's weight clipping)."""

    loss: Loss
    modules: Sequence[nn.Module] = ()
    optimizer: OptimizerFactory = torch.optim.Adam
    optimizer_params: Mapping[str, Any] = field(default_factory=dict)
    steps: int = 1
    when: Literal["before", "after"] = "after"
    name: str = "aux"
    after_step: Sequence[Callable[[], None]] = ()


@dataclass(eq=False)
class _Target:
    """One objective and the optimiser minimising it (index 0: the main objective)."""

    name: str
    loss: Loss
    optimizer: torch.optim.Optimizer
    params: list[nn.Parameter]
    main: bool = False
    after_step: Sequence[Callable[[], None]] = ()
    scaler: Any = None  # the gradient scaler, made on the first mixed-precision step

    @property
    def owner(self) -> str:
        return "Model" if self.main else f"AuxiliaryObjective '{self.name}'"


class Model(nn.Module):
    """Trains ``distributions`` to minimise ``loss``.

    ``train_step(inputs)`` evaluates the objective on a batch (a dict of named tensors, plus values for
    any ``Parameter``), back-propagates, clips gradients if asked and steps the optimiser; it returns
    the loss as a float. ``eval_step`` evaluates without gradients. ``compile=True`` runs the
    objective under ``torch.compile``. A NaN or infinite objective, or a finite one with a NaN or
    infinite gradient, raises :class:`NonFiniteLossError` before the optimiser steps, naming the
    objective (and the first such parameter); ``on_nonfinite="skip"`` skips the step instead, also when
    the first step's parameters are non-finite (which, in ``"raise"`` mode, is the
    :class:`~deepgm.errors.NonFiniteParameterError` of their validation). ``auxiliary``
    objectives are stepped by the same step as the main one (clipping, mixed precision, the non-finite
    guard, the schedule and data-parallel averaging apply to them too).

    >>> from deepgm.distributions import Normal
    >>> from deepgm.losses import LogProb
    >>> p = Normal(var=["x"], loc=nn.Parameter(torch.zeros(1)), scale=1.0)
    >>> model = Model(-LogProb(p).mean(), [p], optimizer=torch.optim.SGD, optimizer_params={"lr": 0.5})
    >>> round(model.train_step({"x": torch.full((4, 1), 2.0)}), 4)  # ½ log 2π + ½ (2 - 0)²
    2.9189
    >>> p.params()["loc"].tolist()  # a step of 0.5 along the gradient 2 - μ
    [1.0]
    >>> model.train_step({"x": torch.full((4, 1), float("nan"))})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    deepgm.errors.NonFiniteLossError: the objective -mean(log p(x)) is nan at this step; ...
    >>> p.params()["loc"].tolist()  # the optimiser did not step
    [1.0]
    """

    def __init__(
        self,
        loss: Loss,
        distributions: Sequence[Distribution],
        optimizer: OptimizerFactory = torch.optim.Adam,
        optimizer_params: Mapping[str, Any] | None = None,
        clip_grad_norm: float | None = None,
        clip_grad_value: float | None = None,
        compile: bool = False,
        on_nonfinite: Literal["raise", "skip"] = "raise",
        modules: Iterable[nn.Module] = (),
        amp: bool = False,
        schedule: Callable[[int], Mapping[str, Any]] | None = None,
        auxiliary: Sequence[AuxiliaryObjective] = (),
    ) -> None:
        super().__init__()
        if not isinstance(loss, Loss):
            raise ObjectiveError(f"Model needs an objective (a deepgm.losses expression), got {type(loss).__name__}")
        dists = list(distributions)
        for d in dists:
            if not isinstance(d, nn.Module):
                raise TypeError(f"Model: distributions must be deepgm distributions, got {type(d).__name__}")
        if on_nonfinite not in ("raise", "skip"):
            raise ValueError(f"Model: on_nonfinite must be 'raise' or 'skip', got {on_nonfinite!r}")
        self.loss = loss
        self.distributions = nn.ModuleList(dists)
        owned = [m for node in loss.walk() for m in node.own_modules()]
        self.extra_modules = nn.ModuleList([*owned, *modules])
        params = _unique(p for p in self.parameters() if p.requires_grad)
        if not params:
            raise ObjectiveError("Model: the distributions have no trainable parameters")
        self.optimizer = optimizer(params, **dict(optimizer_params or {}))
        self._trainable = params
        self._targets = [_Target("loss", loss, self.optimizer, params, main=True)]
        self.auxiliary = list(auxiliary)
        aux_modules: list[nn.Module] = []
        main = {id(p) for p in params}
        for aux in self.auxiliary:
            if not isinstance(aux.loss, Loss):
                raise ObjectiveError(
                    f"AuxiliaryObjective '{aux.name}' needs an objective, got {type(aux.loss).__name__}"
                )
            if aux.when not in ("before", "after") or aux.steps < 1:
                raise ValueError(f"AuxiliaryObjective '{aux.name}': when must be 'before' or 'after' and steps "
                                 f">= 1, got when={aux.when!r}, steps={aux.steps}")
            mods = list(aux.modules) or [m for node in aux.loss.walk() for m in node.own_modules()]
            aux_params = _unique(p for m in mods for p in m.parameters() if p.requires_grad)
            if not aux_params:
                raise ObjectiveError(f"AuxiliaryObjective '{aux.name}' has no trainable parameters")
            if any(id(p) in main for p in aux_params):
                raise ObjectiveError(f"AuxiliaryObjective '{aux.name}' shares parameters with the main objective")
            aux_modules.extend(mods)
            opt = aux.optimizer(aux_params, **dict(aux.optimizer_params))
            self._targets.append(_Target(aux.name, aux.loss, opt, aux_params, after_step=tuple(aux.after_step)))
        self._aux_optimizers = [t.optimizer for t in self._targets[1:]]
        self.auxiliary_modules = nn.ModuleList(aux_modules)
        self.clip_grad_norm = clip_grad_norm
        self.clip_grad_value = clip_grad_value
        self.on_nonfinite = on_nonfinite
        self.skipped_steps = 0  # optimiser steps skipped on a non-finite value (any objective)
        self.amp = amp  # mixed precision (float16 autocast + gradient scaling) when the model is on a GPU
        self.schedule = schedule  # step -> values of the objective's Parameters (β, annealing, capacity C)
        self.steps = 0  # optimisation steps of the main objective taken (saved with the state)
        self._scaler_states: list[Any] = []  # gradient scalers' states loaded before the scalers exist
        self._compiled = torch.compile(self._evaluate) if compile else None
        # the first evaluation runs eagerly: it validates parameters (data-dependent checks that
        # would break a compiled graph); later ones run compiled
        self._objective: Callable[[Mapping[str, Any]], torch.Tensor] = (
            self._evaluate_then_compile if compile else self._evaluate
        )

    def _evaluate(self, inputs: Mapping[str, Any]) -> torch.Tensor:
        value: torch.Tensor = self.loss._eval(Env(inputs))
        return value

    def _evaluate_then_compile(self, inputs: Mapping[str, Any]) -> torch.Tensor:
        value = self._evaluate(inputs)
        assert self._compiled is not None
        self._objective = self._compiled
        return value

    def _value(self, inputs: Mapping[str, Any], params: Mapping[str, Any],
               target: _Target | None = None) -> torch.Tensor:
        """The scalar value of ``target``'s objective (default: the main one) on ``inputs``."""
        if type(inputs) is not dict and not isinstance(inputs, Mapping):
            raise TypeError(
                f"Model: a batch is a dict of named tensors such as {{'x': x}}, got {type(inputs).__name__}"
            )
        if self.schedule is not None:
            params = {**self.schedule(self.steps), **params}
        if params:
            inputs = {**inputs, **params}
        target = target or self._targets[0]
        value = self._objective(inputs) if target.main else target.loss._eval(Env(inputs))
        if not torch.is_tensor(value) or value.dim() != 0:
            shape = tuple(value.shape) if torch.is_tensor(value) else type(value).__name__
            raise ObjectiveError(
                f"{target.owner}: the objective {target.loss} must be a scalar, but it evaluates to shape {shape}; "
                f"reduce it over the batch with .mean() or .sum()"
            )
        return value

    def train_step(self, inputs: Mapping[str, Any], **params: Any) -> float | dict[str, float]:
        """One optimisation step on the batch ``inputs``; returns the loss before the step (with auxiliary
        objectives, a dict of it under ``"loss"`` and theirs under their names)."""
        if not self.training:
            self.train()
        if not self.auxiliary:
            return self._main_step(inputs, params)
        out: dict[str, float] = {}
        for aux, opt in zip(self.auxiliary, self._aux_optimizers):
            if aux.when == "before":
                out[aux.name] = self._aux_step(aux, opt, inputs, params)
        out = {"loss": self._main_step(inputs, params), **out}
        for aux, opt in zip(self.auxiliary, self._aux_optimizers):
            if aux.when == "after":
                out[aux.name] = self._aux_step(aux, opt, inputs, params)
        return out

    def _main_step(self, inputs: Mapping[str, Any], params: Mapping[str, Any]) -> float:
        value, counted = self._step(self._targets[0], inputs, params)
        if counted:
            self.steps += 1
        return value

    def _aux_step(self, aux: AuxiliaryObjective, opt: torch.optim.Optimizer, inputs: Mapping[str, Any],
                  params: Mapping[str, Any]) -> float:
        """``aux.steps`` steps of the auxiliary objective ``aux`` (whose optimiser is ``opt``); the last value."""
        target = next(t for t in self._targets[1:] if t.optimizer is opt)
        value = math.nan
        for _ in range(aux.steps):
            value, _ = self._step(target, inputs, params)
        return value

    def _step(self, target: _Target, inputs: Mapping[str, Any], params: Mapping[str, Any]) -> tuple[float, bool]:
        """One optimisation step of one objective: the only place where an optimiser of the model steps.

        Returns the objective's value before the step and whether the step counts (False when the
        non-finite guard skipped it)."""
        opt = target.optimizer
        opt.zero_grad(set_to_none=True)
        scaler = self._amp_scaler(target)
        value, invalid = self._backward(target, inputs, params, scaler)
        if _dist.is_active():  # every process sees the same (mean) value, so all stop or step together
            value = _dist.average_step(value, target.params)
        if not math.isfinite(value):
            if invalid is not None and self.on_nonfinite != "skip":
                raise invalid
            self._nonfinite(target, None, f"{self._what(target)} is {value} at this step")
            return value, False
        if scaler is not None:
            scaler.unscale_(opt)
        bad = _nonfinite_gradient(target.params)
        if bad is not None:
            if scaler is not None and scaler.get_scale() > 1.0:  # the scaled loss overflowed: the scaler skips
                scaler.step(opt)
                scaler.update()
                return value, True
            self._nonfinite(target, scaler, f"{self._what(target)} is finite ({value:.6g}) but the gradient of "
                                            f"its parameter '{self._param_name(bad)}' is not (NaN or infinite) "
                                            f"at this step")
            return value, False
        if self.clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(target.params, self.clip_grad_norm)
        if self.clip_grad_value is not None:
            torch.nn.utils.clip_grad_value_(target.params, self.clip_grad_value)
        if scaler is not None:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        for hook in target.after_step:
            hook()
        return value, True

    def _backward(self, target: _Target, inputs: Mapping[str, Any], params: Mapping[str, Any],
                  scaler: Any) -> tuple[float, NonFiniteParameterError | None]:
        """Evaluate ``target``'s objective and back-propagate it: its value, and None. Non-finite parameters
        at their validation (the first evaluation) give NaN without gradients, and that error (raised by
        the caller unless ``on_nonfinite="skip"``, after the other processes have heard of the NaN)."""
        try:
            with torch.autocast("cuda", dtype=torch.float16) if scaler is not None else nullcontext():
                loss = self._value(inputs, params, target)
        except NonFiniteParameterError as err:
            return math.nan, err
        (scaler.scale(loss) if scaler is not None else loss).backward()
        return loss.item(), None

    @staticmethod
    def _what(target: _Target) -> str:
        return f"the objective {target.loss}" if target.main else \
            f"the auxiliary objective '{target.name}' ({target.loss})"

    def _param_name(self, param: nn.Parameter) -> str:
        """``param``'s name in the model (e.g. ``distributions.0.net.0.weight``)."""
        return next((n for n, p in self.named_parameters() if p is param), f"of shape {tuple(param.shape)}")

    def _nonfinite(self, target: _Target, unscaled: Any, what: str) -> None:
        """Skip this step (``on_nonfinite="skip"``) or raise :class:`NonFiniteLossError` saying ``what``;
        ``unscaled``: the gradient scaler that unscaled the gradients already (reset, its scale kept)."""
        target.optimizer.zero_grad(set_to_none=True)
        if unscaled is not None:
            unscaled.update(unscaled.get_scale())  # the step is not taken: reset the scaler, keep its scale
        if self.on_nonfinite == "skip":
            self.skipped_steps += 1
            return
        raise NonFiniteLossError(
            f"{what}; the optimiser did not step, so the parameters are those of the last finite step "
            f"(use on_nonfinite='skip' to skip such steps)"
        )

    def _amp_scaler(self, target: _Target) -> Any:
        """``target``'s gradient scaler when mixed precision applies (``amp`` and parameters on CUDA), else None."""
        if not self.amp or not target.params[0].is_cuda:
            return None
        if target.scaler is None:
            target.scaler = torch.amp.GradScaler("cuda")
            i = self._targets.index(target)
            if i < len(self._scaler_states) and self._scaler_states[i]:
                target.scaler.load_state_dict(self._scaler_states[i])
        return target.scaler

    @contextmanager
    def evaluating(self) -> Iterator[None]:
        """Eval mode for the block (dropout off, batch-norm statistics used), the mode before restored after."""
        was = self.training
        self.eval()
        try:
            yield
        finally:
            self.train(was)

    def eval_step(self, inputs: Mapping[str, Any], **params: Any) -> float:
        """The objective on ``inputs`` without gradients (modules in eval mode)."""
        self.eval()
        try:
            with torch.no_grad():
                return self._value(inputs, params).item()
        finally:
            self.train()

    def full_state_dict(self) -> dict[str, Any]:
        """Weights and buffers (e.g. REINFORCE's running baseline), optimiser and gradient-scaler states,
        counters: everything needed to continue training."""
        scalers = [t.scaler.state_dict() if t.scaler is not None else {} for t in self._targets]
        return {"model": self.state_dict(), "optimizer": self.optimizer.state_dict(),
                "auxiliary_optimizers": [o.state_dict() for o in self._aux_optimizers],
                "grad_scalers": scalers if any(scalers) else self._scaler_states,
                "skipped_steps": self.skipped_steps, "steps": self.steps}

    def load_full_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`full_state_dict` returned."""
        self.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        for o, st in zip(self._aux_optimizers, state.get("auxiliary_optimizers", [])):
            o.load_state_dict(st)
        self._scaler_states = list(state.get("grad_scalers", []))
        for t, st in zip(self._targets, self._scaler_states):
            if t.scaler is not None and st:
                t.scaler.load_state_dict(st)
        self.skipped_steps = int(state.get("skipped_steps", 0))
        self.steps = int(state.get("steps", 0))

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write weights and optimiser state atomically (temporary file, then rename)."""
        return save_atomic(self.full_state_dict(), path)

    def load(self, path: str | os.PathLike[str]) -> None:
        """Load what :meth:`save` wrote; never executes code from the file (``weights_only=True``). A file
        that is truncated, garbled or holds more than plain data is a
        :class:`~deepgm.errors.CheckpointCorruptError` naming it."""
        self.load_full_state_dict(load_state_file(Path(path)))

    def evaluate(self, test_data: Mapping[str, torch.Tensor], *, k: int = 1000, info: Any = None) -> dict[str, Any]:
        """Test metrics (see :mod:`deepgm.models.evaluation`); this default: the mean objective over
        ``test_data`` in batches of 500 (``k`` and ``info`` serve families that need them)."""
        n = len(next(iter(test_data.values())))
        total = 0.0
        for i in range(0, n, 500):
            part = {name: v[i:i + 500] for name, v in test_data.items()}
            total += float(self.eval_step(part)) * len(next(iter(part.values())))
        return {"test_loss": total / max(n, 1)}

    def figures(self, out_dir: Path, test_data: Mapping[str, torch.Tensor], info: Any) -> list[Path]:
        """The family's standard figures in ``out_dir`` (see :mod:`deepgm.models.evaluation`); none here."""
        return []

    def extra_repr(self) -> str:
        return f"loss: {self.loss}"


def _nonfinite_gradient(params: Sequence[nn.Parameter]) -> nn.Parameter | None:
    """The first of ``params`` whose gradient holds a NaN or an infinity, None when every gradient is
    finite. Fast path: the gradients' sums, stacked, one host synchronisation (a non-finite entry makes
    its sum non-finite); the entries are looked at only when a sum is not finite."""
    owners: list[nn.Parameter] = []
    grads: list[torch.Tensor] = []
    for p in params:
        g = p.grad
        if g is not None:
            owners.append(p)
            grads.append(g.coalesce().values() if g.is_sparse else g)
    if not grads:
        return None
    device = grads[0].device
    sums = torch.stack([g.sum() if g.device == device else g.sum().to(device) for g in grads])
    if bool(torch.isfinite(sums).all()):
        return None
    return next((p for p, g in zip(owners, grads) if not bool(torch.isfinite(g).all())), None)


def _unique(params: Iterable[nn.Parameter]) -> list[nn.Parameter]:
    seen: set[int] = set()
    out = []
    for p in params:
        if id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out
