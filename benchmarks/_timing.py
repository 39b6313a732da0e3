"""Small timing helpers shared by the benchmarks: interleaved rounds, robust statistics, machine info."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path


@dataclass
class Runner:
    """One timed implementation: ``step()`` performs one full training step and returns its loss."""

    key: str
    step: Callable[[], float]
    warmup: int = 5
    per_step: list[float] = field(default_factory=list)  # seconds/step, one entry per round


def quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile of ``values`` (``q`` in [0, 1])."""
    xs = sorted(values)
    if not xs:
        return float("nan")
    pos = q * (len(xs) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def summarize(per_step: Sequence[float]) -> dict[str, float]:
    """Median, quartiles and IQR (seconds/step) over rounds."""
    q1, q3 = quantile(per_step, 0.25), quantile(per_step, 0.75)
    return {
        "median_s": statistics.median(per_step),
        "q1_s": q1,
        "q3_s": q3,
        "iqr_s": q3 - q1,
        "min_s": min(per_step),
        "rounds": len(per_step),
    }


@dataclass
class RoundLog:
    """What happened in the timed rounds: other processes' CPU share per kept round, rounds redone."""

    others_cpu: list[float | None] = field(default_factory=list)
    discarded_others_cpu: list[float] = field(default_factory=list)


def run_interleaved(
    runners: Sequence[Runner],
    rounds: int,
    steps: int,
    max_others: float = 0.2,
    max_redo: int | None = None,
    on_disturbed: Callable[[], object] | None = None,
) -> RoundLog:
    """Time ``runners`` in ``rounds`` rounds of ``steps`` back-to-back steps each.

    In round ``r`` the runners go in the order of the list rotated by ``r``, so that slow drifts of the
    machine (thermal, other load) touch every implementation alike. Each runner's per-step time of a round
    is appended to ``runner.per_step``. Warm-up steps (``runner.warmup``) are run first, in list order.

    A round during which *other* processes used more than ``max_others`` of the machine's CPU time is
    thrown away and redone (at most ``max_redo`` times in all, default ``rounds``): on a small machine a
    concurrent job slows every thread-parallel kernel by far more than its share. ``on_disturbed`` is
    called before a redo (e.g. to wait for the machine to become idle again).
    """
    for runner in runners:
        for _ in range(runner.warmup):
            runner.step()
    n = len(runners)
    redo_left = rounds if max_redo is None else max_redo
    log = RoundLog()
    r = 0
    while r < rounds:
        order = [runners[(i + r) % n] for i in range(n)]
        start = _cpu_times(), _self_ticks()
        times: list[float] = []
        for runner in order:
            step = runner.step
            t0 = time.perf_counter()
            for _ in range(steps):
                step()
            times.append((time.perf_counter() - t0) / steps)
        others = _others_fraction(start, (_cpu_times(), _self_ticks()))
        if others is not None and others > max_others and redo_left > 0:
            redo_left -= 1
            log.discarded_others_cpu.append(others)
            print(f"    round {r} redone: other processes used {others:.0%} of the CPUs", flush=True)
            if on_disturbed is not None:
                on_disturbed()
            continue
        for runner, t in zip(order, times, strict=True):
            runner.per_step.append(t)
        log.others_cpu.append(others)
        r += 1
    return log


def _self_ticks() -> int | None:
    """CPU ticks (user + system, all threads) used so far by this process."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[11]) + int(fields[12])  # utime, stime


def _others_fraction(
    a: tuple[tuple[int, int] | None, int | None], b: tuple[tuple[int, int] | None, int | None]
) -> float | None:
    (ta, ma), (tb, mb) = a, b
    if ta is None or tb is None or ma is None or mb is None or tb[0] == ta[0]:
        return None
    busy = (tb[0] - ta[0]) - (tb[1] - ta[1])
    return max(0.0, (busy - (mb - ma)) / (tb[0] - ta[0]))


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _git(path: Path, *args: str) -> subprocess.CompletedProcess[str] | None:
    """``git -C path ARGS``, or None when git cannot be run."""
    try:
        return subprocess.run(["git", "-C", str(path), *args], check=False, capture_output=True, text=True,
                              timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None


def _git_commit(repo: Path) -> str | None:
    out = _git(repo, "rev-parse", "HEAD")
    return (out.stdout.strip() or None) if out is not None else None


def _git_dirty(path: Path) -> bool | None:
    """Whether the working tree under ``path`` differs from HEAD (the benchmark measures the tree)."""
    out = _git(path, "status", "--porcelain", "--", ".")
    return bool(out.stdout.strip()) if out is not None and out.returncode == 0 else None


def machine_info(threads: int, repo: Path) -> dict[str, object]:
    """What the numbers were measured on: CPU, thread count, library versions, date, command line."""
    import torch

    return {
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv]),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": threads,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "pyro-ppl": _version("pyro-ppl"),
        "pixyz": _version("pixyz"),
        "deepgm": _version("deepgm"),
        "deepgm_git_commit": _git_commit(repo),
        "deepgm_src_uncommitted_changes": _git_dirty(repo / "src"),
        "loadavg_at_start": _loadavg(),
    }


def _loadavg() -> list[float] | None:
    """1/5/15-minute load averages: other work on the machine during a run shows here."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def _cpu_times() -> tuple[int, int] | None:
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return None
    values = [int(v) for v in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values), idle


def cpu_busy_fraction(interval: float = 1.0) -> float | None:
    """Fraction of all CPUs' time spent busy over ``interval`` seconds (from /proc/stat), or None."""
    a = _cpu_times()
    time.sleep(interval)
    b = _cpu_times()
    if a is None or b is None or b[0] == a[0]:
        return None
    return 1.0 - (b[1] - a[1]) / (b[0] - a[0])


def wait_until_idle(max_wait_s: float, threshold: float = 0.15, quiet: bool = False) -> float | None:
    """Wait (at most ``max_wait_s``) until other processes leave the CPUs mostly idle; returns the last
    busy fraction seen. Timings taken while another job runs on a 2-core machine are meaningless."""
    deadline = time.monotonic() + max_wait_s
    busy = cpu_busy_fraction()
    while busy is not None and busy > threshold and time.monotonic() < deadline:
        if not quiet:
            print(f"  machine busy ({busy:.0%} CPU in use by others), waiting...", file=sys.stderr, flush=True)
        time.sleep(10)
        busy = cpu_busy_fraction()
    return busy
