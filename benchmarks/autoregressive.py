#!/usr/bin/env python
"""Autoregressive models on binarised MNIST: the exact test NLL (nats) of NADE, MADE, PixelCNN and Gated
PixelCNN at a CPU budget, beside the published figures, and the PixelCNNs' samples/s naive vs cached.

Binarisation (ours and the comparison's): **dynamic** — every training batch is a fresh draw
``x ~ Bernoulli(grey levels)`` of MNIST's 60,000 training images minus deepgm's validation split (what
``deepgm.data.load_splits(..., binarize="dynamic")`` gives), and the 10,000 test images are binarised once
with the fixed seed ``TEST_BINARIZE_SEED``. pytorch-generative's reproductions use dynamic binarisation too
(a new binary dataset every epoch); the papers' figures are on the fixed binarisation of Larochelle &
Murray (2011) / Salakhutdinov & Murray (2008), shown for orientation (dynamic binarisation is known to
give somewhat lower NLLs).

Each model is the zoo's (``deepgm train nade|made|pixelcnn|gated-pixelcnn``, default options) trained
with Adam (lr 1e-3) in batches of ``--batch`` for ``--seconds`` of step time on ``--threads`` threads;
then ``evaluate`` on the test images (exact NLL; MADE with one fixed ordering, one mask). Beside NADE,
MADE and PixelCNN, the hand-written PyTorch model of ``autoregressive_refs.py`` of the same size trains
interleaved with it (one step of each in turn, on the same batches; ``--no-reference`` skips it). The
sampling speed is measured with :func:`deepgm.distributions.sampling_speed` on the trained PixelCNNs
(``--sample-n`` images from the same seed; ``identical`` says whether both samplers drew the same images).
Results: ``benchmarks/results/autoregressive.json`` and ``.md`` (the command, git commit, whether ``src/``
had uncommitted changes, the date and the load are recorded).

    .venv/bin/python benchmarks/autoregressive.py --data-dir /work/shared/data   # ~7 × 5 min + evaluation, 2 cores
    .venv/bin/python benchmarks/autoregressive.py --smoke                        # < 1 min: autoregressive_smoke.*
"""

from __future__ import annotations

import argparse
import dataclasses
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
from autoregressive_refs import REFERENCES  # noqa: E402

from deepgm import zoo  # noqa: E402
from deepgm.data import TEST_BINARIZE_SEED, load_splits  # noqa: E402
from deepgm.distributions import sampling_speed  # noqa: E402
from deepgm.io import write_text_atomic  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
MODELS = ("nade", "made", "pixelcnn", "gated-pixelcnn")
_PG = "pytorch-generative (EugenHotaj) README"
PUBLISHED = {  # test NLL in nats on binarised MNIST
    "nade": [{"nll": 85.65, "binarisation": "dynamic", "source": _PG},
             {"nll": 88.33, "binarisation": "fixed",
              "source": "NADE (Larochelle & Murray 2011) as tabulated in Germain et al. 2015; not re-verified here"}],
    "made": [{"nll": 84.87, "binarisation": "dynamic", "source": _PG},
             {"nll": 88.04, "binarisation": "fixed",
              "source": "MADE (Germain et al. 2015) as cited by pytorch-generative and the issue; the paper's mask "
                        "count for it not re-verified here"}],
    "pixelcnn": [{"nll": 81.45, "binarisation": "dynamic", "source": _PG},
                 {"nll": 81.30, "binarisation": "fixed", "source": "van den Oord et al. 2016 (PixelRNN paper)"}],
    "gated-pixelcnn": [{"nll": 81.50, "binarisation": "dynamic", "source": _PG}],
}
SMOKE_OPTIONS: dict[str, dict[str, Any]] = {
    "nade": {"hidden_units": 32}, "made": {"hidden": (64,)},
    "pixelcnn": {"channels": 8, "layers": 2}, "gated-pixelcnn": {"channels": 8, "layers": 2},
}
SMOKE_REF_OPTIONS: dict[str, dict[str, Any]] = {"nade": {"hidden": 32}, "made": {"hidden": 64},
                                                "pixelcnn": {"channels": 8, "layers": 2}}


