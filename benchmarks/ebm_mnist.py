#!/usr/bin/env python
"""Energy-based models on MNIST: the zoo's EBM (an MLP energy trained by PCD with a replay buffer) and JEM
(a classifier read as an energy model), each at its defaults for a CPU budget; the MNIST-FID of their
Langevin samples (the library's classifier features), and JEM's test accuracy and calibration (ECE).

Data: MNIST grey levels in [0, 1] (``deepgm.data.load_splits("mnist")``: 60,000 training images minus the
validation split; the 10,000 test images for every test figure). Each model is
``zoo.get(name).build(defaults)`` trained with its own optimiser in batches of ``--batch`` images (with
their labels) for ``--seconds`` of step time on ``--threads`` threads, then ``model.evaluate(test)`` — which
names its sample-based estimators — and ``model.figures`` (sample grids, written next to the results).
Results: ``benchmarks/results/ebm_mnist.json`` and ``.md`` (command, commit, dirty flag, date, load).

    .venv/bin/python benchmarks/ebm_mnist.py --data-dir /work/shared/data/mnist    # ~2 × 5 min + evaluation
    .venv/bin/python benchmarks/ebm_mnist.py --smoke                               # seconds: ebm_mnist_smoke.*
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import machine_info  # noqa: E402

from deepgm import zoo  # noqa: E402
from deepgm.data import load_splits  # noqa: E402
from deepgm.io import write_text_atomic  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
SMOKE_OPTIONS: dict[str, dict[str, Any]] = {"ebm": {"hidden": (32,), "mcmc_steps": 5, "sample_steps": 10},
                                            "jem": {}}


def _scalars(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if isinstance(v, (int, float, str, bool)) or v is None}


def run(name: str, data: Any, args: argparse.Namespace) -> dict[str, Any]:
    entry = zoo.get(name)
    cfg = entry.config(**(SMOKE_OPTIONS.get(name, {}) if args.smoke else {}))
    torch.manual_seed(args.seed)
    model = entry.build(cfg, data.info)
    train = data.train
    g = torch.Generator().manual_seed(args.seed)
    spent, times, losses = 0.0, [], []
    while spent < args.seconds:
        idx = torch.randint(0, len(train["x"]), (args.batch,), generator=g)
        batch = {k: v[idx] for k, v in train.items()}
        start = time.perf_counter()
        losses.append(float(model.train_step(batch)))
        dt = time.perf_counter() - start
        spent += dt
        times.append(dt)
    torch.manual_seed(args.seed)
    start = time.perf_counter()
    test = {k: v[: args.test_images] for k, v in data.test.items()}
    scores = model.evaluate(test, info=data.info)
    eval_s = time.perf_counter() - start
    fig_dir = RESULTS / f"{args.stem}_{name}"
    figures = [str(p.relative_to(REPO)) for p in model.figures(fig_dir, test, data.info)]
    tail = losses[-50:]
    row = {"model": name, "config": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__},
           "parameters": sum(p.numel() for p in model.parameters()), "steps": len(times),
           "train_seconds": round(spent, 1), "median_step_seconds": statistics.median(times),
           "train_loss_last50_mean": sum(tail) / len(tail), "eval_seconds": round(eval_s, 1),
           "test": _scalars(scores), "figures": figures}
    print(name, json.dumps(row, default=str), flush=True)
    return row


def _fmt(v: Any, spec: str = ".3f") -> str:
    return format(v, spec) if isinstance(v, float) else ("–" if v is None else str(v))


def _markdown(result: dict[str, Any]) -> str:
    m, s = result["machine"], result["setup"]
    lines = ["# Energy-based models on MNIST", "",
             f"`{m['command']}` — commit `{m['deepgm_git_commit']}`, uncommitted changes in src: "
             f"{m['deepgm_src_uncommitted_changes']}, {m['date']}, load at start {m['loadavg_at_start']}, at end "
             f"{result['loadavg_at_end']}", "",
             f"MNIST grey levels in [0, 1]; {s['seconds']} s of training steps per model on {s['threads']} thread(s), "
             f"batch {s['batch']}, zoo defaults; test figures on {s['test_images']} test images.", "",
             "| model | parameters | steps | s/step | MNIST-FID of samples | MNIST-IS | samples scored | test accuracy "
             "| ECE |", "|---|---|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        t = row["test"]
        lines.append(f"| {row['model']} | {row['parameters']:,} | {row['steps']} | {row['median_step_seconds']:.4f} | "
                     f"{_fmt(t.get('mnist_fid'), '.2f')} | {_fmt(t.get('mnist_is'), '.2f')} | {_fmt(t.get('samples'))} "
                     f"| {_fmt(t.get('test_accuracy'), '.4f')} | {_fmt(t.get('test_ece'), '.4f')} |")
    lines += ["", "Every figure is `model.evaluate`'s (MNIST-FID on as many draws as test images it compares, at most "
              "1,000: higher than a 10,000-sample FID); its estimators as it names them:", ""]
    for row in result["rows"]:
        named = {k: v for k, v in row["test"].items() if isinstance(v, str)}
        lines.append(f"- {row['model']}: " + "; ".join(f"{k}: {v}" for k, v in named.items()))
    lines += ["", "Figures: " + ", ".join(f for row in result["rows"] for f in row["figures"])]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=os.environ.get("DEEPGM_DATA"))
    p.add_argument("--models", default="ebm,jem")
    p.add_argument("--seconds", type=float, default=300.0, help="training step seconds per model")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--test-images", type=int, default=10000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--smoke", action="store_true", help="tiny budgets: ebm_mnist_smoke.*")
    args = p.parse_args()
    if args.smoke:
        args.seconds, args.test_images = 3.0, 500
    args.stem = "ebm_mnist_smoke" if args.smoke else "ebm_mnist"
    torch.set_num_threads(args.threads)
    machine = machine_info(torch.get_num_threads(), REPO)
    data = load_splits("mnist", args.data_dir)
    rows = [run(name, data, args) for name in args.models.split(",")]
    result = {"machine": machine, "loadavg_at_end": [round(v, 2) for v in os.getloadavg()],
              "setup": {"dataset": "mnist (grey levels in [0, 1])", "seconds": args.seconds, "batch": args.batch,
                        "threads": torch.get_num_threads(), "test_images": args.test_images, "seed": args.seed,
                        "smoke": args.smoke},
              "rows": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_text_atomic(RESULTS / f"{args.stem}.json", json.dumps(result, indent=2, default=str) + "\n")
    md = _markdown(result)
    write_text_atomic(RESULTS / f"{args.stem}.md", md)
    print(md)


if __name__ == "__main__":
    main()
