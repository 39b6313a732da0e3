"""Checkpoints: a folder per checkpoint, written whole or not at all, verified when read.

A checkpoint folder holds ``model.safetensors`` (the weights), ``state.pt`` (optimiser states, RNG
states, step counters, history; plain tensors and numbers, loaded with ``weights_only=True``) and
``manifest.json`` (the SHA-256 and size of each of those two files). It is written into a temporary
folder and renamed into place, the manifest with it; the text file ``last`` (and ``best``) naming the
current folder is replaced atomically after that (both through :mod:`deepgm.io`). A crash at any moment
leaves the previous checkpoint intact and pointed to. Loading never executes code from the files.

Loading verifies every file against the manifest first: a changed byte, a truncated or replaced file
is a :class:`~deepgm.errors.CheckpointCorruptError` naming the file and the expected and found digests,
and so is a file that is not what it should be (not safetensors, not a weights-only ``torch.save``).
On resume, :func:`resume_checkpoint` falls back to the newest checkpoint that verifies, with a
:class:`~deepgm.errors.CheckpointWarning` naming each one it skipped, and points ``last`` at it.
Checkpoints written before manifests existed are loaded without verification, with a
:class:`~deepgm.errors.CheckpointWarning` saying so (refusing them would strand every older run; their
files are still checked to be well-formed safetensors and weights-only data).

A run owns its checkpoint folder: :func:`hold_folder` takes an exclusive lock on ``folder/.lock`` for the
run's duration (released by the kernel if the process dies, so a killed run never leaves a stale lock),
and, once it has it, removes the temporaries that killed writers left behind (``.tmp-*`` folders,
``.*.tmp`` files): with the lock held no live process can be writing them.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from deepgm.errors import CheckpointCorruptError, CheckpointMismatchError, CheckpointWarning, DeepGMError
from deepgm.io import atomic_folder, file_digest, remove_stale_temporaries, write_text_atomic

__all__ = ["save_checkpoint", "load_checkpoint", "latest_checkpoint", "resume_checkpoint", "verify_checkpoint",
           "rng_state", "set_rng_state", "hold_folder", "CheckpointNotFoundError", "CheckpointFolderBusyError",
           "CheckpointCorruptError", "CheckpointMismatchError", "load_state_file", "step_checkpoints", "MANIFEST_NAME",
           "CHECKPOINT_FILES"]

LOCK_NAME = ".lock"
MANIFEST_NAME = "manifest.json"
CHECKPOINT_FILES = ("model.safetensors", "state.pt")
MANIFEST_FORMAT = 1


class CheckpointNotFoundError(DeepGMError, FileNotFoundError):
    """No checkpoint where one was asked for."""


class CheckpointFolderBusyError(DeepGMError, RuntimeError):
    """Another live process holds the checkpoint folder's lock."""


@contextmanager
def hold_folder(folder: Path) -> Iterator[list[Path]]:
    """Hold ``folder``'s lock (``folder/.lock``) for the block and remove stale temporaries first; yields
    the temporaries removed. Raises :class:`CheckpointFolderBusyError` when another process holds it.
    Where ``fcntl`` is missing (Windows) there is no lock, and the temporaries are removed all the same."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield remove_stale_temporaries(folder)
        return
    fh = open(folder / LOCK_NAME, "a+")  # noqa: SIM115 - held open for the block
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            owner = fh.read().strip() or "unknown"
            raise CheckpointFolderBusyError(
                f"checkpoint folder {folder} is in use by another run (process {owner}); "
                f"give this run another out_dir (deepgm train --out) or wait for that one to finish") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        yield remove_stale_temporaries(folder)
    finally:
        fh.close()  # closing releases the lock


def rng_state() -> dict[str, Any]:
    """The states of torch's, numpy's and Python's global generators, as weights-only-loadable data."""
    np_state: tuple[Any, ...] = tuple(np.random.get_state(legacy=True))
    return {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached": float(np_state[4])},
        "python": list(_to_lists(random.getstate())),
    }


def _to_lists(x: Any) -> Any:
    return [_to_lists(v) for v in x] if isinstance(x, (tuple, list)) else x


def _to_tuples(x: Any) -> Any:
    return tuple(_to_tuples(v) for v in x) if isinstance(x, list) else x


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    random.setstate(_to_tuples(state["python"]))


