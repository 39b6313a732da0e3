"""A model is an objective, the distributions it trains, and an optimiser."""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from deepgm.distributions.base import Distribution
from deepgm.distributions.env import Env
from deepgm.errors import NonFiniteLossError, ObjectiveError
from deepgm.losses.expr import Loss
from deepgm.training import distributed as _dist

__all__ = ["Model", "AuxiliaryObjective", "atomic_save"]

OptimizerFactory = Callable[..., torch.optim.Optimizer]


def atomic_save(obj: Any, path: str | os.PathLike[str]) -> Path:
    """``torch.save`` to a temporary file beside ``path``, then rename: a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


@dataclass
class AuxiliaryObjective:
    """A second objective with parameters and an optimiser of its own (a discriminator, a critic),
    stepped ``steps`` times ``before`` or ``after`` every step of the main objective. ``modules`` default
    to the modules the objective owns (e.g. the discriminator of ``DensityRatio.discriminator_loss()``)."""

    loss: Loss
    modules: Sequence[nn.Module] = ()
    optimizer: OptimizerFactory = torch.optim.Adam
    optimizer_params: Mapping[str, Any] = field(default_factory=dict)
    steps: int = 1
    when: Literal["before", "after"] = "after"
    name: str = "aux"


class Model(nn.Module):
    """Trains ``distributions`` to minimise ``loss``.

    ``train_step(inputs)`` evaluates the objective on a batch (a dict of named tensors, plus values for
    any ``Parameter``), back-propagates, clips gradients if asked and steps the optimiser; it returns
    the loss as a float. ``eval_step`` evaluates without gradients. ``compile=True`` runs the
    objective under ``torch.compile``. A NaN or infinite objective raises :class:`NonFiniteLossError`
    before the optimiser steps (``on_nonfinite="skip"`` skips the step instead).
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
        self.auxiliary = list(auxiliary)
        aux_modules: list[nn.Module] = []
        self._aux_optimizers: list[torch.optim.Optimizer] = []
        main = {id(p) for p in params}
        for aux in self.auxiliary:
            if not isinstance(aux.loss, Loss):
                raise ObjectiveError(
                    f"AuxiliaryObjective '{aux.name}' needs an objective, got {type(aux.loss).__name__}"
                )
            mods = list(aux.modules) or [m for node in aux.loss.walk() for m in node.own_modules()]
            aux_params = _unique(p for m in mods for p in m.parameters() if p.requires_grad)
            if not aux_params:
                raise ObjectiveError(f"AuxiliaryObjective '{aux.name}' has no trainable parameters")
            if any(id(p) in main for p in aux_params):
                raise ObjectiveError(f"AuxiliaryObjective '{aux.name}' shares parameters with the main objective")
            aux_modules.extend(mods)
            self._aux_optimizers.append(aux.optimizer(aux_params, **dict(aux.optimizer_params)))
        self.auxiliary_modules = nn.ModuleList(aux_modules)
        self.clip_grad_norm = clip_grad_norm
        self.clip_grad_value = clip_grad_value
        self.on_nonfinite = on_nonfinite
        self.skipped_steps = 0
        self.amp = amp  # mixed precision (float16 autocast + gradient scaling) when the model is on a GPU
        self.schedule = schedule  # step -> values of the objective's Parameters (β, annealing, capacity C)
        self.steps = 0  # optimisation steps taken (saved with the state)
        self._scaler: Any = None
        self._compiled = torch.compile(self._evaluate) if compile else None
        # the first evaluation runs eagerly: it validates parameters (data-dependent checks that
        # would break a compiled graph); later ones run compiled
        self._objective: Callable[[Mapping[str, Any]], torch.Tensor] = (
            self._evaluate_then_compile if compile else self._evaluate
        )

    def _evaluate(self, inputs: Mapping[str, Any]) -> torch.Tensor:
        return self.loss._eval(Env(inputs))

    def _evaluate_then_compile(self, inputs: Mapping[str, Any]) -> torch.Tensor:
        value = self._evaluate(inputs)
        assert self._compiled is not None
        self._objective = self._compiled
        return value

    def _value(self, inputs: Mapping[str, Any], params: Mapping[str, Any]) -> torch.Tensor:
        if type(inputs) is not dict and not isinstance(inputs, Mapping):
            raise TypeError(
                f"Model: a batch is a dict of named tensors such as {{'x': x}}, got {type(inputs).__name__}"
            )
        if self.schedule is not None:
            params = {**self.schedule(self.steps), **params}
        if params:
            inputs = {**inputs, **params}
        value = self._objective(inputs)
        if not torch.is_tensor(value) or value.dim() != 0:
            shape = tuple(value.shape) if torch.is_tensor(value) else type(value).__name__
            raise ObjectiveError(
                f"Model: the objective {self.loss} must be a scalar, but it evaluates to shape {shape}; "
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

    def _aux_step(self, aux: AuxiliaryObjective, opt: torch.optim.Optimizer, inputs: Mapping[str, Any],
                  params: Mapping[str, Any]) -> float:
        value = math.nan
        for _ in range(aux.steps):
            opt.zero_grad(set_to_none=True)
            loss = aux.loss._eval(Env({**inputs, **params}))
            if not torch.is_tensor(loss) or loss.dim() != 0:
                raise ObjectiveError(f"AuxiliaryObjective '{aux.name}': {aux.loss} must evaluate to a scalar")
            loss.backward()
            value = loss.item()
            if not math.isfinite(value):
                raise NonFiniteLossError(f"the auxiliary objective '{aux.name}' ({aux.loss}) is {value}")
            opt.step()
        return value

    def _main_step(self, inputs: Mapping[str, Any], params: Mapping[str, Any]) -> float:
        opt = self.optimizer
        opt.zero_grad(set_to_none=True)
        scaler = self._amp_scaler()
        if scaler is not None:
            with torch.autocast("cuda", dtype=torch.float16):
                loss = self._value(inputs, params)
            scaler.scale(loss).backward()
        else:
            loss = self._value(inputs, params)
            loss.backward()
        value = loss.item()
        distributed = _dist.is_active()
        if distributed:  # every process sees the same (mean) value, so all stop or step together
            value = _dist.average_value(value)
        if not math.isfinite(value):
            if self.on_nonfinite == "skip":
                self.skipped_steps += 1
                opt.zero_grad(set_to_none=True)
                return value
            raise NonFiniteLossError(
                f"the objective {self.loss} is {value} at this step; the optimiser did not step, so the "
                f"parameters are those of the last finite step (use on_nonfinite='skip' to skip such steps)"
            )
        if distributed:
            _dist.average_gradients(self._trainable)
        if scaler is not None:
            scaler.unscale_(opt)
        if self.clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self._trainable, self.clip_grad_norm)
        if self.clip_grad_value is not None:
            torch.nn.utils.clip_grad_value_(self._trainable, self.clip_grad_value)
        if scaler is not None:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        self.steps += 1
        return value

    def _amp_scaler(self) -> Any:
        """The gradient scaler when mixed precision applies (``amp`` and parameters on CUDA), else None."""
        if not self.amp or not self._trainable[0].is_cuda:
            return None
        if self._scaler is None:
            self._scaler = torch.amp.GradScaler("cuda")
        return self._scaler

    def eval_step(self, inputs: Mapping[str, Any], **params: Any) -> float:
        """The objective on ``inputs`` without gradients (modules in eval mode)."""
        self.eval()
        try:
            with torch.no_grad():
                return self._value(inputs, params).item()
        finally:
            self.train()

    test_step = eval_step

    def full_state_dict(self) -> dict[str, Any]:
        """Weights and optimiser state, everything needed to continue training."""
        return {"model": self.state_dict(), "optimizer": self.optimizer.state_dict(),
                "auxiliary_optimizers": [o.state_dict() for o in self._aux_optimizers],
                "skipped_steps": self.skipped_steps, "steps": self.steps}

    def load_full_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`full_state_dict` returned."""
        self.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        for o, st in zip(self._aux_optimizers, state.get("auxiliary_optimizers", [])):
            o.load_state_dict(st)
        self.skipped_steps = int(state.get("skipped_steps", 0))
        self.steps = int(state.get("steps", 0))

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write weights and optimiser state atomically (temporary file, then rename)."""
        return atomic_save(self.full_state_dict(), path)

    def load(self, path: str | os.PathLike[str]) -> None:
        """Load what :meth:`save` wrote; never executes code from the file (``weights_only=True``)."""
        self.load_full_state_dict(torch.load(path, map_location="cpu", weights_only=True))

    def extra_repr(self) -> str:
        return f"loss: {self.loss}"


def _unique(params: Iterable[nn.Parameter]) -> list[nn.Parameter]:
    seen: set[int] = set()
    out = []
    for p in params:
        if id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out
