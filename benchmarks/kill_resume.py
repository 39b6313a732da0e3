#!/usr/bin/env python
"""Kill a training at random moments, resume it each time, and compare its final weights with an
uninterrupted run's: does resume give bit-identical weights, for every model family of the zoo?

For each model: one uninterrupted run through the CLI (``python -m deepgm.cli train MODEL --dataset
digits --epochs N --checkpoint-every K --out DIR``), then the same run killed with SIGKILL ``--kills`` times
at random moments (seeded) and started again after each kill — with ``--resume`` when a checkpoint
exists, else afresh with ``--overwrite`` — until it finishes. The two runs' final checkpoints
(``checkpoints/last/model.safetensors``) are compared tensor by tensor, bit for bit; the test metrics in
``metrics.json`` are compared too (timings aside).

The kill moments are measured from the line ``training MODEL on DATASET → OUT`` that the CLI prints when
the data are loaded and the model built, i.e. just before the first step. The uninterrupted run tells how
long its training took (``train_seconds`` of its ``metrics.json``, T) and how long the rest (the final
checkpoint, evaluation and figures, E). With probability ``--train-share`` (0.8) a kill aims at the
training: a delay drawn uniformly from [0, min(T·r, 2T/kills)], r being the share of the steps still to
do after the last checkpoint (at least ``--min-share``), so that the kills spread over the whole training;
otherwise at what follows: T·r plus a delay uniform in [0, E/2]. So kills land in steps, checkpoint
writes and the final report alike, however short a tiny model's training is next to its evaluation. A kill
that comes after the process has exited ends the series early (recorded as ``kills_landed``).

Every training runs as its own process with ``OMP_NUM_THREADS=1`` (``--threads``), the deepgm of this
repository (``src`` first on ``PYTHONPATH``) and the python running this script.

    python benchmarks/kill_resume.py                       # one model per family, 20 kills each
    python benchmarks/kill_resume.py --models all          # every model of the zoo
    python benchmarks/kill_resume.py --models vae,dcgan --kills 5
    python benchmarks/kill_resume.py --quick               # 2 models, 3 kills: a smoke test (~1 min)
    python benchmarks/kill_resume.py --report              # the Markdown table of the last results

Results: ``benchmarks/results/kill_resume.json`` (``kill_resume_quick.json`` with ``--quick``): the command
line, git commit, whether the tree was clean, date, machine and load, and per model the kill moments,
the step each kill interrupted, the number of resumes, and whether the final weights are bit-identical.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import _git_dirty, _loadavg, machine_info  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
SRC = REPO / "src"

# one model per family, in this order of preference (the first one the zoo has stands for the family)
REPRESENTATIVES = {"vae": ["vae"], "bound": ["iwae", "iwae2"], "flow": ["realnvp", "maf", "nice"],
                   "gan": ["dcgan", "gan"], "multimodal": ["mvae", "jmvae", "mmvae"], "m2": ["m2"]}
QUICK_MODELS = ["vae", "dcgan"]
START_LINE = "training "  # what the CLI prints just before training starts
TIMING_KEYS = ("train_seconds", "eval_seconds")


def families() -> dict[str, list[str]]:
    """The zoo's models grouped by family: the class of the model each builds (VAE, FlowModel, GAN,
    MultimodalVAE, M2), VAEs with an importance-weighted bound (``k`` in their options) apart."""
    import dataclasses

    sys.path.insert(0, str(SRC))
    from deepgm import zoo
    from deepgm.models import GAN, FlowModel

    groups: dict[str, list[str]] = {}
    for name in zoo.names():
        entry = zoo.get(name)
        model = entry.build(entry.config(), zoo.DataInfo("digits", (1, 8, 8), 10))
        kinds = [c.__name__ for c in type(model).__mro__]
        if isinstance(model, FlowModel):
            family = "flow"
        elif isinstance(model, GAN):
            family = "gan"
        elif "MultimodalVAE" in kinds:
            family = "multimodal"
        elif "M2" in kinds:
            family = "m2"
        elif "k" in {f.name for f in dataclasses.fields(entry.config)}:
            family = "bound"
        else:
            family = "vae"
        groups.setdefault(family, []).append(name)
    return groups


def choose_models(spec: str, groups: dict[str, list[str]]) -> list[tuple[str, str]]:
    """(model, family) pairs for ``--models``: ``families`` (one per family), ``all``, or a comma list."""
    family_of = {m: f for f, ms in groups.items() for m in ms}
    if spec == "all":
        return [(m, family_of[m]) for f in groups for m in groups[f]]
    if spec == "families":
        out = []
        for f, ms in groups.items():
            pick = next((m for m in REPRESENTATIVES.get(f, []) if m in ms), ms[0])
            out.append((pick, f))
        return out
    names = [m.strip() for m in spec.split(",") if m.strip()]
    unknown = [m for m in names if m not in family_of]
    if unknown:
        raise SystemExit(f"kill_resume: unknown model(s) {unknown}; the zoo has {sorted(family_of)}")
    return [(m, family_of[m]) for m in names]


@dataclass
class Settings:
    epochs: int
    checkpoint_every: int
    batch_size: int
    eval_k: int
    seed: int
    threads: int
    kills: int
    min_share: float
    train_share: float
    extra: list[str] = field(default_factory=list)

    def argv(self, model: str, out: Path) -> list[str]:
        return ["-m", "deepgm.cli", "train", model, "--dataset", "digits", "--epochs", str(self.epochs),
                "--checkpoint-every", str(self.checkpoint_every), "--batch-size", str(self.batch_size),
                "--log-every", "1", "--eval-k", str(self.eval_k), "--seed", str(self.seed), "--progress", "false",
                "--out", str(out), *self.extra]


@dataclass
class Attempt:
    """One start of the training process."""

    mode: str  # "fresh", "resume", "overwrite"
    delay_s: float | None  # the planned kill moment after the start line (None: let it finish)
    killed: bool = False
    returncode: int | None = None
    step_before: int | None = None  # the step of checkpoints/last when it started
    step_after: int | None = None  # ... when it ended
    seconds: float = 0.0
    stderr_tail: list[str] = field(default_factory=list)


def _env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])])
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _last_step(out: Path) -> int | None:
    ptr = out / "checkpoints" / "last"
    try:
        return int(ptr.read_text().strip().removeprefix("step-"))
    except (OSError, ValueError):
        return None


def run_once(argv: list[str], env: dict[str, str], delay: float | None, timeout: float, mode: str,
             out: Path) -> tuple[Attempt, float | None]:
    """Start the training, kill its process group with SIGKILL ``delay`` seconds after the start line
    (never when ``delay`` is None); the attempt and the seconds from the start line to the exit."""
    att = Attempt(mode=mode, delay_s=delay, step_before=_last_step(out))
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, *argv], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    started = threading.Event()
    start_at: list[float] = []
    lines: list[str] = []

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line.rstrip("\n"))
            if not started.is_set() and line.startswith(START_LINE):
                start_at.append(time.monotonic())
                started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = t0 + timeout
    while not started.is_set() and proc.poll() is None and time.monotonic() < deadline:
        started.wait(0.05)
    if delay is not None and started.is_set():
        kill_at = start_at[0] + delay
        while proc.poll() is None and time.monotonic() < kill_at:
            time.sleep(min(0.005, max(kill_at - time.monotonic(), 0)))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            att.killed = True
    try:
        proc.wait(timeout=max(deadline - time.monotonic(), 1))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        lines.append(f"kill_resume: timed out after {timeout:.0f} s")
    reader.join(timeout=5)
    end = time.monotonic()
    att.returncode, att.seconds = proc.returncode, round(end - t0, 3)
    att.step_after = _last_step(out)
    att.stderr_tail = lines[-5:]
    return att, (end - start_at[0]) if start_at else None


def final_weights(out: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    ckpts = out / "checkpoints"
    return load_file(str(ckpts / (ckpts / "last").read_text().strip() / "model.safetensors"))


def _bytes(t: Any) -> Any:
    """The tensor's bytes (a NaN equals itself bit for bit, unlike under ``torch.equal`` of floats)."""
    import torch

    return t.contiguous().reshape(-1).view(torch.uint8)


