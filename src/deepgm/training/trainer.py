"""One fit loop for any model with ``train_step``/``eval_step`` (deepgm's Model, the adversarial models).

Data are dicts of tensors held in memory (``{"x": (N, ...), "y": (N,)}``). Each epoch's order comes
from a generator seeded by ``(seed, epoch)``, and the global RNG states are saved in every checkpoint,
so a resumed run continues exactly as the uninterrupted one would have (same batches, same noise).
"""

from __future__ import annotations

import csv
import json
import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from deepgm.errors import ConfigError, NonFiniteLossError, NonFiniteParameterError
from deepgm.training import distributed as dist
from deepgm.training.checkpoint import (
    hold_folder,
    resume_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)

__all__ = ["Trainer", "TrainerConfig", "Trainable", "TrainingStopped", "TrainingInterrupted"]

Batch = dict[str, torch.Tensor]


class Trainable(Protocol):
    """What the trainer needs of a model."""

    def train_step(self, inputs: Mapping[str, Any], **params: Any) -> float | dict[str, float]: ...
    def eval_step(self, inputs: Mapping[str, Any], **params: Any) -> float | dict[str, float]: ...
    def full_state_dict(self) -> dict[str, Any]: ...
    def load_full_state_dict(self, state: Mapping[str, Any]) -> None: ...


class TrainingStopped(RuntimeError):
    """Training stopped on a non-finite loss; the message names the last good checkpoint."""


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped by SIGINT or SIGTERM after checkpointing where it was (``fit(resume=True)``
    continues from there). A ``KeyboardInterrupt``, so code that catches Ctrl-C still does;
    ``signal`` is the signal's number, ``step`` the last step done, ``checkpoint`` the checkpoint
    that holds it (None on ranks other than 0)."""

    def __init__(self, signum: int, step: int, checkpoint: Path | None) -> None:
        self.signal, self.step, self.checkpoint = signum, step, checkpoint
        name = signal.Signals(signum).name
        where = f"checkpoint {checkpoint} written" if checkpoint is not None else "checkpointed on rank 0"
        super().__init__(f"training stopped by {name} after step {step}; {where}")

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass
class TrainerConfig:
    """Options of :class:`Trainer` (each is a CLI flag of ``deepgm train``)."""

    epochs: int = 10
    max_steps: int | None = None
    batch_size: int = 100
    eval_batch_size: int = 1000
    seed: int = 0
    out_dir: Path = Path("runs/default")
    log_every: int = 20
    checkpoint_every: int | None = None  # steps; None: at the end of every epoch
    keep_checkpoints: int = 2
    early_stopping_patience: int | None = None
    progress: bool = True
    tensorboard: bool = False
    device: str = "cpu"
    amp: bool = False  # mixed precision on a GPU
    clip_grad_norm: float | None = None  # clip the gradients' global norm before every step
    drop_last: bool = True

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Refuse values outside an option's meaning, before anything runs: a
        :class:`~deepgm.errors.ConfigError` naming the option, what it must be and what it was."""
        for name, (ok, expected) in _RULES.items():
            value = getattr(self, name)
            if not ok(value):
                raise ConfigError("TrainerConfig", name, expected, value)
        problem = _device_problem(self.device)
        if problem is not None:
            raise ConfigError("TrainerConfig", "device", problem, self.device)


def _count(minimum: int, optional: bool = False) -> tuple[Callable[[Any], bool], str]:
    def ok(v: Any) -> bool:
        return (optional and v is None) or (isinstance(v, int) and not isinstance(v, bool) and v >= minimum)

    return ok, f"an integer of at least {minimum}" + (" (or None)" if optional else "")


_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "epochs": _count(1), "max_steps": _count(1, optional=True), "batch_size": _count(1),
    "eval_batch_size": _count(1), "log_every": _count(1), "checkpoint_every": _count(1, optional=True),
    "keep_checkpoints": _count(1), "early_stopping_patience": _count(1, optional=True),
    "seed": (lambda v: isinstance(v, int) and 0 <= v < 2**32, "an integer in [0, 2**32)"),
    "clip_grad_norm": (lambda v: v is None or (isinstance(v, (int, float)) and math.isfinite(v) and v > 0),
                       "a positive finite number (or None: no clipping)"),
}


