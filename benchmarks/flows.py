"""Flows on the 2-D toys: test NLL and time per step of deepgm's flows at one training budget, beside
zuko's and nflows' MAF when they are installed (trained in the same run on the same data).

    python benchmarks/flows.py                 # full run → benchmarks/results/flows.json (+ .md)
    python benchmarks/flows.py --quick         # a smoke run → benchmarks/results/flows_quick.json

Every model trains with Adam (lr 1e-3) on the same ``n_train`` points of each toy (seeded), batch
``--batch``, for ``--steps`` steps; the test NLL (nats) is on ``n_test`` fresh points in eval mode.
MNIST bits/dim and FFJORD's memory with/without the adjoint are not measured here yet.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

import deepgm.zoo.ffjord
import deepgm.zoo.maf
import deepgm.zoo.nice
import deepgm.zoo.realnvp  # noqa: F401  (registers the flow models)
from deepgm import zoo
from deepgm.data import toy_2d

TOYS = ("moons", "8gaussians", "checkerboard", "pinwheel")
DEEPGM = {
    "deepgm_maf": ("maf", {"layers": 5, "hidden": (64, 64), "batch_norm": False}),
    "deepgm_realnvp": ("realnvp", {"couplings": 4, "hidden": (64, 64), "batch_norm": False}),
    "deepgm_nice": ("nice", {"couplings": 8, "hidden": (64, 64), "prior": "normal"}),
    "deepgm_ffjord": ("ffjord", {"hidden": (64, 64), "steps": 4}),
}


def _deepgm(name: str, cfg: dict[str, Any]) -> tuple[torch.nn.Module, Callable[[torch.Tensor], torch.Tensor],
                                                        torch.optim.Optimizer]:
    entry = zoo.get(name)
    model = entry.build(entry.config(**cfg, lr=1e-3), zoo.DataInfo("toy", (2,), binary=False))
    return model, lambda x: model.flow.log_prob({"x": x}), model.optimizer


def _zuko() -> tuple[torch.nn.Module, Callable[[torch.Tensor], torch.Tensor], torch.optim.Optimizer] | None:
    try:
        import zuko
    except ImportError:
        return None
    flow = zuko.flows.MAF(features=2, transforms=5, hidden_features=(64, 64))
    return flow, lambda x: flow().log_prob(x), torch.optim.Adam(flow.parameters(), lr=1e-3)


def _nflows() -> tuple[torch.nn.Module, Callable[[torch.Tensor], torch.Tensor], torch.optim.Optimizer] | None:
    try:
        from nflows.flows import MaskedAutoregressiveFlow
    except ImportError:
        return None
    flow = MaskedAutoregressiveFlow(features=2, hidden_features=64, num_layers=5, num_blocks_per_layer=2)
    return flow, flow.log_prob, torch.optim.Adam(flow.parameters(), lr=1e-3)


def _train(build: Callable[[], Any], x: torch.Tensor, x_test: torch.Tensor, steps: int, batch: int,
           seed: int) -> dict[str, Any] | None:
    torch.manual_seed(seed)
    built = build()
    if built is None:
        return None
    module, log_prob, opt = built
    module.train()
    g = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    for _ in range(steps):
        xb = x[torch.randint(0, len(x), (batch,), generator=g)]
        opt.zero_grad(set_to_none=True)
        loss = -log_prob(xb).mean()
        loss.backward()
        opt.step()
    per_step = (time.perf_counter() - t0) / max(steps, 1)
    module.eval()
    with torch.no_grad():
        nll = float(-torch.cat([log_prob(c) for c in x_test.split(1000)]).mean())
    params = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return {"test_nll": nll, "seconds_per_step": per_step, "parameters": params}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--n-train", type=int, default=20000)
    ap.add_argument("--n-test", type=int, default=5000)
    ap.add_argument("--toys", default=",".join(TOYS))
    ap.add_argument("--quick", action="store_true", help="20 steps on moons only (a smoke test)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.quick:
        args.steps, args.toys, args.n_train, args.n_test = 20, "moons", 2000, 1000
    torch.set_num_threads(args.threads)
    runners: dict[str, Callable[[], Any]] = {k: (lambda n=n, c=c: _deepgm(n, c)) for k, (n, c) in DEEPGM.items()}
    runners["zuko_maf"] = _zuko
    runners["nflows_maf"] = _nflows
    results: dict[str, dict[str, Any]] = {}
    for toy in args.toys.split(","):
        x = toy_2d(toy, args.n_train, seed=0)
        x_test = toy_2d(toy, args.n_test, seed=1)
        results[toy] = {}
        for key, build in runners.items():
            r = _train(build, x, x_test, args.steps, args.batch, seed=0)
            results[toy][key] = r if r is not None else {"skipped": "not installed"}
            print(toy, key, results[toy][key], flush=True)
    out = Path(args.out or f"benchmarks/results/flows{'_quick' if args.quick else ''}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"steps": args.steps, "batch": args.batch, "n_train": args.n_train, "n_test": args.n_test,
            "threads": args.threads, "torch": torch.__version__, "machine": platform.processor() or platform.machine()}
    out.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    lines = ["| toy | model | test NLL (nats) | ms/step | parameters |", "|---|---|---|---|---|"]
    for toy, rows in results.items():
        for key, r in rows.items():
            if "skipped" in r:
                lines.append(f"| {toy} | {key} | not installed | | |")
            else:
                lines.append(f"| {toy} | {key} | {r['test_nll']:.3f} | {1000 * r['seconds_per_step']:.1f} | "
                             f"{r['parameters']} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))



if __name__ == "__main__":
    main()