def compare(ref: Path, ours: Path) -> dict[str, Any]:
    """Bitwise comparison of the two runs' final weights, and of their test metrics."""
    import torch

    a, b = final_weights(ref), final_weights(ours)
    same_keys = a.keys() == b.keys()
    differing, max_diff = [], 0.0
    for k in sorted(a.keys() & b.keys()):
        x, y = a[k], b[k]
        same = x.shape == y.shape and x.dtype == y.dtype and torch.equal(_bytes(x), _bytes(y))
        if not same:
            differing.append(k)
            if x.shape == y.shape and x.is_floating_point():
                max_diff = max(max_diff, float((x.double() - y.double()).abs().max()))
    metrics = [json.loads((d / "metrics.json").read_text()) if (d / "metrics.json").exists() else None
               for d in (ref, ours)]
    strip = [{k: v for k, v in m.items() if k not in TIMING_KEYS} if m is not None else None for m in metrics]
    return {"bit_identical": same_keys and not differing, "tensors": len(a), "differing_tensors": differing[:10],
            "n_differing": len(differing), "max_abs_diff": max_diff, "same_tensor_names": same_keys,
            "final_checkpoint": [(d / "checkpoints" / "last").read_text().strip() for d in (ref, ours)],
            "metrics_equal": strip[0] == strip[1] and strip[0] is not None, "metrics": metrics}


