"""Finding dataset files on disk, and fetching them from mirrors with checksum verification.

Search order for a dataset called ``<name>`` (for example ``"mnist"``):

1. the explicit ``data_dir`` argument, if given;
2. every folder listed in the ``DEEPGM_DATA`` environment variable (``os.pathsep``-separated);
3. the cache ``~/.cache/deepgm``.

Each of these *roots* is tried as-is and with the dataset's sub-folders appended
(``<root>/mnist``, ``<root>/MNIST/raw``, ...). The first folder holding every needed file wins.
Files may be stored gzipped (``name.gz``) or raw (``name``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "DATA_ENV_VAR",
    "DatasetNotFoundError",
    "FileSpec",
    "cache_dir",
    "candidate_dirs",
    "download_files",
    "file_md5",
    "locate_files",
]

DATA_ENV_VAR = "DEEPGM_DATA"


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are not on disk (and could not, or were not allowed to, be downloaded)."""


@dataclass(frozen=True)
class FileSpec:
    """Where a file-backed dataset lives and how to fetch it.

    ``files`` are the uncompressed file names; ``md5`` maps the *gzipped* names served by the
    ``mirrors`` to their md5 hex digest (``None`` where unknown: the download is then unchecked).
    ``validate`` may inspect a candidate folder's files and return a reason to skip it.
    """

    name: str
    title: str
    files: tuple[str, ...]
    subdirs: tuple[str, ...] = ()
    mirrors: tuple[str, ...] = ()
    md5: Mapping[str, str | None] = field(default_factory=dict)
    validate: Callable[[Mapping[str, Path]], str | None] | None = None


def cache_dir(name: str | None = None) -> Path:
    """The download cache, ``~/.cache/deepgm`` (or ``~/.cache/deepgm/<name>``)."""
    root = Path.home() / ".cache" / "deepgm"
    return root / name if name else root


def _env_roots() -> list[Path]:
    value = os.environ.get(DATA_ENV_VAR, "")
    return [Path(p).expanduser() for p in value.split(os.pathsep) if p.strip()]


def candidate_dirs(spec: FileSpec, data_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """Every folder searched for ``spec``'s files, in search order, without duplicates."""
    roots: list[Path] = []
    if data_dir is not None:
        roots.append(Path(data_dir).expanduser())
    roots.extend(_env_roots())
    out: list[Path] = []
    for root in roots:
        out.append(root)
        out.extend(root / sub for sub in spec.subdirs)
    out.append(cache_dir(spec.name))
    seen: set[str] = set()
    unique = []
    for folder in out:
        key = os.path.normpath(str(folder))
        if key not in seen:
            seen.add(key)
            unique.append(folder)
    return unique


def _find_in(folder: Path, names: Sequence[str]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for name in names:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                found[name] = candidate
                break
    return found


def file_md5(path: str | os.PathLike[str]) -> str:
    """Hex md5 digest of a file, read in 1 MiB chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_files(spec: FileSpec, names: Sequence[str], dest: Path, timeout: float = 30.0) -> list[str]:
    """Fetch ``<name>.gz`` for each name from the first mirror that serves it, into ``dest``.

    Each file is written to a ``.part`` file, its md5 compared with ``spec.md5`` (when known),
    then renamed into place. Returns the list of failures (empty when everything arrived).
    """
    dest.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    for name in names:
        gz_name = f"{name}.gz"
        expected = spec.md5.get(gz_name)
        target = dest / gz_name
        part = dest / f"{gz_name}.part"
        attempts: list[str] = []
        for mirror in spec.mirrors:
            url = mirror.rstrip("/") + "/" + gz_name
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as fh:
                    shutil.copyfileobj(response, fh)
            except (OSError, ValueError) as err:  # URLError, HTTPError, timeouts are OSErrors
                attempts.append(f"{url}: {err}")
                part.unlink(missing_ok=True)
                continue
            if expected is not None:
                got = file_md5(part)
                if got != expected:
                    attempts.append(f"{url}: md5 mismatch (got {got}, expected {expected})")
                    part.unlink(missing_ok=True)
                    continue
            os.replace(part, target)
            break
        else:
            errors.extend(attempts or [f"{gz_name}: no mirror configured"])
    return errors


def _not_found_message(
    spec: FileSpec,
    missing: Sequence[str],
    searched: Sequence[Path],
    skipped: Mapping[Path, str],
    download_errors: Sequence[str],
    download: bool,
) -> str:
    lines = [
        f"{spec.title} files not found.",
        "Missing files (each may be gzipped, '.gz'): " + ", ".join(missing),
        "Folders searched, in order:",
    ]
    for folder in searched:
        note = "" if folder.is_dir() else "  (does not exist)"
        if folder in skipped:
            note = f"  (skipped: {skipped[folder]})"
        lines.append(f"  {folder}{note}")
    lines.append(
        f"Put the files in {cache_dir(spec.name)}, or in a folder named by the {DATA_ENV_VAR} "
        f"environment variable (directly or in a '{spec.subdirs[0] if spec.subdirs else spec.name}' "
        "sub-folder), or pass data_dir=..."
    )
    if download_errors:
        lines.append("Download failed:")
        lines.extend(f"  {err}" for err in download_errors)
    elif not download and spec.mirrors:
        lines.append("Or pass download=True to fetch them from: " + ", ".join(spec.mirrors))
    return "\n".join(lines)


def locate_files(
    spec: FileSpec,
    names: Sequence[str],
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = False,
) -> dict[str, Path]:
    """Find ``names`` (a subset of ``spec.files``) in the first folder holding all of them.

    If none does and ``download`` is true, fetch the missing ones into ``cache_dir(spec.name)``.
    Raises :class:`DatasetNotFoundError` naming the missing files and the folders searched.
    """
    searched = candidate_dirs(spec, data_dir)
    skipped: dict[Path, str] = {}
    best: dict[str, Path] = {}
    for folder in searched:
        found = _find_in(folder, names)
        if len(found) == len(names):
            reason = spec.validate(found) if spec.validate is not None else None
            if reason is None:
                return found
            skipped[folder] = reason
            continue
        if len(found) > len(best):
            best = found
    missing = [n for n in names if n not in best]
    download_errors: list[str] = []
    if download and spec.mirrors:
        dest = cache_dir(spec.name)
        already = _find_in(dest, names)
        download_errors = download_files(spec, [n for n in names if n not in already], dest)
        found = _find_in(dest, names)
        if not download_errors and len(found) == len(names):
            return found
        missing = [n for n in names if n not in found]
    raise DatasetNotFoundError(_not_found_message(spec, missing, searched, skipped, download_errors, download))
