#!/usr/bin/env python
"""The generative query network on the ray-cast rooms (``scenes-32``): deepgm's ``gqn`` against its
deterministic baseline ``gqn-deterministic`` at a CPU budget.

Both train with deepgm's :class:`~deepgm.training.Trainer` on the same ``--train-scenes`` training scenes
of ``--views`` views (batches of ``--batch`` scenes, ``--steps`` optimiser steps each, Adam at ``--lr``; every
batch draws its number of context views ``k ~ U{1..5}`` and, per scene, which views are context and which the
query). The GQN's likelihood σ is annealed from 2.0 to 0.7 over ``--anneal-steps``. Then, on the first
``--test-scenes`` test scenes, with the query the last view of each scene and the context its first ``k``
views (k = 1, 3, 5; the same scenes and query views for every k), each model's own ``evaluate``:

* ``test_mse_k{k}``: squared error of one rendered query view (the GQN draws it from its prior), averaged
  over scenes and the 3·32·32 colour values; ``test_mse_mean8_k{k}``: of the average of 8 renders;
* for the GQN, ``test_bits_per_pixel_k{k}``: the negative ELBO of the query image in nats (a Gaussian
  density of values in [0, 1] at σ = 0.7) averaged over scenes, divided by 3·32·32·ln 2 (per colour
  value), and ``test_kl_k{k}`` (nats per image). The baseline has no ELBO: squared errors only.

Figures: ``benchmarks/results/gqn_query_views.png`` and ``gqn_deterministic_query_views.png`` (rows: 3
context views, the rendered query views, the true one). Results: ``benchmarks/results/gqn.json`` and
``.md``, recording the command, git commit, whether ``src/`` had uncommitted changes, the date and the
machine's load.

    .venv/bin/python benchmarks/gqn.py            # the full run: about 15 minutes on 2 cores
    .venv/bin/python benchmarks/gqn.py --smoke    # a smoke test of the same code (seconds; writes gqn_smoke.*)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import machine_info  # noqa: E402

import deepgm.zoo.gqn  # noqa: E402, F401  (registers gqn and gqn-deterministic)
from deepgm import zoo  # noqa: E402
from deepgm.data import DataInfo, load_dataset  # noqa: E402
from deepgm.io import write_text_atomic  # noqa: E402
from deepgm.training import Trainer, TrainerConfig  # noqa: E402
from deepgm.zoo.gqn import GQNConfig  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
SIZES = {k: getattr(GQNConfig(), k) for k in ("r_channels", "h_channels", "u_channels", "steps", "kernel",
                                             "max_context")}  # the defaults, recorded
CONTEXTS = (1, 3, 5)


def _train(name: str, options: dict[str, Any], info: DataInfo, train: dict[str, torch.Tensor],
           args: argparse.Namespace, folder: Path) -> tuple[Any, dict[str, Any]]:
    """Build ``name`` and train it for ``args.steps`` steps; the model and what the training took."""
    entry = zoo.get(name)
    fields = {f.name for f in dataclasses.fields(entry.config)}
    cfg = entry.config(**{k: v for k, v in options.items() if k in fields})
    torch.manual_seed(args.seed)
    model = entry.build(cfg, info)
    per_epoch = len(train["x"]) // args.batch
    tr = TrainerConfig(epochs=math.ceil(args.steps / per_epoch) + 1, max_steps=args.steps, batch_size=args.batch,
                       seed=args.seed, out_dir=folder / name, log_every=max(1, args.steps // 50),
                       checkpoint_every=args.steps, progress=False)
    start = time.perf_counter()
    history = Trainer(model, train, tr).fit()
    seconds = time.perf_counter() - start
    tail = history["loss"][-5:]
    return model, {"model": name, "config": {k: getattr(cfg, k) for k in sorted(fields)}, "steps": model.steps,
                   "train_seconds": round(seconds, 1), "seconds_per_step": round(seconds / max(1, model.steps), 4),
                   "train_loss_first": history["loss"][0], "train_loss_last5_mean": sum(tail) / len(tail),
                   "loss_curve": list(zip(history["step"], [round(v, 2) for v in history["loss"]], strict=True))}


def _verdict(metrics: dict[str, Any], key: str) -> str:
    values = [metrics[f"{key}_k{k}"] for k in CONTEXTS]
    if values[0] > values[1] > values[2]:
        return f"{key} falls with more context ({' > '.join(f'{v:.4g}' for v in values)})"
    return f"{key} does NOT fall steadily with more context at this budget ({', '.join(f'{v:.4g}' for v in values)})"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--train-scenes", type=int, default=2000)
    p.add_argument("--test-scenes", type=int, default=200)
    p.add_argument("--views", type=int, default=10)
    p.add_argument("--steps", type=int, default=3000, help="optimiser steps of each model")
    p.add_argument("--anneal-steps", type=int, default=2000)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--smoke", action="store_true", help="tiny sizes: checks that the code runs (gqn_smoke.*)")
    args = p.parse_args()
    if args.smoke:
        args.train_scenes, args.test_scenes, args.steps, args.anneal_steps, args.batch = 16, 8, 4, 2, 8
    torch.set_num_threads(args.threads)
    machine = machine_info(torch.get_num_threads(), REPO)
    stem = "gqn_smoke" if args.smoke else "gqn"
    train = load_dataset("scenes-32", "train", n_samples=args.train_scenes, views=args.views).batch()  # type: ignore[attr-defined]
    test = load_dataset("scenes-32", "test", n_samples=args.test_scenes, views=args.views).batch()  # type: ignore[attr-defined]
    info = DataInfo("scenes-32", tuple(train["x"].shape[1:]), None, binary=False)
    options = {**SIZES, "lr": args.lr, "z_channels": 4, "sigma_start": 2.0, "sigma_end": 0.7,
               "anneal_steps": args.anneal_steps}
    rows = []
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("gqn", "gqn-deterministic"):
            model, row = _train(name, options, info, train, args, Path(tmp))
            torch.manual_seed(args.seed + 1)
            start = time.perf_counter()
            row["test"] = model.evaluate(test, contexts=CONTEXTS)
            row["eval_seconds"] = round(time.perf_counter() - start, 1)
            figure = model.figures(Path(tmp) / f"{name}-figures", test, info)[0]
            target = RESULTS / f"{stem.replace('gqn', name.replace('-', '_'))}_query_views.png"
            shutil.copyfile(figure, target)
            row["figure"] = str(target.relative_to(REPO))
            rows.append(row)
            print(f"{name}: {row['train_seconds']} s training, " + json.dumps(row["test"]), flush=True)
    gqn, det = rows[0]["test"], rows[1]["test"]
    verdicts = [_verdict(gqn, "test_bits_per_pixel"), _verdict(gqn, "test_mse_mean8"), _verdict(det, "test_mse")]
    result = {"machine": machine, "loadavg_at_end": [round(v, 2) for v in os.getloadavg()],
              "setup": {"dataset": "scenes-32", "train_scenes": args.train_scenes, "test_scenes": args.test_scenes,
                        "views": args.views, "steps": args.steps, "batch": args.batch, "lr": args.lr,
                        "anneal_steps": args.anneal_steps, "seed": args.seed, "threads": torch.get_num_threads(),
                        "sizes": SIZES, "query": "the last view of each test scene", "context": "its first k views"},
              "rows": rows, "verdicts": verdicts}
    write_text_atomic(RESULTS / f"{stem}.json", json.dumps(result, indent=2, default=str) + "\n")
    table = [f"<!-- written by: {machine['command']} -->",
             f"<!-- commit {machine['deepgm_git_commit']}, src uncommitted changes: "
             f"{machine['deepgm_src_uncommitted_changes']}, {machine['date']}, load at start "
             f"{machine['loadavg_at_start']}, at end {result['loadavg_at_end']} -->", "",
             f"scenes-32: {args.train_scenes} training scenes of {args.views} views, {args.steps} steps of "
             f"{args.batch} scenes each; {args.test_scenes} test scenes, query = last view, context = first k views.",
             "", "| model | train s | s/step | k | bits/pixel (−ELBO) | KL (nats) | MSE (1 render) | MSE (mean of 8) |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        m = row["test"]
        for k in CONTEXTS:
            bits = f"{m[f'test_bits_per_pixel_k{k}']:.4f}" if f"test_bits_per_pixel_k{k}" in m else "—"
            kl = f"{m[f'test_kl_k{k}']:.2f}" if f"test_kl_k{k}" in m else "—"
            table.append(f"| {row['model']} | {row['train_seconds']} | {row['seconds_per_step']} | {k} | {bits} | {kl} "
                         f"| {m[f'test_mse_k{k}']:.5f} | {m[f'test_mse_mean8_k{k}']:.5f} |")
    table += ["", "bits/pixel: −ELBO of the query image (nats; Gaussian density at σ = "
              f"{gqn.get('sigma', float('nan')):.2f}) / (3·32·32·ln 2), per colour value. The baseline regresses "
              "the image (no ELBO).", ""] + [f"* {v}" for v in verdicts]
    table += ["", f"Figures: {rows[0]['figure']}, {rows[1]['figure']}"]
    write_text_atomic(RESULTS / f"{stem}.md", "\n".join(table) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()