def bench_model(model: str, family: str, s: Settings, work: Path, timeout: float) -> dict[str, Any]:
    env = _env(s.threads)
    rng = random.Random(s.seed * 1_000_003 + zlib.crc32(model.encode()))
    ref_out, out = work / f"{model}-reference", work / f"{model}-killed"
    print(f"{model} ({family}): uninterrupted run", flush=True)
    ref, ref_span = run_once(s.argv(model, ref_out), env, None, timeout, "fresh", ref_out)
    result: dict[str, Any] = {"family": family, "command": " ".join(["python", *s.argv(model, Path("OUT"))]),
                              "reference": asdict(ref)}
    if ref.returncode != 0 or ref_span is None:
        result["error"] = f"the uninterrupted run failed (exit {ref.returncode}): {ref.stderr_tail}"
        print(f"  {result['error']}", flush=True)
        return result
    total_steps = _last_step(ref_out) or 1
    ref_metrics = ref_out / "metrics.json"
    train_s = float(json.loads(ref_metrics.read_text()).get("train_seconds", ref_span)) if ref_metrics.exists() \
        else ref_span
    train_s = min(max(train_s, 0.05), ref_span)
    tail_s = max(ref_span - train_s, 0.05)
    attempts: list[Attempt] = []
    t_start = time.monotonic()
    finished = False
    while not finished:
        step = _last_step(out)
        kills_done = sum(a.killed for a in attempts)
        if step is not None:
            mode, extra = "resume", ["--resume"]
        elif out.exists():
            mode, extra = "overwrite", ["--overwrite"]
        else:
            mode, extra = "fresh", []
        delay = None
        if kills_done < s.kills:
            # each kill aims at most 2/kills of the training ahead (so the kills spread over all of it,
            # instead of each one halving what is left), or, with 1 - train_share, past the training
            # into the checkpoint writes and the final report
            left = train_s * max(1.0 - (step or 0) / total_steps, s.min_share)
            aim_training = rng.random() < s.train_share
            delay = round(rng.uniform(0.0, min(left, 2.0 * train_s / s.kills)) if aim_training
                          else left + rng.uniform(0.0, 0.5 * tail_s), 4)
        att, _ = run_once(s.argv(model, out) + extra, env, delay, timeout, mode, out)
        attempts.append(att)
        tag = f"killed after {delay:.2f} s" if att.killed else f"exit {att.returncode}"
        print(f"  {len(attempts):2d}. {mode:9s} from step {att.step_before}  {tag}  (checkpoint: step "
              f"{att.step_after})", flush=True)
        if not att.killed:
            if att.returncode != 0:
                result["error"] = f"a restart failed (exit {att.returncode}): {att.stderr_tail}"
                break
            finished = True
    result.update({
        "kills_planned": s.kills, "kills_landed": sum(a.killed for a in attempts),
        "starts": len(attempts), "resumes": sum(a.mode == "resume" for a in attempts),
        "restarts_from_scratch": sum(a.mode == "overwrite" for a in attempts),
        "steps_interrupted": [a.step_after for a in attempts if a.killed], "total_steps": total_steps,
        "reference_seconds_after_start": round(ref_span, 3), "reference_train_seconds": round(train_s, 3),
        "killed_run_seconds": round(time.monotonic() - t_start, 1),
        "attempts": [asdict(a) for a in attempts],
    })
    if finished:
        result.update(compare(ref_out, out))
        verdict = "bit-identical" if result["bit_identical"] else f"DIFFERENT ({result['n_differing']} tensors)"
        print(f"  final weights: {verdict}; metrics {'equal' if result['metrics_equal'] else 'differ'}", flush=True)
    return result