def save_checkpoint(folder: Path, name: str, module: nn.Module, state: dict[str, Any], keep: int = 2,
                    pointers: tuple[str, ...] = ("last",)) -> Path:
    """Write ``folder/name/`` atomically and point ``pointers`` (e.g. ``last``, ``best``) at it.

    Older checkpoints beyond the ``keep`` most recent are removed, except those a pointer names.
    """
    from safetensors.torch import save_model

    with atomic_folder(folder / name) as tmp:
        save_model(module, str(tmp / "model.safetensors"))
        torch.save(state, tmp / "state.pt")
        _write_manifest(tmp)
    for p in pointers:
        write_text_atomic(folder / p, name + "\n")
    _prune(folder, keep)
    return folder / name


def _prune(folder: Path, keep: int) -> None:
    named = {(folder / p).read_text().strip() for p in ("last", "best") if (folder / p).exists()}
    steps = sorted((d for d in folder.iterdir() if d.is_dir() and d.name.startswith("step-")), key=lambda d: d.name)
    for d in steps[:-keep] if keep > 0 else []:
        if d.name not in named:
            shutil.rmtree(d, ignore_errors=True)


def _write_manifest(folder: Path) -> None:
    files = {f: {"sha256": file_digest(folder / f), "bytes": (folder / f).stat().st_size} for f in CHECKPOINT_FILES}
    (folder / MANIFEST_NAME).write_text(json.dumps({"format": MANIFEST_FORMAT, "files": files}, indent=1) + "\n")


def _complete(path: Path) -> bool:
    return all((path / f).is_file() for f in CHECKPOINT_FILES)


def latest_checkpoint(folder: Path, pointer: str = "last") -> Path:
    """The checkpoint folder that ``folder/pointer`` names (its files present; see :func:`verify_checkpoint`)."""
    ptr = folder / pointer
    if not ptr.exists():
        raise CheckpointNotFoundError(f"no checkpoint to resume from: {ptr} does not exist")
    name = ptr.read_text(errors="replace").strip()
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise CheckpointNotFoundError(f"{ptr} does not name a checkpoint folder (it holds {name[:40]!r})")
    path = folder / name
    if not _complete(path):
        raise CheckpointNotFoundError(f"checkpoint {path} is incomplete (model.safetensors or state.pt missing)")
    return path


def verify_checkpoint(path: Path) -> bool:
    """Check every file of the checkpoint folder ``path`` against its manifest: True when verified,
    False when it has no manifest (written before manifests existed; nothing to verify against).
    Raises :class:`CheckpointCorruptError` naming the file, the expected and the found digest (or size)."""
    manifest = path / MANIFEST_NAME
    if not manifest.exists():
        missing = [f for f in CHECKPOINT_FILES if not (path / f).is_file()]
        if missing:
            raise CheckpointNotFoundError(f"checkpoint {path} is incomplete ({', '.join(missing)} missing)")
        return False
    try:
        files = json.loads(manifest.read_text())["files"]
        expected = {f: (str(files[f]["sha256"]), int(files[f]["bytes"])) for f in CHECKPOINT_FILES}
    except (ValueError, KeyError, TypeError) as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        listed = ", ".join(CHECKPOINT_FILES)
        raise CheckpointCorruptError(f"checkpoint {path}: {MANIFEST_NAME} is corrupt (expected JSON listing the "
                                     f"SHA-256 of {listed}; {type(err).__name__}: {err})") from None
    for f, (digest, size) in expected.items():
        file = path / f
        if not file.is_file():
            raise CheckpointCorruptError(f"checkpoint {path}: {f} is missing (the manifest lists it: {size} bytes, "
                                         f"SHA-256 {digest})")
        found_size = file.stat().st_size
        if found_size != size:
            raise CheckpointCorruptError(f"checkpoint {path}: {f} is corrupt: {found_size} bytes, the manifest "
                                         f"recorded {size} (SHA-256 {digest})")
        found = file_digest(file)
        if found != digest:
            raise CheckpointCorruptError(f"checkpoint {path}: {f} is corrupt: SHA-256 {found}, the manifest "
                                         f"recorded {digest}")
    return True