def _train(name: str, options: dict[str, Any], data: Any, args: argparse.Namespace
           ) -> tuple[Any, dict[str, Any], torch.nn.Module | None, dict[str, Any] | None]:
    """The zoo model and (for NADE, MADE, PixelCNN) its hand-written reference, trained interleaved: one step
    of each in turn on the same batch, each until its own ``--seconds`` of step time are spent."""
    entry = zoo.get(name)
    cfg = entry.config(**options)
    torch.manual_seed(args.seed)
    model = entry.build(cfg, data.info)
    ref_cls = REFERENCES.get(name) if not args.no_reference else None
    ref = ref_cls(**SMOKE_REF_OPTIONS[name]) if ref_cls is not None and args.smoke else ref_cls() if ref_cls else None
    opt = torch.optim.Adam(ref.parameters(), lr=1e-3) if ref is not None else None
    train = data.train["x"]
    g = torch.Generator().manual_seed(args.seed)
    clock = {"deepgm": 0.0, "reference": 0.0 if ref is not None else args.seconds}
    steps = {"deepgm": 0, "reference": 0}
    losses: dict[str, list[float]] = {"deepgm": [], "reference": []}
    step_times: dict[str, list[float]] = {"deepgm": [], "reference": []}
    while min(clock.values()) < args.seconds:
        batch = data.transform({"x": train[torch.randint(0, len(train), (args.batch,), generator=g)]})
        order = ["deepgm", "reference"] if (steps["deepgm"] + steps["reference"]) % 2 == 0 else ["reference", "deepgm"]
        for who in order:
            if clock[who] >= args.seconds:
                continue
            start = time.perf_counter()
            if who == "deepgm":
                loss = float(model.train_step(batch))
            else:
                assert ref is not None and opt is not None
                opt.zero_grad()
                nll = -ref(batch["x"].flatten(1)).mean()
                nll.backward()
                opt.step()
                loss = float(nll)
            dt = time.perf_counter() - start
            clock[who] += dt
            steps[who] += 1
            losses[who].append(loss)
            step_times[who].append(dt)

    def summary(who: str, params: int) -> dict[str, Any]:
        tail = losses[who][-20:]
        return {"parameters": params, "steps": steps[who], "epochs": round(steps[who] * args.batch / len(train), 2),
                "train_seconds": round(clock[who], 1), "median_step_seconds": statistics.median(step_times[who]),
                "train_loss_last20_mean": sum(tail) / len(tail)}

    row = {"model": name, "config": {k: getattr(cfg, k) for k in (f.name for f in dataclasses.fields(cfg))}}
    row |= summary("deepgm", sum(p.numel() for p in model.parameters()))
    ref_row = None
    if ref is not None:
        ref_row = {"implementation": f"benchmarks/autoregressive_refs.py:{type(ref).__name__}"}
        ref_row |= summary("reference", sum(p.numel() for p in ref.parameters()))
    return model, row, ref, ref_row


@torch.no_grad()
def _reference_nll(ref: torch.nn.Module, x: torch.Tensor, batch: int = 500) -> float:
    ref.eval()
    total = sum(float(-ref(x[i:i + batch].flatten(1)).sum()) for i in range(0, len(x), batch))
    return total / len(x)


