"""Flows: test NLL on the 2-D toys beside zuko and nflows at equal parameter count and budget, bits/dim on
dequantised MNIST, and FFJORD's function evaluations and memory with and without the adjoint.

    python benchmarks/flows.py --data-dir ../shared/data/mnist            # → benchmarks/results/flows.json (+ .md)
    python benchmarks/flows.py --quick                                    # smoke run → results/flows_quick.json

Sections (``--only toys|mnist|ffjord`` runs one):

* ``toys``: for each toy (moons, 8 Gaussians, checkerboard, pinwheel) and each family (MAF, RealNVP, NICE,
  neural spline, FFJORD) deepgm's flow and, when installed, zuko's and nflows' flow of the same family. Every
  model has the same number of transforms; the other libraries' hidden width is the one whose parameter count
  is closest to deepgm's (the counts are in the table). All train with Adam (lr 1e-3) on the same
  ``--n-train`` points, the same minibatch indices, ``--steps`` steps of ``--batch`` (FFJORD: ``--cnf-steps``);
  test NLL in nats on ``--n-test`` fresh points in eval mode; seconds per step over the whole training.
* ``mnist``: NICE, RealNVP (multi-scale) and MAF with their zoo defaults, each for ``--mnist-seconds`` of
  training (batch 100) on dequantised MNIST; bits/dim on the 10,000 test images, dequantised with one uniform
  draw (the usual estimate). MAF uses the paper's logit transform (λ = 1e-6) and its log-likelihood in logit
  space is reported too, beside the published figures.
* ``ffjord``: FFJORD (dopri5, Hutchinson trace, tolerances 1e-5) trained on 8 Gaussians: test NLL (exact
  trace), function evaluations per training step; then the memory of one forward+backward pass against batch
  size, with and without the adjoint, each in a fresh process: the bytes autograd keeps for the backward pass
  at the end of the forward pass (what the adjoint method saves) and the growth of the peak resident set.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import subprocess
import sys
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

import deepgm.zoo.ffjord
import deepgm.zoo.maf
import deepgm.zoo.nice
import deepgm.zoo.realnvp  # noqa: F401  (registers the flow models)
from deepgm import zoo
from deepgm.data import toy_2d
from deepgm.flows import Flow, RQSplineCoupling, alternating_mask
from deepgm.models import FlowModel
from deepgm.zoo.flows_common import base_distribution

TOYS = ("moons", "8gaussians", "checkerboard", "pinwheel")
FAMILIES = ("maf", "realnvp", "nice", "spline", "ffjord")
PUBLISHED_MNIST = {  # bits/dim on dequantised MNIST, and MAF's log-likelihood in logit space (nats)
    "realnvp": {"bits_per_dim": 1.06, "source": "Dinh et al. 2017 as reported by Papamakarios et al. 2017 / "
                "Grathwohl et al. 2019"},
    "maf": {"bits_per_dim": 1.89, "logit_space_log_likelihood": -1300.5, "source": "Papamakarios et al. 2017, MAF(5)"},
    "ffjord": {"bits_per_dim": 0.99, "source": "Grathwohl et al. 2019 (multi-scale FFJORD)"},
}

Built = tuple[nn.Module, Callable[[torch.Tensor], torch.Tensor]]


# ------------------------------------------------------------------------------------------------ models
def _params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters() if p.requires_grad)


def _deepgm(family: str, hidden: int) -> Built:
    info = zoo.DataInfo("toy", (2,), binary=False)
    h = (hidden, hidden)
    if family == "spline":
        ts = [RQSplineCoupling(alternating_mask(2, i % 2), bins=8, bound=4.0, hidden=h) for i in range(4)]
        flow = Flow(var=["x"], base=base_distribution("normal", 2), transforms=ts, event_shape=[2])
        model = FlowModel(flow)
    else:
        name, cfg = {
            "maf": ("maf", {"layers": 4, "batch_norm": False}),
            "realnvp": ("realnvp", {"couplings": 2, "batch_norm": False}),  # 2 × 2 affine couplings
            "nice": ("nice", {"couplings": 4, "prior": "normal"}),
            "ffjord": ("ffjord", {"steps": 8, "trace": "exact"}),
        }[family]
        entry = zoo.get(name)
        model = entry.build(entry.config(**cfg, hidden=h), info)
    return model, lambda x: model.flow.log_prob({"x": x})


def _zuko(family: str, width: int) -> Built | None:
    try:
        import zuko
    except ImportError:
        return None
    h = (width, width)
    flow: nn.Module
    if family == "maf":
        flow = zuko.flows.MAF(features=2, transforms=4, hidden_features=h)
    elif family == "realnvp":
        flow = zuko.flows.RealNVP(features=2, transforms=4, hidden_features=h)
    elif family == "nice":
        flow = zuko.flows.NICE(features=2, transforms=4, hidden_features=h)
    elif family == "spline":
        flow = zuko.flows.NSF(features=2, transforms=4, bins=8, hidden_features=h)
    elif family == "ffjord":
        flow = zuko.flows.CNF(features=2, hidden_features=h)
    else:
        return None
    return flow, lambda x: flow().log_prob(x)


def _nflows(family: str, width: int) -> Built | None:
    try:
        from nflows.flows import MaskedAutoregressiveFlow, SimpleRealNVP
    except ImportError:
        return None
    flow: nn.Module
    if family == "maf":  # a MADE with two hidden layers of `width`, as deepgm's and zuko's
        flow = MaskedAutoregressiveFlow(features=2, hidden_features=width, num_layers=4, num_blocks_per_layer=1,
                                        use_residual_blocks=False)
    elif family in ("realnvp", "nice"):
        flow = SimpleRealNVP(features=2, hidden_features=width, num_layers=4, num_blocks_per_layer=1,
                             use_volume_preserving=family == "nice")
    else:
        return None
    return flow, flow.log_prob


def _matched(make: Callable[[str, int], Built | None], family: str, target: int) -> Built | None:
    """The model of ``make`` whose hidden width gives the parameter count closest to ``target``."""
    first = make(family, 8)
    if first is None:
        return None
    best, best_gap = 8, abs(_params(first[0]) - target)
    lo, hi = 8, 1024
    while lo <= hi:  # parameter counts grow with the width: bisect
        mid = (lo + hi) // 2
        built = make(family, mid)
        assert built is not None
        n = _params(built[0])
        if abs(n - target) < best_gap:
            best, best_gap = mid, abs(n - target)
        if n < target:
            lo = mid + 1
        else:
            hi = mid - 1
    return make(family, best)


# ---------------------------------------------------------------------------------------------- training
def _train(built: Built, x: torch.Tensor, x_test: torch.Tensor, steps: int, batch: int, seed: int,
           lr: float = 1e-3) -> dict[str, Any]:
    module, log_prob = built
    opt = torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=lr)
    module.train()
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
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
    return {"test_nll": nll, "seconds_per_step": per_step, "parameters": _params(module), "steps": steps}


def toys(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for toy in args.toys.split(","):
        x = toy_2d(toy, args.n_train, seed=0)
        x_test = toy_2d(toy, args.n_test, seed=1)
        out[toy] = {}
        for family in args.families.split(","):
            steps = args.cnf_steps if family == "ffjord" else args.steps
            torch.manual_seed(0)
            mine = _deepgm(family, args.hidden)
            target = _params(mine[0])
            rows: dict[str, Any] = {"deepgm": _train(mine, x, x_test, steps, args.batch, seed=0)}
            for lib, make in (("zuko", _zuko), ("nflows", _nflows)):
                torch.manual_seed(0)
                other = _matched(make, family, target)
                rows[lib] = (_train(other, x, x_test, steps, args.batch, seed=0) if other is not None
                             else {"skipped": f"{lib} not installed or has no {family}"})
            out[toy][family] = rows
            for lib, r in rows.items():
                print(toy, family, lib, {k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()},
                      flush=True)
    return out


# ------------------------------------------------------------------------------------------------- MNIST
def _mnist_eval(model: FlowModel, x_test: torch.Tensor, logit_space: bool) -> dict[str, float]:
    """bits/dim with one uniform dequantisation draw; with ``logit_space``, also log p of the logit-space
    data y = logit(λ + (1-2λ)x̃), the figure MAF's paper reports."""
    flow = model.flow
    model.eval()
    d = x_test.shape[1]
    lp_x, lp_y = [], []
    with torch.no_grad():
        for xb in x_test.split(500):
            ts = list(flow.transform.transforms)
            deq, ld_deq = ts[0](xb)  # uniform noise in eval mode too
            y, ld_logit = (ts[1](deq) if logit_space else (deq, torch.zeros(len(xb))))
            rest = ts[2:] if logit_space else ts[1:]
            u, ld = y, torch.zeros(len(xb))
            for t in rest:
                u, ld_t = t(u)
                ld = ld + ld_t
            base = flow.base.log_prob({flow.base.var[0]: u})
            lp_y.append(base + ld)
            lp_x.append(base + ld + ld_logit + ld_deq)
    model.train()
    out = {"bits_per_dim": float(-torch.cat(lp_x).mean() / (d * math.log(2)))}
    if logit_space:
        out["logit_space_log_likelihood"] = float(torch.cat(lp_y).mean())
    return out