def report(data: dict[str, Any]) -> str:
    """The results as Markdown: a header of what was run where, and one table row per model."""
    m = data["machine"]
    lines = [f"Kill-and-resume, {m['date']}, deepgm {str(m.get('deepgm_git_commit'))[:10]}"
             f"{' (uncommitted changes)' if data.get('tree_dirty') else ''}, {m['cpu_model']}, "
             f"load {m.get('loadavg_at_start')} → {data.get('loadavg_at_end')}", "",
             f"`{m['command']}`", "",
             "| model | family | kills | resumes | from scratch | steps | final weights | test metrics |",
             "|---|---|---:|---:|---:|---:|---|---|"]
    for name, r in data["models"].items():
        if "bit_identical" not in r:
            lines.append(f"| {name} | {r['family']} | {r.get('kills_landed', '–')} | | | | failed: "
                         f"{str(r.get('error', ''))[:80]} | |")
            continue
        weights = "bit-identical" if r["bit_identical"] else \
            f"differ ({r['n_differing']}/{r['tensors']} tensors, max abs {r['max_abs_diff']:.2g})"
        lines.append(f"| {name} | {r['family']} | {r['kills_landed']}/{r['kills_planned']} | {r['resumes']} | "
                     f"{r['restarts_from_scratch']} | {r['total_steps']} | {weights} | "
                     f"{'equal' if r['metrics_equal'] else 'differ'} |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--models", default="families", help="'families' (one per family), 'all', or a comma list")
    p.add_argument("--kills", type=int, default=20, help="SIGKILLs per model (default 20)")
    p.add_argument("--seed", type=int, default=0, help="seeds the kill moments and the trainings")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--checkpoint-every", type=int, default=5, help="steps between checkpoints (default 5)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--eval-k", type=int, default=5, help="importance samples of the final test NLL (default 5)")
    p.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of every training (default 1)")
    p.add_argument("--min-share", type=float, default=0.1,
                   help="kill within at least this share of the uninterrupted run's time (default 0.1)")
    p.add_argument("--train-share", type=float, default=0.8,
                   help="probability that a kill aims at the training rather than the final report (default 0.8)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds one start may take (default 600)")
    p.add_argument("--work", type=Path, default=None, help="folder for the runs (default: a temporary one)")
    p.add_argument("--keep", action="store_true", help="keep the run folders")
    p.add_argument("--quick", action="store_true", help=f"models {','.join(QUICK_MODELS)}, 3 kills, 2 epochs")
    p.add_argument("--results", type=Path, default=None, help="results JSON (default benchmarks/results/...)")
    p.add_argument("--report", action="store_true", help="print the Markdown table of the results JSON and exit")
    p.add_argument("extra", nargs="*", help="more options for every 'deepgm train' (after --)")
    args = p.parse_args()
    results = args.results or RESULTS / ("kill_resume_quick.json" if args.quick else "kill_resume.json")
    if args.report:
        print(report(json.loads(results.read_text())))
        return 0
    if args.quick:
        args.models, args.kills, args.epochs = ",".join(QUICK_MODELS), 3, 2
    settings = Settings(args.epochs, args.checkpoint_every, args.batch_size, args.eval_k, args.seed, args.threads,
                        args.kills, args.min_share, args.train_share, list(args.extra))
    groups = families()
    chosen = choose_models(args.models, groups)
    work = args.work or Path(tempfile.mkdtemp(prefix="deepgm-kill-resume-"))
    work.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {"machine": machine_info(args.threads, REPO), "tree_dirty": _git_dirty(REPO),
                            "settings": asdict(settings), "families": groups, "models": {}}
    try:
        for model, family in chosen:
            data["models"][model] = bench_model(model, family, settings, work, args.timeout)
    finally:
        data["loadavg_at_end"] = _loadavg()
        results.parent.mkdir(parents=True, exist_ok=True)
        results.write_text(json.dumps(data, indent=1) + "\n")
        if not args.keep and args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print(report(data))
    failed = [m for m, r in data["models"].items() if not r.get("bit_identical")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