def _markdown(result: dict[str, Any]) -> str:
    m, s = result["machine"], result["setup"]
    lines = [f"<!-- written by: {m['command']} -->",
             f"<!-- commit {m['deepgm_git_commit']}, src uncommitted changes: {m['deepgm_src_uncommitted_changes']}, "
             f"{m['date']}, load at start {m['loadavg_at_start']}, at end {result['loadavg_at_end']} -->", "",
             f"Binarised MNIST, **dynamic binarisation** (training batches redrawn, test images binarised once with "
             f"seed {TEST_BINARIZE_SEED}); {s['seconds']} s of training per model on {s['threads']} thread(s), batch "
             f"{s['batch']}, Adam 1e-3; test NLL exact, in nats, on {s['test_images']} test images.", "",
             "| model | parameters | steps (epochs) | s/step | test NLL (nats) | bits/dim | hand-written: steps | "
             "s/step | test NLL | published, dynamic | published, fixed |", "|" + "---|" * 11]
    for row in result["rows"]:
        pub = {p["binarisation"]: p for p in PUBLISHED[row["model"]]}
        dyn, fix = pub.get("dynamic"), pub.get("fixed")
        ref = row.get("reference")
        ref_cells = (f"{ref['steps']} ({ref['epochs']}) | {ref['median_step_seconds']:.4f} | "
                     f"{ref['test_nll_exact']:.2f}" if ref else "– | – | –")
        lines.append(f"| {row['model']} | {row['parameters']:,} | {row['steps']} ({row['epochs']}) | "
                     f"{row['median_step_seconds']:.4f} | {row['test']['test_nll_exact']:.2f} | "
                     f"{row['test']['test_bits_per_dim']:.4f} | {ref_cells} | "
                     f"{dyn['nll'] if dyn else '–'} | {fix['nll'] if fix else '–'} |")
    lines += ["", "Hand-written: benchmarks/autoregressive_refs.py (same sizes, plain PyTorch and autograd, Adam "
              "1e-3), "
              "trained interleaved with the zoo model (one step each in turn on the same batch, each until its own "
              "step time reaches the budget); s/step is the median step time.", "",
              "Published: dynamic = pytorch-generative's reproductions; fixed = the papers (Larochelle & Murray "
              "2011; Germain et al. 2015; van den Oord et al. 2016), on the fixed binarisation.", "",
              "| sampler speed | image | samples | naive samples/s | cached samples/s | speed-up | same draws |",
              "|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        sp = row.get("sampling")
        if sp:
            lines.append(f"| {row['model']} | {'×'.join(map(str, sp['image_shape']))} | {sp['samples']} | "
                         f"{sp['naive_samples_per_s']:.3f} | {sp['cached_samples_per_s']:.3f} | {sp['speedup']:.1f}× "
                         f"| {sp['identical']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=os.environ.get("DEEPGM_DATA"))
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--seconds", type=float, default=300.0, help="training step seconds per model (and reference)")
    p.add_argument("--no-reference", action="store_true", help="skip the hand-written references")
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--test-images", type=int, default=10000)
    p.add_argument("--sample-n", type=int, default=4, help="images drawn by each sampler")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--smoke", action="store_true", help="tiny models and budgets (< 1 min): autoregressive_smoke.*")
    args = p.parse_args()
    if args.smoke:
        args.seconds, args.test_images, args.sample_n = 3.0, 200, 1
    torch.set_num_threads(args.threads)
    machine = machine_info(torch.get_num_threads(), REPO)
    data = load_splits("mnist", args.data_dir, "dynamic", "binary")
    data.splits["test"] = {"x": data.test["x"][: args.test_images]}
    rows = []
    for name in args.models.split(","):
        model, row, ref, ref_row = _train(name, SMOKE_OPTIONS[name] if args.smoke else {}, data, args)
        torch.manual_seed(args.seed)
        start = time.perf_counter()
        row["test"] = model.evaluate(data.test, info=data.info)
        row["eval_seconds"] = round(time.perf_counter() - start, 1)
        if ref is not None and ref_row is not None:
            ref_row["test_nll_exact"] = _reference_nll(ref, data.test["x"])
            row["reference"] = ref_row
        if name in ("pixelcnn", "gated-pixelcnn"):
            row["sampling"] = sampling_speed(model.p, n=args.sample_n, seed=args.seed)
        row["published"] = PUBLISHED[name]
        rows.append(row)
        print(name, json.dumps({k: row[k] for k in ("steps", "train_seconds", "test", "published")}
                               | ({"reference": row["reference"]} if "reference" in row else {})
                               | ({"sampling": row["sampling"]} if "sampling" in row else {})), flush=True)
    result = {"machine": machine, "loadavg_at_end": [round(v, 2) for v in os.getloadavg()],
              "setup": {"dataset": "mnist",
                        "binarisation": f"dynamic (train); test fixed with seed {TEST_BINARIZE_SEED}",
                        "seconds": args.seconds, "batch": args.batch, "threads": torch.get_num_threads(),
                        "test_images": len(data.test["x"]), "seed": args.seed, "smoke": args.smoke,
                        "optimizer": "Adam, lr 1e-3 (the zoo's default)"},
              "rows": rows}
    stem = "autoregressive_smoke" if args.smoke else "autoregressive"
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_text_atomic(RESULTS / f"{stem}.json", json.dumps(result, indent=2, default=str) + "\n")
    md = _markdown(result)
    write_text_atomic(RESULTS / f"{stem}.md", md)
    print(md)


if __name__ == "__main__":
    main()