def mnist(args: argparse.Namespace) -> dict[str, Any]:
    from deepgm.data import load_dataset

    try:
        train = load_dataset("mnist", "train", args.data_dir, flatten=True).batch()["x"]  # type: ignore[attr-defined]
        test = load_dataset("mnist", "test", args.data_dir, flatten=True).batch()["x"]  # type: ignore[attr-defined]
    except Exception as e:  # noqa: BLE001  (a missing dataset skips this section, with the reason)
        return {"skipped": f"MNIST not found: {e}"}
    if args.quick:
        test = test[:500]
    torch.set_num_threads(args.mnist_threads)
    info = zoo.DataInfo("mnist", (784,), 10, binary=True)
    specs = {"nice": {}, "realnvp": {}, "maf": {"logit_alpha": 1e-6}}
    out: dict[str, Any] = {"seconds_each": args.mnist_seconds, "batch": 100, "threads": args.mnist_threads}
    for name, cfg in specs.items():
        torch.manual_seed(0)
        entry = zoo.get(name)
        model = entry.build(entry.config(**cfg), info)
        g = torch.Generator().manual_seed(0)
        steps, start = 0, time.time()
        while time.time() - start < args.mnist_seconds:
            model.train_step({"x": train[torch.randint(0, len(train), (100,), generator=g)]})
            steps += 1
        seconds = time.time() - start
        torch.manual_seed(1)
        row = {"steps": steps, "train_seconds": seconds, "parameters": _params(model),
               "config": {k: str(v) for k, v in vars(entry.config(**cfg)).items()},
               **_mnist_eval(model, test, logit_space=name == "maf"), "published": PUBLISHED_MNIST.get(name)}
        out[name] = row
        print("mnist", name, {k: v for k, v in row.items() if k != "config"}, flush=True)
    out["ffjord"] = {"published": PUBLISHED_MNIST["ffjord"], "measured": "not run (far beyond a CPU budget)"}
    return out


