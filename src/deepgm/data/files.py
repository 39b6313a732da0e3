"""Finding dataset files on disk, and fetching them from mirrors with checksum verification.

Where the files of a dataset called ``<name>`` (for example ``"mnist"``) are looked for:

* an explicit ``data_dir`` (``--data-dir`` on the command line) is used or refused: only it and its
  sub-folders are searched, and when they lack the files :class:`DatasetNotFoundError` says so in one line
  naming the folder and the files expected. Nothing else is substituted for it;
* with no ``data_dir``: every folder listed in the ``DEEPGM_DATA`` environment variable
  (``os.pathsep``-separated), then the cache ``~/.cache/deepgm/<name>``.

Each *root* is tried as-is and with the dataset's sub-folders appended (``<root>/mnist``,
``<root>/MNIST/raw``, ...). The first folder holding every needed file wins. Files may be stored gzipped
(``name.gz``) or raw (``name``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from deepgm.errors import DeepGMError

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


class DatasetNotFoundError(DeepGMError, FileNotFoundError):
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
    """Every folder searched for ``spec``'s files, in search order, without duplicates: ``data_dir`` and
    its sub-folders when it is given, else those of ``$DEEPGM_DATA`` and then the cache."""
    roots = [Path(data_dir).expanduser()] if data_dir is not None else _env_roots()
    out: list[Path] = []
    for root in roots:
        out.append(root)
        out.extend(root / sub for sub in spec.subdirs)
    if data_dir is None:
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


def _explicit_message(
    spec: FileSpec,
    data_dir: Path,
    names: Sequence[str],
    missing: Sequence[str],
    searched: Sequence[Path],
    skipped: Mapping[Path, str],
    download_errors: Sequence[str],
) -> str:
    """One line: the folder given, what it lacks, and where in it the files were looked for."""
    expected = ", ".join(names)
    subs = ", ".join(spec.subdirs)
    if data_dir.exists() and not data_dir.is_dir():
        return f"{spec.title} data folder {data_dir} is not a folder; expected a folder holding {expected}"
    if not data_dir.exists():
        where = f" (or one of its sub-folders {subs})" if subs else ""
        return (f"{spec.title} data folder {data_dir} does not exist; expected it{where} to hold {expected} "
                "(each may be gzipped, '.gz')")
    text = (f"{spec.title} files not found in the data folder {data_dir}: missing {', '.join(missing)} "
            f"(each may be gzipped, '.gz'); looked in " + ", ".join(str(f) for f in searched))
    if skipped:
        text += "; " + "; ".join(f"{folder} (skipped: {why})" for folder, why in skipped.items())
    if download_errors:
        text += "; download failed: " + "; ".join(download_errors)
    return text + f" (a folder given is used as it is: ${DATA_ENV_VAR} and the cache are searched only without one)"


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
        "sub-folder), or give their folder explicitly (data_dir=..., or --data-dir on the command line)"
    )
    if download_errors:
        lines.append("Download failed:")
        lines.extend(f"  {err}" for err in download_errors)
    elif not download and spec.mirrors:
        lines.append("The files are published at: " + ", ".join(spec.mirrors))
    return "\n".join(lines)


def locate_files(
    spec: FileSpec,
    names: Sequence[str],
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = False,
) -> dict[str, Path]:
    """Find ``names`` (a subset of ``spec.files``) in the first folder holding all of them.

    A ``data_dir`` given is used or refused (only it and its sub-folders are searched; see the module
    docstring). If no folder holds the files and ``download`` is true, the missing ones are fetched into
    ``data_dir`` when given, else into ``cache_dir(spec.name)``. Raises :class:`DatasetNotFoundError`
    naming the missing files and the folders searched.
    """
    explicit = None if data_dir is None else Path(data_dir).expanduser()
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
    if download and spec.mirrors and (explicit is None or not explicit.exists() or explicit.is_dir()):
        dest = cache_dir(spec.name) if explicit is None else explicit
        already = _find_in(dest, names)
        download_errors = download_files(spec, [n for n in names if n not in already], dest)
        found = _find_in(dest, names)
        if not download_errors and len(found) == len(names):
            return found
        missing = [n for n in names if n not in found]
    if explicit is not None:
        raise DatasetNotFoundError(
            _explicit_message(spec, explicit, names, missing, searched, skipped, download_errors))
    raise DatasetNotFoundError(_not_found_message(spec, missing, searched, skipped, download_errors, download))
