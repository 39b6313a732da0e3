"""Checkpoints: a folder per checkpoint, written whole or not at all.

A checkpoint folder holds ``model.safetensors`` (the weights) and ``state.pt`` (optimiser states, RNG
states, step counters, history; plain tensors and numbers, loaded with ``weights_only=True``). It is
written into a temporary folder and renamed into place; the text file ``last`` (and ``best``) naming the
current folder is replaced atomically after that (both through :mod:`deepgm.io`). A crash at any moment
leaves the previous checkpoint intact and pointed to. Loading never executes code from the files.

A run owns its checkpoint folder: :func:`hold_folder` takes an exclusive lock on ``folder/.lock`` for the
run's duration (released by the kernel if the process dies, so a killed run never leaves a stale lock),
and, once it has it, removes the temporaries that killed writers left behind (``.tmp-*`` folders,
``.*.tmp`` files): with the lock held no live process can be writing them.
"""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from deepgm.io import atomic_folder, remove_stale_temporaries, write_text_atomic

__all__ = ["save_checkpoint", "load_checkpoint", "latest_checkpoint", "rng_state", "set_rng_state",
           "hold_folder", "CheckpointNotFoundError", "CheckpointFolderBusyError"]

LOCK_NAME = ".lock"


class CheckpointNotFoundError(FileNotFoundError):
    """No checkpoint where one was asked for."""


class CheckpointFolderBusyError(RuntimeError):
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


def latest_checkpoint(folder: Path, pointer: str = "last") -> Path:
    """The checkpoint folder that ``folder/pointer`` names."""
    ptr = folder / pointer
    if not ptr.exists():
        raise CheckpointNotFoundError(f"no checkpoint to resume from: {ptr} does not exist")
    path = folder / ptr.read_text().strip()
    if not (path / "state.pt").exists() or not (path / "model.safetensors").exists():
        raise CheckpointNotFoundError(f"checkpoint {path} is incomplete (model.safetensors or state.pt missing)")
    return path


def load_checkpoint(path: Path, module: nn.Module) -> dict[str, Any]:
    """Load the weights into ``module`` and return the state dict (never executing code from files)."""
    from safetensors.torch import load_model

    missing, unexpected = load_model(module, str(path / "model.safetensors"), strict=False)
    if missing or unexpected:
        raise ValueError(f"checkpoint {path} does not fit this model: missing {sorted(missing)[:5]}, "
                         f"unexpected {sorted(unexpected)[:5]}")
    state: dict[str, Any] = torch.load(path / "state.pt", map_location="cpu", weights_only=True)
    return state