# ------------------------------------------------------------------------------------------------ FFJORD
def _ffjord(adjoint: bool, hidden: int = 64) -> FlowModel:
    entry = zoo.get("ffjord")
    cfg = entry.config(hidden=(hidden, hidden), solver="dopri5", atol=1e-5, rtol=1e-5, adjoint=adjoint,
                       trace="hutchinson")
    return entry.build(cfg, zoo.DataInfo("toy", (2,), binary=False))


def _rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() // 1024


def _memory_child(batch: int, adjoint: bool) -> None:
    """Run in a fresh process: one training step of FFJORD; print the bytes autograd holds for the backward
    pass at the end of the forward pass (unique storages of the saved tensors) and the growth of the peak
    resident set size over the step (MiB)."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = _ffjord(adjoint)
    x = toy_2d("8gaussians", batch, seed=0)
    model.train_step({"x": x[:8]})  # first-call validation out of the way
    saved: list[weakref.ref[torch.Tensor]] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved.append(weakref.ref(t))  # graphs built and dropped inside the solver die with their tensors
        return t

    rss_before = _rss_kib()
    t0 = time.perf_counter()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = -model.flow.log_prob({"x": x}).mean()
    cnf = model.flow.transform.transforms[-1]
    nfe_forward = cnf.nfe
    storages = {}
    for ref in saved:
        t = ref()
        if t is not None:
            storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
    loss.backward()
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"saved_for_backward_mib": sum(storages.values()) / 2**20,
                      "peak_rss_growth_mib": max(0, peak - rss_before) / 1024, "seconds": seconds,
                      "nfe_forward": nfe_forward, "nfe_total": cnf.func.nfe}))


def ffjord(args: argparse.Namespace) -> dict[str, Any]:
    torch.manual_seed(0)
    x = toy_2d("8gaussians", args.n_train, seed=0)
    x_test = toy_2d("8gaussians", args.n_test, seed=1)
    model = _ffjord(adjoint=False)
    cnf = model.flow.transform.transforms[-1]
    g = torch.Generator().manual_seed(0)
    nfe, start = [], time.perf_counter()
    for _ in range(args.ffjord_steps):
        model.train_step({"x": x[torch.randint(0, len(x), (args.batch,), generator=g)]})
        nfe.append(cnf.nfe)
    seconds = (time.perf_counter() - start) / args.ffjord_steps
    model.eval()
    with torch.no_grad():
        nll = float(-torch.cat([model.flow.log_prob({"x": c}) for c in x_test.split(1000)]).mean())
    tenth = max(1, len(nfe) // 10)
    out: dict[str, Any] = {
        "training": {"toy": "8gaussians", "steps": args.ffjord_steps, "batch": args.batch, "test_nll": nll,
                     "seconds_per_step": seconds, "nfe_forward_first_10pct": sum(nfe[:tenth]) / tenth,
                     "nfe_forward_last_10pct": sum(nfe[-tenth:]) / tenth},
        "memory": [],
    }
    print("ffjord training", out["training"], flush=True)
    for batch in [int(b) for b in args.memory_batches.split(",")]:
        for adjoint in (False, True):
            res = subprocess.run([sys.executable, __file__, "--memory-child", str(batch), str(int(adjoint))],
                                 capture_output=True, text=True, check=True)
            row = {"batch": batch, "adjoint": adjoint, **json.loads(res.stdout.strip().splitlines()[-1])}
            out["memory"].append(row)
            print("ffjord memory", row, flush=True)
    return out


# -------------------------------------------------------------------------------------------------- main
def _markdown(result: dict[str, Any]) -> str:
    lines: list[str] = []
    if "toys" in result:
        lines += ["| toy | family | deepgm NLL | zuko NLL | nflows NLL | deepgm ms/step | zuko ms/step | "
                  "nflows ms/step | parameters (deepgm / zuko / nflows) |", "|---|---|---|---|---|---|---|---|---|"]
        for toy, fams in result["toys"].items():
            for fam, rows in fams.items():
                def cell(lib: str, key: str, scale: float = 1.0, fmt: str = ".3f") -> str:
                    r = rows.get(lib, {})
                    return "–" if key not in r else format(r[key] * scale, fmt)
                params = " / ".join(cell(lib, "parameters", 1, "d") for lib in ("deepgm", "zuko", "nflows"))
                lines.append(f"| {toy} | {fam} | " + " | ".join(cell(lib, "test_nll") for lib in
                             ("deepgm", "zuko", "nflows")) + " | " + " | ".join(
                             cell(lib, "seconds_per_step", 1000, ".1f") for lib in ("deepgm", "zuko", "nflows"))
                             + f" | {params} |")
    if "mnist" in result and "skipped" not in result["mnist"]:
        lines += ["", "| MNIST model | steps | bits/dim | published bits/dim | logit-space log-lik (nats) "
                  "| published |",
                  "|---|---|---|---|---|---|"]
        for name in ("nice", "realnvp", "maf"):
            r = result["mnist"].get(name)
            if r is None:
                continue
            pub = r.get("published") or {}
            lines.append(f"| {name} | {r['steps']} | {r['bits_per_dim']:.3f} | {pub.get('bits_per_dim', '–')} | "
                         f"{r.get('logit_space_log_likelihood', float('nan')):.1f} | "
                         f"{pub.get('logit_space_log_likelihood', '–')} |")
    if "ffjord" in result:
        t = result["ffjord"]["training"]
        lines += ["", f"FFJORD on {t['toy']}: test NLL {t['test_nll']:.3f} after {t['steps']} steps; "
                  f"NFE per forward solve {t['nfe_forward_first_10pct']:.0f} → {t['nfe_forward_last_10pct']:.0f}; "
                  f"{1000 * t['seconds_per_step']:.0f} ms/step", "",
                  "| batch | adjoint | saved for backward (MiB) | peak RSS growth (MiB) | seconds/step | NFE forward | "
                  "NFE total |", "|---|---|---|---|---|---|---|"]
        for r in result["ffjord"]["memory"]:
            lines.append(f"| {r['batch']} | {r['adjoint']} | {r['saved_for_backward_mib']:.1f} | "
                         f"{r['peak_rss_growth_mib']:.1f} | {r['seconds']:.2f} | {r['nfe_forward']} | "
                         f"{r['nfe_total']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--memory-child":
        _memory_child(int(sys.argv[2]), bool(int(sys.argv[3])))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["toys", "mnist", "ffjord"], default=None)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--cnf-steps", type=int, default=400)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--hidden", type=int, default=64, help="deepgm's hidden width (two layers)")
    ap.add_argument("--n-train", type=int, default=20000)
    ap.add_argument("--n-test", type=int, default=5000)
    ap.add_argument("--toys", default=",".join(TOYS))
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--mnist-seconds", type=float, default=360.0)
    ap.add_argument("--ffjord-steps", type=int, default=500)
    ap.add_argument("--memory-batches", default="1024,4096,16384")
    ap.add_argument("--quick", action="store_true", help="a smoke run of every section")
    ap.add_argument("--threads", type=int, default=1, help="threads for the toys and FFJORD (timings)")
    ap.add_argument("--mnist-threads", type=int, default=2)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.quick:
        args.steps, args.cnf_steps, args.toys, args.n_train, args.n_test = 20, 5, "moons", 2000, 1000
        args.mnist_seconds, args.ffjord_steps, args.memory_batches = 3.0, 3, "64,256"
    torch.set_num_threads(args.threads)
    out = Path(args.out or f"benchmarks/results/flows{'_quick' if args.quick else ''}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    # each section is merged into the JSON as soon as it finishes (sections can run as separate commands)
    result: dict[str, Any] = json.loads(out.read_text()) if out.exists() and args.only else {}
    meta = {"steps": args.steps, "cnf_steps": args.cnf_steps, "batch": args.batch, "hidden": args.hidden,
            "n_train": args.n_train, "n_test": args.n_test, "threads": args.threads,
            "torch": torch.__version__, "machine": platform.platform(), "command": " ".join(sys.argv)}
    for name, run in (("toys", toys), ("ffjord", ffjord), ("mnist", mnist)):
        if args.only in (None, name):
            result[name] = run(args)
            result.setdefault("meta", {})[name] = meta
            out.write_text(json.dumps(result, indent=2) + "\n")
    md = _markdown(result)
    out.with_suffix(".md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