def _device_problem(device: str) -> str | None:
    """What ``device`` must be when it does not name a device of this machine, else None."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        return "a torch device ('cpu', 'cuda', 'cuda:1', 'mps')"
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            return "'cpu' (this machine has no CUDA device)"
        if dev.index is not None and dev.index >= n:
            return f"'cpu', 'cuda' or one of cuda:0 to cuda:{n - 1} (this machine has {n} CUDA device(s))"
    if dev.type == "mps" and not torch.backends.mps.is_available():
        return "'cpu' or 'cuda' (this machine has no MPS device)"
    if dev.type not in ("cpu", "cuda", "mps"):
        return "'cpu', 'cuda[:N]' or 'mps'"
    return None


def _as_dict(value: float | Mapping[str, float]) -> dict[str, float]:
    return {"loss": float(value)} if not isinstance(value, Mapping) else {k: float(v) for k, v in value.items()}


@dataclass
class _Position:
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_val: float = math.inf
    bad_epochs: int = 0
    history: dict[str, list[float]] = field(default_factory=lambda: {"step": [], "loss": [], "val_step": [],
                                                                     "val_loss": []})


class Trainer:
    """Fits ``model`` on ``train`` (dict of tensors), validating on ``val`` every epoch.

    ``transform(batch)`` is applied to every training batch (e.g. dynamic binarisation, drawn from the
    global generator so it is part of the saved RNG state); ``params(step)`` gives values of the
    objective's ``Parameter``s (β, annealing); ``on_resume()`` runs after a resume loaded its checkpoint.
    Writes ``metrics.csv``, checkpoints under ``out_dir/checkpoints`` (``last`` and ``best``), and on a
    non-finite loss stops with :class:`TrainingStopped` naming the last good checkpoint. SIGINT and
    SIGTERM during :meth:`fit` finish the current step, checkpoint and raise :class:`TrainingInterrupted`
    (a second signal acts as it would without the trainer: Ctrl-C raises ``KeyboardInterrupt`` at once).
    """

    def __init__(self, model: Trainable, train: Mapping[str, torch.Tensor], config: TrainerConfig,
                 val: Mapping[str, torch.Tensor] | None = None,
                 transform: Callable[[Batch], Batch] | None = None,
                 params: Callable[[int], dict[str, Any]] | None = None,
                 on_resume: Callable[[], None] | None = None) -> None:
        config.validate()  # again: the fields may have been set after construction
        self.model = model
        self.train_data = dict(train)
        self.val_data = dict(val) if val is not None else None
        self.config = config
        self.transform = transform
        self.params = params
        self.on_resume = on_resume  # called once a resume has loaded the checkpoint (e.g. to apply a new lr)
        n = {len(v) for v in self.train_data.values()}
        if len(n) != 1:
            raise ValueError(f"Trainer: training tensors differ in length: "
                             f"{ {k: len(v) for k, v in self.train_data.items()} }")
        self.n_train = n.pop()
        if config.batch_size < 1 or config.batch_size > self.n_train:
            raise ValueError(f"Trainer: batch_size must be in [1, {self.n_train}], got {config.batch_size}")
        self.out_dir = Path(config.out_dir)
        self.ckpt_dir = self.out_dir / "checkpoints"
        self.pos = _Position()
        self.rank, self.world = dist.rank(), dist.world_size()
        if self.world > 1 and config.batch_size % self.world:
            raise ValueError(f"Trainer: batch_size {config.batch_size} must divide among {self.world} processes")
        self._tb: Any = None
        self._signal: int | None = None  # the stop signal received during fit
        self._saved_at: tuple[int, Path] | None = None  # (step, checkpoint) of the latest save
        if config.device != "cpu":
            self._module().to(config.device)
        if hasattr(model, "amp"):
            model.amp = config.amp
        if config.clip_grad_norm is not None and hasattr(model, "clip_grad_norm"):
            model.clip_grad_norm = config.clip_grad_norm

    # -- data --------------------------------------------------------------------------------------------
    def _order(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.config.seed * 1_000_003 + epoch)
        return torch.randperm(self.n_train, generator=g)

    def _batches_per_epoch(self) -> int:
        b = self.config.batch_size
        return self.n_train // b if self.config.drop_last else math.ceil(self.n_train / b)

    def _batch(self, idx: torch.Tensor) -> Batch:
        if self.world > 1:  # each process takes its share of the global batch
            idx = idx[self.rank:: self.world]
        device = self.config.device
        batch = {k: v[idx].to(device) for k, v in self.train_data.items()}
        return self.transform(batch) if self.transform is not None else batch

    # -- checkpoints --------------------------------------------------------------------------------------
    def _module(self) -> nn.Module:
        assert isinstance(self.model, nn.Module)
        return self.model

    def _state(self) -> dict[str, Any]:
        full = self.model.full_state_dict()
        full.pop("model", None)  # the weights go to safetensors
        p = self.pos
        return {"trainable": full, "rng": rng_state(), "step": p.step, "epoch": p.epoch,
                "batch_in_epoch": p.batch_in_epoch, "best_val": p.best_val, "bad_epochs": p.bad_epochs,
                "history": p.history, "config": json.dumps(asdict(self.config), default=str)}

    def save(self, best: bool = False) -> Path | None:
        """Checkpoint now (rank 0 only); ``best`` also points ``best`` at it."""
        if self.rank != 0:
            return None
        pointers = ("last", "best") if best else ("last",)
        path = save_checkpoint(self.ckpt_dir, f"step-{self.pos.step:09d}", self._module(), self._state(),
                               keep=self.config.keep_checkpoints, pointers=pointers)
        self._saved_at = (self.pos.step, path)
        return path

    def resume(self, pointer: str = "last") -> None:
        """Continue from ``out_dir/checkpoints/<pointer>``, or, when that one does not verify, from the newest
        checkpoint that does (a :class:`~deepgm.errors.CheckpointWarning` names the skipped ones; see
        :func:`~deepgm.training.checkpoint.resume_checkpoint`)."""
        _, state = resume_checkpoint(self.ckpt_dir, self._module(), pointer, repoint=self.rank == 0)
        trainable = dict(state["trainable"])
        trainable["model"] = self._module().state_dict()
        self.model.load_full_state_dict(trainable)
        if self.on_resume is not None:
            self.on_resume()
        set_rng_state(state["rng"])
        self.pos = _Position(step=state["step"], epoch=state["epoch"], batch_in_epoch=state["batch_in_epoch"],
                             best_val=state["best_val"], bad_epochs=state["bad_epochs"], history=state["history"])

    # -- the loop ------------------------------------------------------------------------------------------
    def evaluate(self, data: Mapping[str, torch.Tensor] | None = None) -> float:
        """The mean ``eval_step`` loss over ``data`` (default: the validation set), weighted by batch size."""
        data = self.val_data if data is None else data
        assert data is not None
        n = len(next(iter(data.values())))
        total, b = 0.0, self.config.eval_batch_size
        for i in range(0, n, b):
            batch = {k: v[i:i + b].to(self.config.device) for k, v in data.items()}
            if self.transform is not None and "x" in batch:
                batch = self.transform(batch)
            out = _as_dict(self.model.eval_step(batch, **(self.params(self.pos.step) if self.params else {})))
            total += out["loss"] * len(next(iter(batch.values())))
        return total / n

    @contextmanager
    def _own_checkpoints(self) -> Iterator[None]:
        """On rank 0, hold the checkpoint folder's lock for the run and remove the temporaries that a
        killed run's interrupted checkpoint write left (see :func:`~deepgm.training.checkpoint.hold_folder`)."""
        if self.rank != 0:
            yield
            return
        with hold_folder(self.ckpt_dir):
            yield

    def fit(self, resume: bool = False) -> dict[str, list[float]]:
        """Train for ``epochs`` (or ``max_steps``); returns the history of losses. The run holds
        ``out_dir/checkpoints`` (a lock) while it trains, and first removes stale temporaries there."""
        with self._own_checkpoints(), self._stop_on_signals():
            history = self._fit(resume)
        if self._signal is not None:
            saved = self._saved_at
            raise TrainingInterrupted(self._signal, self.pos.step, saved[1] if saved else None)
        return history

    @contextmanager
    def _stop_on_signals(self) -> Iterator[None]:
        """For the block, SIGINT and SIGTERM (in the main thread) ask the loop to stop after the current
        step; the first one restores the previous handlers, so a second acts as it would have."""
        self._signal = None
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

        def restore() -> None:
            for s, h in previous.items():
                signal.signal(s, h)

        def stop(signum: int, _frame: Any) -> None:
            self._signal = signum
            restore()

        for s in previous:
            signal.signal(s, stop)
        try:
            yield
        finally:
            restore()

    def _fit(self, resume: bool) -> dict[str, list[float]]:
        cfg = self.config
        if resume:
            self.resume()
        else:
            torch.manual_seed(cfg.seed)
        if self.rank == 0:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            (self.out_dir / "trainer_config.json").write_text(json.dumps(asdict(cfg), default=str, indent=2))
        csv_path = self.out_dir / "metrics.csv"
        log = _CsvLog(csv_path, append=resume) if self.rank == 0 else None
        if cfg.tensorboard and self.rank == 0:
            self._tb = _tensorboard(self.out_dir / "tensorboard")
        per_epoch = self._batches_per_epoch()
        bar = _Progress(total=cfg.max_steps or cfg.epochs * per_epoch, initial=self.pos.step,
                        enabled=cfg.progress and self.rank == 0)
        stop = False
        try:
            while self.pos.epoch < cfg.epochs and not stop:
                order = self._order(self.pos.epoch)
                t0, seen = time.perf_counter(), 0
                for bi in range(self.pos.batch_in_epoch, per_epoch):
                    idx = order[bi * cfg.batch_size:(bi + 1) * cfg.batch_size]
                    batch = self._batch(idx)
                    params = self.params(self.pos.step) if self.params else {}
                    try:
                        out = _as_dict(self.model.train_step(batch, **params))
                    except (NonFiniteLossError, NonFiniteParameterError) as err:
                        last = self.ckpt_dir / "last"
                        where = (self.ckpt_dir / last.read_text().strip()) if last.exists() else "none written yet"
                        raise TrainingStopped(f"stopped at step {self.pos.step}: {err}. "
                                              f"Last good checkpoint: {where}") from err
                    self.pos.step += 1
                    self.pos.batch_in_epoch = bi + 1
                    seen += len(idx)
                    rate = seen / max(time.perf_counter() - t0, 1e-9)
                    bar.update(out["loss"], rate)
                    if self.pos.step % cfg.log_every == 0 or bi == per_epoch - 1:
                        self.pos.history["step"].append(self.pos.step)
                        self.pos.history["loss"].append(out["loss"])
                        if log:
                            log.write({"step": self.pos.step, "epoch": self.pos.epoch, **out,
                                       "examples_per_s": round(rate, 1)})
                        if self._tb is not None:
                            for k, v in out.items():
                                self._tb.add_scalar(f"train/{k}", v, self.pos.step)
                    if cfg.checkpoint_every and self.pos.step % cfg.checkpoint_every == 0:
                        self.save()
                    if (cfg.max_steps is not None and self.pos.step >= cfg.max_steps) or self._signal is not None:
                        stop = True
                        break
                if self.pos.batch_in_epoch == per_epoch:  # a whole epoch: validate, checkpoint
                    self.pos.epoch += 1
                    self.pos.batch_in_epoch = 0
                    best = self._end_of_epoch(log, bar)
                    if cfg.checkpoint_every is None or best or stop or self.pos.epoch >= cfg.epochs:
                        self.save(best=best)
                    patience = cfg.early_stopping_patience
                    if patience is not None and self.pos.bad_epochs >= patience:
                        bar.write(f"early stopping: no validation improvement in {self.pos.bad_epochs} epochs")
                        break
                elif stop:  # stopped inside an epoch (max_steps, a signal): checkpoint where we are
                    self.save()
            if self._signal is not None and (self._saved_at is None or self._saved_at[0] != self.pos.step):
                self.save()  # a signal during the last validation: the checkpoint of the end is complete
        finally:
            bar.close()
            if log:
                log.close()
            if self._tb is not None:
                self._tb.close()
        return self.pos.history

    def _end_of_epoch(self, log: _CsvLog | None, bar: _Progress) -> bool:
        if self.val_data is None:
            return False
        val = self.evaluate()
        self.pos.history["val_step"].append(self.pos.step)
        self.pos.history["val_loss"].append(val)
        if log:
            log.write({"step": self.pos.step, "epoch": self.pos.epoch, "val_loss": val})
        if self._tb is not None:
            self._tb.add_scalar("val/loss", val, self.pos.step)
        bar.write(f"epoch {self.pos.epoch}: validation loss {val:.4f}")
        if val < self.pos.best_val:
            self.pos.best_val, self.pos.bad_epochs = val, 0
            return True
        self.pos.bad_epochs += 1
        return False