def load_checkpoint(path: Path, module: nn.Module) -> dict[str, Any]:
    """Verify the checkpoint folder ``path`` (:func:`verify_checkpoint`), load its weights into
    ``module`` and return its state dict (never executing code from files).
    :class:`CheckpointCorruptError` for a file that does not verify or cannot be read as what it should
    be (``module`` is then left as it was), :class:`CheckpointMismatchError` for weights of another model."""
    from safetensors import SafetensorError
    from safetensors.torch import load_model

    if not verify_checkpoint(path):
        warnings.warn(f"checkpoint {path} has no {MANIFEST_NAME} (written before checkpoints recorded checksums): "
                      f"loaded without verifying its files", CheckpointWarning, stacklevel=2)
    weights = path / "model.safetensors"
    state = load_state_file(path / "state.pt")  # before the weights: a corrupt file leaves ``module`` as it was
    try:
        missing, unexpected = load_model(module, str(weights), strict=False)
    except SafetensorError as err:
        raise CheckpointCorruptError(f"checkpoint {path}: model.safetensors is not a readable safetensors file "
                                     f"({err})") from None
    except RuntimeError as err:  # load_state_dict: a tensor of another shape
        first = str(err).strip().splitlines()[-1].strip()
        raise CheckpointMismatchError(f"checkpoint {path} does not fit this model: {first}") from None
    if missing or unexpected:
        raise CheckpointMismatchError(f"checkpoint {path} does not fit this model: missing {sorted(missing)[:5]}, "
                                      f"unexpected {sorted(unexpected)[:5]}")
    return state


def load_state_file(file: Path) -> dict[str, Any]:
    """``torch.load(file, weights_only=True)`` of a training state (a dict), its failures as
    :class:`CheckpointCorruptError` naming the file (an ``OSError`` opening it is raised as it is)."""
    import pickle

    with open(file, "rb") as fh:  # an OSError here (permissions, a folder) is not about the content: raised as is
        try:
            state = torch.load(fh, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:  # weights_only refused a global (code, a class), or garbage
            detail = _unpickling_detail(str(err))
            if "global" in detail.lower():
                raise CheckpointCorruptError(f"{file} holds more than plain tensors and numbers and was refused "
                                             f"(never executed): {detail}") from None
            raise CheckpointCorruptError(f"{file} is not a readable torch.save file (UnpicklingError: "
                                         f"{detail})") from None
        except Exception as err:  # noqa: BLE001 - truncated or garbled: zip (an OSError), pickle, storage errors
            first = (str(err).strip().splitlines() or [""])[0].split(". ")[0]
            raise CheckpointCorruptError(f"{file} is not a readable torch.save file "
                                         f"({type(err).__name__}: {first})") from None
    if not isinstance(state, dict):
        raise CheckpointCorruptError(f"{file} holds a {type(state).__name__}, "
                                     f"expected the dict of a training state")
    return state


def _unpickling_detail(message: str) -> str:
    """The line of torch's weights-only refusal that says what was refused (the rest is boilerplate)."""
    boiler = ("Weights only load failed", "Please file an issue", "Check the documentation")
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    detail = [ln for ln in lines if not ln.startswith(boiler)]
    return (detail or lines or ["?"])[0]


def step_checkpoints(folder: Path) -> list[Path]:
    """The complete ``step-*`` checkpoint folders in ``folder``, newest first."""
    if not folder.is_dir():
        return []
    steps = [d for d in folder.iterdir() if d.is_dir() and d.name.startswith("step-") and _complete(d)]
    return sorted(steps, key=lambda d: d.name, reverse=True)


def resume_checkpoint(folder: Path, module: nn.Module, pointer: str = "last",
                      repoint: bool = True) -> tuple[Path, dict[str, Any]]:
    """Load the checkpoint that ``folder/pointer`` names into ``module``; when it does not verify (or is
    incomplete), the newest checkpoint in ``folder`` that does, warning (:class:`CheckpointWarning`)
    which one was skipped and why; ``repoint``: then point ``pointer`` at the one loaded (so that it, not
    the broken one, is named as the last good checkpoint). Returns the folder loaded and its state.
    :class:`CheckpointNotFoundError` when there is no checkpoint, :class:`CheckpointCorruptError` when
    none verifies."""
    try:
        first: Path | None = latest_checkpoint(folder, pointer)
        failures: list[str] = []
    except CheckpointNotFoundError as err:
        if not (folder / pointer).exists():
            raise
        first, failures = None, [str(err)]
    candidates = ([first] if first is not None else []) + [d for d in step_checkpoints(folder) if d != first]
    for path in candidates:
        try:
            state = load_checkpoint(path, module)
        except (CheckpointCorruptError, CheckpointNotFoundError) as err:
            failures.append(str(err))
            continue
        if failures:
            warnings.warn(f"resuming from {path}, the newest checkpoint that verifies; skipped "
                          f"{len(failures)}: {'; '.join(failures)}", CheckpointWarning, stacklevel=2)
            if repoint:
                write_text_atomic(folder / pointer, path.name + "\n")
        return path, state
    raise CheckpointCorruptError(f"no checkpoint in {folder} verifies, nothing to resume from: " + "; ".join(failures))
