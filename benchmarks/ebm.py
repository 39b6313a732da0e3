"""Energy-based models: each training method's test NLL on the 2-D toys (the normaliser computed on a grid)
beside a neural-spline flow at equal budget, and an RBM with 500 hidden units on binarised MNIST with its AIS
test log-likelihood beside Salakhutdinov & Murray (2008) for the same CD-k.

    python benchmarks/ebm.py --data-dir ../shared/data/mnist   # → benchmarks/results/ebm.json (+ .md)
    python benchmarks/ebm.py --smoke                           # < 1 min → benchmarks/results/ebm_smoke.json

Sections (``--only toys|rbm``):

* ``toys``: for each toy and each objective of the zoo's ``ebm`` (PCD with a replay buffer, CD-k from the
  data, short-run MCMC from noise, exact / sliced / denoising score matching, NCE) the same MLP energy
  (SiLU, ``--hidden``) trained with Adam (lr 1e-3) on the same ``--n-train`` points and minibatch indices for
  ``--steps`` steps of ``--batch``; beside it a rational-quadratic spline flow (4 couplings, 8 bins, the
  flows benchmark's) on the same points and steps. Test NLL in nats on ``--n-test`` fresh points: the EBMs'
  ``E(x) + log Z`` with ``log Z`` by the midpoint rule on a ``--grid``² grid over [-L, L]² (L = ``--box``;
  mass outside the box is left out, so an EBM's NLL is, if anything, optimistic by that mass), the flow's
  exactly. Seconds are the whole training's.
* ``rbm``: an RBM (500 hidden units, SGD lr 0.05, momentum 0.9, weight decay 2e-4, batch 100) trained by CD-k
  for each ``--cd-ks`` for ``--rbm-epochs`` epochs on dynamically binarised MNIST; test log-likelihood on the
  10,000 test images (binarised once with deepgm's fixed seed) with ``log Z`` by AIS (``--ais-chains``
  chains, ``--ais-temperatures`` temperatures spaced as S&M's), beside S&M's figures for the same CD-k.
  S&M trained far longer (and with a CD-k schedule for CD25), so the comparison is for orientation.
* ``torchebm`` is not installed by default; when it imports, its version is recorded (no comparison is run by
  this script yet).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import machine_info  # noqa: E402

from deepgm import zoo  # noqa: E402
from deepgm.data import load_splits, toy_2d  # noqa: E402
from deepgm.flows import Flow, RQSplineCoupling, alternating_mask  # noqa: E402
from deepgm.models import FlowModel  # noqa: E402
from deepgm.zoo.flows_common import base_distribution  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TOYS = ("8gaussians", "moons", "checkerboard", "pinwheel")
OBJECTIVES = ("pcd", "cd", "short-run", "sm", "ssm", "dsm", "nce")
# average test log-probabilities (nats) of 500-hidden-unit RBMs on MNIST, AIS-estimated, as quoted in the
# brief for Salakhutdinov & Murray (2008), Table 2: to be checked against the paper
PUBLISHED_RBM = {1: -125.53, 3: -105.50, 25: -86.34}


def _toy_ebm(objective: str, args: argparse.Namespace) -> Any:
    entry = zoo.get("ebm")
    cfg = entry.config(objective=objective, hidden=(args.hidden, args.hidden), mcmc_steps=args.mcmc_steps,
                       buffer_size=min(10_000, args.n_train), sample_steps=args.mcmc_steps, lr=1e-3)
    return entry.build(cfg, zoo.DataInfo("toy", (2,), binary=False))


def _spline_flow(hidden: int) -> FlowModel:
    ts = [RQSplineCoupling(alternating_mask(2, i % 2), bins=8, bound=4.0, hidden=(hidden, hidden)) for i in range(4)]
    return FlowModel(Flow(var=["x"], base=base_distribution("normal", 2), transforms=ts, event_shape=[2]))


def _train(model: Any, x: torch.Tensor, order: torch.Tensor) -> float:
    start = time.perf_counter()
    for idx in order:
        model.train_step({"x": x[idx]})
    return time.perf_counter() - start


def toys(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    box = [(-args.box, args.box)] * 2
    for toy in args.toys.split(","):
        x = toy_2d(toy, args.n_train, seed=0)
        test = toy_2d(toy, args.n_test, seed=1)
        g = torch.Generator().manual_seed(0)
        order = torch.randint(0, args.n_train, (args.steps, args.batch), generator=g)
        for method in [*args.objectives.split(","), "spline-flow"]:
            torch.manual_seed(0)
            model = _spline_flow(args.hidden) if method == "spline-flow" else _toy_ebm(method, args)
            row: dict[str, Any] = {"toy": toy, "method": method,
                                   "params": sum(p.numel() for p in model.parameters() if p.requires_grad)}
            try:
                row["seconds"] = round(_train(model, x, order), 2)
                with torch.no_grad():
                    if method == "spline-flow":
                        row["test_nll"] = float(-model.log_likelihood(test).mean())
                        row["likelihood"] = "exact"
                    else:
                        p = model.energy_dist
                        log_z = p.grid_log_normalizer(box, args.grid)
                        row["test_nll"] = float(model.energies(test).mean() + log_z)
                        row["likelihood"] = f"grid {args.grid}x{args.grid} over [-{args.box}, {args.box}]^2"
            except Exception as err:  # a diverged method is a result, not a crash of the benchmark
                row["error"] = f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def rbm(args: argparse.Namespace) -> list[dict[str, Any]]:
    data = load_splits(args.dataset, args.data_dir, "dynamic" if args.dataset == "mnist" else "none", "binary")
    train, test = data.splits["train"]["x"].reshape(len(data.splits["train"]["x"]), -1), data.splits["test"]["x"]
    test = test.reshape(len(test), -1)
    if args.dataset != "mnist":  # grey levels: one fixed binarisation of the test set
        test = torch.bernoulli(test, generator=torch.Generator().manual_seed(0))
    rows = []
    for k in [int(s) for s in args.cd_ks.split(",")]:
        torch.manual_seed(0)
        entry = zoo.get("rbm")
        model = entry.build(entry.config(hidden_units=args.rbm_hidden, cd_k=k, ais_chains=args.ais_chains,
                                         ais_temperatures=args.ais_temperatures),
                            zoo.DataInfo(args.dataset, (train.shape[1],)))
        g = torch.Generator().manual_seed(0)
        start, steps = time.perf_counter(), 0
        for _ in range(args.rbm_epochs):
            perm = torch.randperm(len(train), generator=g)
            for i in range(0, len(train) - args.rbm_batch + 1, args.rbm_batch):
                batch = train[perm[i:i + args.rbm_batch]]
                if data.transform is not None:
                    batch = data.transform({"x": batch})["x"]
                model.train_step({"x": batch})
                steps += 1
                if args.rbm_max_steps and steps >= args.rbm_max_steps:
                    break
        seconds = time.perf_counter() - start
        start = time.perf_counter()
        metrics = model.evaluate({"x": test})
        row = {"cd_k": k, "hidden": args.rbm_hidden, "epochs": args.rbm_epochs, "steps": steps,
               "train_seconds": round(seconds, 1), "eval_seconds": round(time.perf_counter() - start, 1),
               **{m: metrics[m] for m in ("test_loglik_ais", "log_z_ais", "log_z_ais_3se", "ais_chains",
                                          "ais_temperatures", "likelihood")},
               "published_sm2008": PUBLISHED_RBM.get(k) if args.dataset == "mnist" else None}
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def _markdown(result: dict[str, Any]) -> str:
    lines = ["# Energy-based models", "", f"`{result['meta']['machine']['command']}` — commit "
             f"`{result['meta']['machine']['deepgm_git_commit']}`, uncommitted changes in src: "
             f"{result['meta']['machine']['deepgm_src_uncommitted_changes']}, {result['meta']['machine']['date']}", ""]
    if "toys" in result:
        lines += ["## 2-D toys: test NLL (nats; EBMs: normaliser on a grid)", "",
                  "| toy | method | params | test NLL | seconds |", "|---|---|---|---|---|"]
        for r in result["toys"]:
            nll = f"{r['test_nll']:.3f}" if "test_nll" in r else r.get("error", "")
            lines.append(f"| {r['toy']} | {r['method']} | {r['params']} | {nll} | {r.get('seconds', '')} |")
    if "rbm" in result:
        lines += ["", "## RBM on binarised MNIST: AIS test log-likelihood (nats)", "",
                  "| CD-k | hidden | epochs | test log-lik (AIS) | log Z ± 3 s.e. | S&M 2008 | train s | eval s |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in result["rbm"]:
            lo, hi = r["log_z_ais_3se"]
            lines.append(f"| {r['cd_k']} | {r['hidden']} | {r['epochs']} | {r['test_loglik_ais']:.2f} | "
                         f"{r['log_z_ais']:.2f} [{lo if lo is None else round(lo, 2)}, {hi:.2f}] | "
                         f"{r['published_sm2008']} | {r['train_seconds']} | {r['eval_seconds']} |")
    lines += ["", f"torchebm: {result['meta']['torchebm']}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["toys", "rbm"], default=None)
    ap.add_argument("--toys", default=",".join(TOYS))
    ap.add_argument("--objectives", default=",".join(OBJECTIVES))
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--mcmc-steps", type=int, default=40)
    ap.add_argument("--n-train", type=int, default=20_000)
    ap.add_argument("--n-test", type=int, default=5000)
    ap.add_argument("--grid", type=int, default=500)
    ap.add_argument("--box", type=float, default=5.0)
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--cd-ks", default="1,3,25")
    ap.add_argument("--rbm-hidden", type=int, default=500)
    ap.add_argument("--rbm-epochs", type=int, default=5)
    ap.add_argument("--rbm-batch", type=int, default=100)
    ap.add_argument("--rbm-max-steps", type=int, default=0, help="stop each RBM after this many steps (0: none)")
    ap.add_argument("--ais-chains", type=int, default=100)
    ap.add_argument("--ais-temperatures", type=int, default=14_500)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--smoke", action="store_true", help="a run of every section in under a minute")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.smoke:
        args.toys, args.steps, args.n_train, args.n_test, args.grid, args.mcmc_steps = "8gaussians", 30, 2000, 500, \
            100, 10
        args.cd_ks, args.rbm_hidden, args.rbm_max_steps, args.ais_chains, args.ais_temperatures = "1", 20, 30, 20, 300
        args.rbm_epochs = 1
    torch.set_num_threads(args.threads)
    out = Path(args.out or REPO / f"benchmarks/results/ebm{'_smoke' if args.smoke else ''}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = json.loads(out.read_text()) if out.exists() and args.only else {}
    try:
        import torchebm  # type: ignore[import-not-found]

        te = f"installed ({getattr(torchebm, '__version__', '?')}); no side-by-side run in this script yet"
    except ImportError:
        te = "not installed (optional benchmark dependency); no side-by-side run"
    result["meta"] = {"machine": machine_info(args.threads, REPO), "torchebm": te,
                      "options": {k: v for k, v in vars(args).items() if k != "out"}}
    for name, run in (("toys", toys), ("rbm", rbm)):
        if args.only in (None, name):
            result[name] = run(args)
            out.write_text(json.dumps(result, indent=2) + "\n")
    md = _markdown(result)
    out.with_suffix(".md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
