"""Checkpoints: a folder per checkpoint, written whole or not at all.

A checkpoint folder holds ``model.safetensors`` (the weights) and ``state.pt`` (optimiser states, RNG
states, step counters, history; plain tensors and numbers, loaded with ``weights_only=True``). It is
written into a temporary folder and renamed into place; the text file ``last`` (and ``best``) naming the
current folder is replaced atomically after that. A crash at any moment leaves the previous checkpoint
intact and pointed to. Loading never executes code from the files.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["save_checkpoint", "load_checkpoint", "latest_checkpoint", "rng_state", "set_rng_state",
           "write_text_atomic", "CheckpointNotFoundError"]


class CheckpointNotFoundError(FileNotFoundError):
    """No checkpoint where one was asked for."""


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def rng_state() -> dict[str, Any]:
    """The states of torch's, numpy's and Python's global generators, as weights-only-loadable data."""
    np_state = np.random.get_state()
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

    folder.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder, prefix=".tmp-"))
    try:
        save_model(module, str(tmp / "model.safetensors"))
        torch.save(state, tmp / "state.pt")
        target = folder / name
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
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
    return torch.load(path / "state.pt", map_location="cpu", weights_only=True)
