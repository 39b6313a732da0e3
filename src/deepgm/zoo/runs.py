"""A run folder of ``deepgm train``: ``run.json`` (the model's name and config, the data's config and
description, the training config, the objective, the resumes), ``objective.tex`` and ``checkpoints/``;
:func:`load_run` rebuilds the trained model from it.

A folder holds at most one run, trained by one process at a time: :func:`hold_run` locks ``.lock`` in it
(naming the process) for the training's duration, :func:`claim_run` refuses a folder that holds a run
unless it is overwritten (its files removed first), and :func:`resume_changes` compares a resume's
options with the run's before anything is written. What may change on resume without asking is
:data:`FREE_ON_RESUME`; the model and the data (:data:`FIXED`) never change; any other option is a
different run unless named in ``allowed`` (``deepgm train --allow-changed``).
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import json
import os
import shutil
import socket
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepgm.data import DataInfo
from deepgm.errors import DeepGMError
from deepgm.io import remove_stale_temporaries, write_text_atomic
from deepgm.zoo.registry import ZooEntry, get

__all__ = ["Run", "RunNotFoundError", "RunFolderError", "load_run", "write_run", "read_run", "hold_run",
           "claim_run", "holds_run", "resume_changes", "record_resume", "check_weights_fit", "start_run",
           "save_start", "optimizer_settings", "FREE_ON_RESUME", "FIXED", "LOCK_NAME"]

LOCK_NAME = ".lock"
# options that may change on resume: how long to train, how often to log, checkpoint and validate, where
# to run; none changes what one step computes
FREE_ON_RESUME = frozenset({"epochs", "max_steps", "progress", "tensorboard", "log_every", "checkpoint_every",
                            "keep_checkpoints", "early_stopping_patience", "eval_batch_size", "device", "out_dir",
                            "data_dir"})
FIXED = frozenset({"model", "dataset", "binarize"})  # never: another model or other data is another run


class RunNotFoundError(DeepGMError, FileNotFoundError):
    """The folder is not a run (no ``run.json``) or holds no checkpoint."""


class RunFolderError(DeepGMError):
    """The run folder cannot be used as asked: it holds another run, another process trains in it, the
    resume's options differ from the run's, its ``run.json`` is unreadable, it cannot be written."""


@dataclass
class Run:
    """A trained run: its model (eval mode, weights of the best checkpoint, else the last), the data's
    description and everything ``run.json`` records."""

    model: Any
    info: DataInfo
    meta: dict[str, Any]

    @property
    def data_config(self) -> dict[str, Any]:
        """The ``DataConfig`` fields the run was trained with (binarisation resolved)."""
        return dict(self.meta["data_config"])


def _now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def _plain(x: Any) -> Any:
    """``x`` as JSON reads it back (tuples as lists, paths as strings)."""
    return json.loads(json.dumps(x, default=str))


def write_run(out: Path, entry: ZooEntry, model_config: Any, data_config: Any, info: DataInfo, model: Any,
              train_config: Any = None, resumes: list[dict[str, Any]] | None = None) -> None:
    """``out/run.json`` (and ``out/objective.tex`` for models with an objective), each written atomically."""
    loss = getattr(model, "loss", None)
    run = {"model": entry.name, "model_config": dataclasses.asdict(model_config),
           "data_config": dataclasses.asdict(data_config), "data_info": dataclasses.asdict(info),
           "train_config": dataclasses.asdict(train_config) if train_config is not None else None,
           "objective": str(loss) if loss is not None else None, "resumes": resumes or []}
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "run.json", json.dumps(run, indent=2, default=str) + "\n")
    if loss is not None:
        write_text_atomic(out / "objective.tex", loss.to_latex() + "\n")


def read_run(run: Path) -> dict[str, Any]:
    """The contents of ``run/run.json``: :class:`RunNotFoundError` without one, :class:`RunFolderError`
    when it is not the JSON that ``deepgm train`` writes."""
    meta_path = run / "run.json"
    if not meta_path.is_file():
        what = "a file" if run.is_file() else "it does not exist" if not run.exists() else "no run.json"
        raise RunNotFoundError(f"{run} is not a run folder ({what}); train one with 'deepgm train'")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise RunFolderError(f"{meta_path} is corrupt (expected the JSON that deepgm train writes): {err}") from None
    missing = [k for k in ("model", "model_config", "data_config", "data_info") if not isinstance(meta, dict)
               or k not in meta]
    if missing:
        raise RunFolderError(f"{meta_path} lacks {', '.join(missing)} (expected the JSON that deepgm train writes)")
    return dict(meta)


def load_run(run: Path) -> Run:
    """The trained model of the run folder ``run``; :class:`RunNotFoundError` says what is missing."""
    from deepgm.training.checkpoint import CheckpointNotFoundError, latest_checkpoint, load_checkpoint

    meta = read_run(run)
    try:
        entry = get(meta["model"])
    except KeyError as err:
        raise RunFolderError(f"{run / 'run.json'}: {err.args[0]}") from None
    try:
        cfg = entry.config(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta["model_config"].items()})
        info = DataInfo.from_dict(meta["data_info"])
    except (TypeError, ValueError, KeyError) as err:
        raise RunFolderError(f"{run / 'run.json'}: its model_config or data_info does not fit {entry.name} "
                             f"({err})") from None
    model = entry.build(cfg, info)
    ckpts = run / "checkpoints"
    try:
        ckpt = latest_checkpoint(ckpts, "best" if (ckpts / "best").exists() else "last")
    except CheckpointNotFoundError as err:
        raise RunNotFoundError(f"{run} holds no checkpoint to load ({err})") from None
    load_checkpoint(ckpt, model)
    model.eval()
    return Run(model, info, meta)


# -- one run per folder, one process per run ----------------------------------------------------------------
@contextmanager
def hold_run(out: Path) -> Iterator[None]:
    """Create ``out`` and hold its lock (``out/.lock``, naming this process: pid, host, start time) for the
    block, then remove the temporaries that killed writers left in ``out``. :class:`RunFolderError` when
    another process holds it, or when ``out`` cannot be a folder or cannot be written. The kernel releases
    the lock when the process dies, so a killed training never leaves a stale one."""
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"--out {out} is a file, expected a run folder")
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        fh = open(out / LOCK_NAME, "a+")  # noqa: SIM115 - held open for the block
    except OSError as err:
        raise RunFolderError(f"--out {out} cannot be written ({err.strerror or err})") from None
    try:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no lock
            fcntl = None  # type: ignore[assignment]
        if fcntl is not None:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                owner = fh.read().strip() or "another process"
                raise RunFolderError(f"run folder {out} is in use by another training ({owner}); wait for it to "
                                     f"finish or choose another --out") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {socket.gethostname()} since {_now()}\n")
        fh.flush()
        remove_stale_temporaries(out)
        yield
    except BaseException:
        if created and [p.name for p in out.iterdir()] == [LOCK_NAME]:  # refused before writing: leave nothing
            shutil.rmtree(out, ignore_errors=True)
        raise
    finally:
        fh.close()  # releases the lock


def holds_run(out: Path) -> bool:
    """Whether the folder ``out`` holds a run: a checkpoint (``checkpoints/last`` or a ``step-*`` folder)."""
    ckpts = out / "checkpoints"
    return (ckpts / "last").exists() or (ckpts.is_dir() and any(d.name.startswith("step-") for d in ckpts.iterdir()))


def claim_run(out: Path, overwrite: bool) -> None:
    """For a new run in ``out`` (its lock held): refuse a folder that holds a run, or, with ``overwrite``,
    remove everything in it first (so that no file of the old run, ``best`` or ``last``, survives). The
    files of a run stopped before its first checkpoint (a ``run.json``, nothing to resume) are removed
    without asking: there is nothing to lose."""
    if not holds_run(out):
        if (out / "run.json").exists():
            _clear(out)
        return
    if not overwrite:
        raise RunFolderError(f"--out {out} already holds a run; pass --resume to continue it, --overwrite to "
                             f"replace it (its files are deleted), or choose another --out")
    _clear(out)


def _clear(out: Path) -> None:
    """Remove everything in ``out`` but its lock (refused while a process trains into its checkpoints)."""
    from deepgm.training.checkpoint import hold_folder

    if (out / "checkpoints").is_dir():
        with hold_folder(out / "checkpoints"):  # CheckpointFolderBusyError while another process holds it
            pass
    for p in out.iterdir():
        if p.name == LOCK_NAME:
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def resume_changes(meta: Mapping[str, Any], model: str, configs: Mapping[str, Any],
                   allowed: frozenset[str] = frozenset()) -> dict[str, list[Any]]:
    """The options of a resume that differ from the run's (``meta``, its ``run.json``), as
    ``{option: [old, new]}``; ``configs`` maps ``"model_config"``, ``"data_config"`` and ``"train_config"``
    to the resume's config dataclasses. Raises :class:`RunFolderError` before anything is written when
    the model or the data differ, or an option outside :data:`FREE_ON_RESUME` and ``allowed`` does."""
    if meta["model"] != model:
        raise RunFolderError(f"--resume: the run in this folder is a {meta['model']!r}, not a {model!r}; "
                             f"train {model!r} into another --out")
    changes: dict[str, list[Any]] = {}
    for table, cfg in configs.items():
        stored = meta.get(table)
        if stored is None:  # written before run.json recorded it
            continue
        new = _plain(dataclasses.asdict(cfg))
        for name in sorted(set(stored) | set(new)):
            if stored.get(name) != new.get(name):
                changes[name] = [stored.get(name), new.get(name)]
    fixed = [n for n in changes if n in FIXED]
    if fixed:
        listed = ", ".join(f"{_flag(n)} {changes[n][0]} → {changes[n][1]}" for n in fixed)
        raise RunFolderError(f"--resume: the data of a run cannot change ({listed}); train into another --out")
    refused = [n for n in changes if n not in FREE_ON_RESUME and n not in allowed]
    if refused:
        listed = ", ".join(f"{_flag(n)} {changes[n][0]} → {changes[n][1]}" for n in refused)
        names = ",".join(_flag(n)[2:] for n in refused)
        raise RunFolderError(f"--resume: options differ from the run's: {listed}; that is a different run "
                             f"(train into another --out), or pass --allow-changed {names} to change them deliberately")
    return changes


def check_weights_fit(out: Path, model: Any) -> None:
    """Refuse (:class:`RunFolderError`) a model whose weights' names or shapes differ from those of the run's
    last checkpoint (an architecture changed with ``--allow-changed``); a checkpoint that cannot be read is
    left to the resume itself (it falls back to one that verifies)."""
    from safetensors import safe_open

    try:
        name = (out / "checkpoints" / "last").read_text().strip()
        with safe_open(str(out / "checkpoints" / name / "model.safetensors"), "pt") as f:
            stored = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118 - not a dict
    except Exception:  # noqa: BLE001 - unreadable: the resume reports it
        return
    state = model.state_dict()
    now = {k: tuple(v.shape) for k, v in state.items()}
    # a tensor shared by several modules (M2's classifier) is saved once, under one of its names
    where = {k: (v.untyped_storage().data_ptr(), v.storage_offset(), tuple(v.shape)) for k, v in state.items()}
    saved = {where[k] for k in stored if k in where}
    differ = sorted({k for k in stored if stored[k] != now.get(k)}
                    | {k for k in now if k not in stored and where[k] not in saved})
    if differ:
        shown = ", ".join(f"{k} {stored.get(k)} → {now.get(k)}" for k in differ[:3])
        raise RunFolderError(f"--resume: the changed options change the model's weights ({shown}"
                             f"{', …' if len(differ) > 3 else ''}); an architecture change is a new run: train "
                             f"into another --out")


def record_resume(out: Path, meta: Mapping[str, Any], changes: Mapping[str, list[Any]],
                  configs: Mapping[str, Any]) -> None:
    """Rewrite ``out/run.json`` with the resume's configs and a new entry in its ``resumes`` list (when, and
    what changed)."""
    updated = {**meta, **{table: dataclasses.asdict(cfg) for table, cfg in configs.items()}}
    updated["resumes"] = [*meta.get("resumes", []), {"at": _now(), "changed": dict(changes)}]
    write_text_atomic(out / "run.json", json.dumps(updated, indent=2, default=str) + "\n")


def start_run(out: Path, model: str, configs: Mapping[str, Any], resume: bool, overwrite: bool,
              allowed: frozenset[str] = frozenset(), lead: bool = True) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """The first step of training ``model`` into ``out`` (its lock held), before anything is written: for a
    resume, the run's ``run.json`` (read under the lock) and the options that changed
    (:func:`resume_changes`); else :func:`claim_run` (by the ``lead`` process only) and ``({}, {})``."""
    if resume:
        meta = read_run(out)
        return meta, resume_changes(meta, model, configs, allowed)
    if lead:
        claim_run(out, overwrite)
    return {}, {}


def save_start(out: Path, entry: ZooEntry, configs: Mapping[str, Any], info: DataInfo, model: Any,
               meta: Mapping[str, Any] | None, changes: Mapping[str, list[Any]]) -> None:
    """The second step, once the model is built: a new run's ``run.json`` (``meta`` None), or, for a resume,
    :func:`check_weights_fit` and the resume recorded in ``run.json`` (:func:`record_resume`)."""
    if meta is None:
        write_run(out, entry, configs["model_config"], configs["data_config"], info, model,
                  train_config=configs["train_config"])
        return
    check_weights_fit(out, model)
    record_resume(out, meta, changes, configs)


def optimizer_settings(model: Any, changes: Mapping[str, list[Any]], model_config: Any) -> Callable[[], None] | None:
    """When a resume changed an option of the model's config (``changes``, allowed with ``--allow-changed``):
    a function that puts the freshly built ``model``'s optimiser settings (``lr``, ``betas``...) back after
    the checkpoint's loaded over them, so the change takes effect; None otherwise (a resume as it was)."""
    import torch

    if not set(changes) & {f.name for f in dataclasses.fields(model_config)}:
        return None
    opts: list[torch.optim.Optimizer] = []
    for v in vars(model).values():
        opts.extend(o for o in (v if isinstance(v, (list, tuple)) else [v]) if isinstance(o, torch.optim.Optimizer))
    saved = [[{k: copy.deepcopy(x) for k, x in g.items() if k != "params"} for g in o.param_groups] for o in opts]

    def restore() -> None:
        for o, groups in zip(opts, saved):
            for group, settings in zip(o.param_groups, groups):
                group.update(settings)

    return restore