class _CsvLog:
    def __init__(self, path: Path, append: bool) -> None:
        self.path = path
        self.rows: list[dict[str, Any]] = []
        if append and path.exists():
            with path.open() as fh:
                self.rows = list(csv.DictReader(fh))

    def write(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        keys: list[str] = []
        for r in self.rows:
            keys.extend(k for k in r if k not in keys)
        with self.path.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=keys)
            w.writeheader()
            w.writerows(self.rows)

    def close(self) -> None:
        pass


def _tensorboard(path: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as err:  # pragma: no cover - depends on the optional package
        raise ImportError("tensorboard logging needs the optional package 'tensorboard' "
                          "(pip install tensorboard)") from err
    return SummaryWriter(str(path))


class _Progress:
    """A tqdm bar with the live loss and throughput when tqdm is installed, else periodic lines."""

    def __init__(self, total: int, initial: int, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Any = None
        self.n = initial
        self.total = total
        if enabled:
            try:
                from tqdm.auto import tqdm  # type: ignore[import-untyped, unused-ignore]

                self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True)
            except ImportError:
                self.bar = None

    def update(self, loss: float, rate: float) -> None:
        self.n += 1
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss:.4g}", ex_per_s=f"{rate:.0f}", refresh=False)
            self.bar.update(1)
        elif self.n % 100 == 0:
            print(f"step {self.n}/{self.total}  loss {loss:.4g}  {rate:.0f} ex/s", file=sys.stderr)

    def write(self, msg: str) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(msg)
        else:
            print(msg, file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
