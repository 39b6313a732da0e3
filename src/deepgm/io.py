"""Files written whole or not at all: a temporary beside the target, then a rename.

The lowest layer (next to :mod:`deepgm.errors`): models, training and the CLI write through it. A file is
written to ``.<name>.<random>.tmp`` in the target's folder, flushed to disk and renamed over the target;
a folder is filled as ``.tmp-<random>/`` and renamed into place. A reader therefore sees the old content
or the new, never half of it. A process killed mid-write leaves its temporary behind (only the rename is
atomic); :func:`remove_stale_temporaries` deletes them, and the trainer calls it at the start of every run
while it holds the checkpoint folder's lock (so no live writer can own them). :func:`file_digest` is the
checksum that checkpoint manifests record of their files.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = write_text_atomic(d / "last", "step-1\\n")
>>> (d / "last").read_text()
'step-1\\n'
>>> sorted(p.name for p in d.iterdir())
['last']
>>> file_digest(d / "last")[:16]  # SHA-256 of the file's bytes
'0020eb0460d3f13c'
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import torch

__all__ = ["atomic_write", "write_text_atomic", "save_atomic", "atomic_folder", "remove_stale_temporaries",
           "file_digest", "TEMP_FOLDER_PREFIX", "TEMP_FILE_SUFFIX"]

TEMP_FOLDER_PREFIX = ".tmp-"  # temporary folders: ``.tmp-<random>``
TEMP_FILE_SUFFIX = ".tmp"  # temporary files: ``.<name>.<random>.tmp``

PathLike = str | os.PathLike[str]


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: PathLike, write: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``write(fh)`` on a temporary binary file beside ``path``, sync it, rename it to ``path``.

    On any error (or interrupt) the temporary is removed and ``path`` keeps its previous content."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_FILE_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def write_text_atomic(path: PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))


def save_atomic(obj: Any, path: PathLike) -> Path:
    """``torch.save(obj)`` to ``path`` atomically."""
    return atomic_write(path, lambda fh: torch.save(obj, fh))


@contextmanager
def atomic_folder(target: PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``target``; when the block ends without error it becomes
    ``target`` (replacing a previous one), else it is removed and ``target`` is left as it was."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=TEMP_FOLDER_PREFIX))
    aside: Path | None = None
    try:
        yield tmp
        if target.exists():  # set the old one aside (a rename), so target is never missing for long
            aside = Path(tempfile.mkdtemp(dir=target.parent, prefix=TEMP_FOLDER_PREFIX)) / target.name
            os.replace(target, aside)
        os.replace(tmp, target)
    except BaseException:
        if aside is not None and aside.exists() and not target.exists():
            os.replace(aside, target)  # put the old one back
        shutil.rmtree(tmp, ignore_errors=True)
        if aside is not None:
            shutil.rmtree(aside.parent, ignore_errors=True)
        raise
    if aside is not None:
        shutil.rmtree(aside.parent, ignore_errors=True)
    _fsync_dir(target.parent)


def remove_stale_temporaries(folder: PathLike) -> list[Path]:
    """Delete the temporaries that interrupted writes left in ``folder`` (``.tmp-*`` folders and
    ``.*.tmp`` files, not recursively); returns what was removed.

    Only call it while no other process writes into ``folder`` (the trainer holds the folder's lock)."""
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for p in sorted(folder.iterdir()):
        if p.is_dir() and not p.is_symlink() and p.name.startswith(TEMP_FOLDER_PREFIX):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
        elif p.is_file() and p.name.startswith(".") and p.name.endswith(TEMP_FILE_SUFFIX):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def file_digest(path: PathLike) -> str:
    """The SHA-256 of the file at ``path``, in hex (read in chunks: any size)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
