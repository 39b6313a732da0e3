"""Energy-based models: each training method's test NLL on the 2-D toys (the normaliser computed on a grid)
beside a neural-spline flow at equal budget, and an RBM with 500 hidden units on binarised MNIST with its AIS
test log-likelihood beside Salakhutdinov & Murray (2008) for the same CD-k.

    python benchmarks/ebm.py --data-dir ../shared/data/mnist   # → benchmarks/results/ebm.json (+ .md)
    python benchmarks/ebm.py --smoke                           # < 1 min → benchmarks/results/ebm_smoke.json

Sections (``--only toys|rbm|torchebm``):

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
* ``torchebm``: on one toy (``--torchebm-toy``, default the first of ``--toys``) deepgm's PCD EBM exactly as
  ``toys`` trains it beside the same MLP energy (same initial weights) trained by torchebm's
  ``ContrastiveDivergence`` (persistent, its replay buffer) with its ``LangevinDynamics`` at equal budget: same
  points and minibatches, steps, batch, Adam lr, Langevin steps per training step, the same Langevin update
  (the step-size mapping is written in ``torchebm_side_by_side``), the same ``E²`` regulariser and buffer size.
  The two are trained step by step in alternation (the order swapped every step); test NLL by the same grid
  rule, the whole training's seconds and the median seconds per step. What the two setups cannot share is
  listed in the output's notes. torchebm (``torchebm==0.8.9``) is optional: when it does not import, the
  section records "not installed" and is skipped.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import machine_info, summarize  # noqa: E402

from deepgm import zoo  # noqa: E402
from deepgm.data import load_splits, toy_2d  # noqa: E402
from deepgm.distributions import EnergyDistribution, Langevin  # noqa: E402
from deepgm.flows import Flow, RQSplineCoupling, alternating_mask  # noqa: E402
from deepgm.losses import ContrastiveDivergence  # noqa: E402
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


def _torchebm_version() -> str | None:
    try:
        import torchebm  # type: ignore[import-not-found]
    except ImportError:
        return None
    return str(getattr(torchebm, "__version__", "?"))


def torchebm_side_by_side(args: argparse.Namespace) -> dict[str, Any]:
    """deepgm's PCD EBM (as ``toys`` trains it) and the same energy MLP trained by torchebm's persistent CD and
    Langevin sampler at equal budget on one toy, trained in alternation step by step."""
    version = _torchebm_version()
    toy = args.torchebm_toy or args.toys.split(",")[0]
    if version is None:
        out = {"toy": toy, "torchebm": "not installed (optional benchmark dependency, torchebm==0.8.9); section "
               "skipped", "rows": [], "notes": []}
        print(json.dumps(out), flush=True)
        return out
    from torchebm.core import BaseModel  # type: ignore[import-not-found]
    from torchebm.losses import ContrastiveDivergence as TorchebmCD  # type: ignore[import-not-found]
    from torchebm.samplers import LangevinDynamics  # type: ignore[import-not-found]

    box = [(-args.box, args.box)] * 2
    x = toy_2d(toy, args.n_train, seed=0)
    test = toy_2d(toy, args.n_test, seed=1)
    g = torch.Generator().manual_seed(0)
    order = torch.randint(0, args.n_train, (args.steps, args.batch), generator=g)

    # (a) deepgm: built exactly as the toys section builds its "pcd" row (same seed, same global RNG stream)
    torch.manual_seed(0)
    dg = _toy_ebm("pcd", args)
    rng_after_build = torch.get_rng_state()
    p = dg.energy_dist
    cd = next(n for n in dg.loss.walk() if isinstance(n, ContrastiveDivergence))
    sampler, buf = cd.sampler, cd.buffer
    assert isinstance(sampler, Langevin) and buf is not None and p.energy_net is not None
    eps, sigma, k = sampler.step_size, sampler.sigma, sampler.steps
    init_lo, init_hi = p.init_bounds

    # (b) torchebm: the same layers (Linear 2→h, SiLU, Linear h→h, SiLU, Linear h→1), given deepgm's initial weights
    class MLPEnergy(BaseModel):  # type: ignore[misc]
        def __init__(self, hidden: int) -> None:
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(2, hidden), torch.nn.SiLU(), torch.nn.Linear(hidden, hidden),
                                           torch.nn.SiLU(), torch.nn.Linear(hidden, 1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x)[:, 0]

    te_model = MLPEnergy(args.hidden)
    te_model.load_state_dict(p.energy_net.state_dict())  # identical initial weights (same keys net.0/2/4)
    # The Langevin step, mapped. deepgm's Langevin(step_size=ε, noise_scale=σ; σ = √ε when None):
    #     x ← x − (ε/2)·∇E(x) + σ·ξ.
    # torchebm's LangevinDynamics(step_size=η, noise_scale=s) with its default Euler–Maruyama integrator:
    #     x ← x − η·∇E(x) + s·√(2η)·ξ   (drift −∇E times η; diffusion D = s², Wiener increment √η·ξ, factor √(2D)).
    # Equal updates: η = ε/2 and s = σ/√(2η) = σ/√ε, i.e. s = 1 for exact Langevin (σ = √ε); here ε = 0.01,
    # σ = 0.1 → η = 0.005, s = 1.0. Both take k = --mcmc-steps steps per training step, without clamping or
    # gradient clipping.
    eta, s_noise = eps / 2, sigma / math.sqrt(eps)
    te_sampler = LangevinDynamics(te_model, step_size=eta, noise_scale=s_noise)
    # energy_reg_weight is deepgm's α: both add α·(mean E(x)² + mean E(x̃)²) to mean E(x) − mean E(x̃)
    te_loss = TorchebmCD(te_model, te_sampler, k_steps=k, persistent=True, buffer_size=buf.capacity, init_steps=0,
                         new_sample_ratio=buf.reinit_prob, energy_reg_weight=cd.alpha)
    te_gen = torch.Generator().manual_seed(0)  # torchebm's own stream: the alternation leaves both reproducible
    # torchebm fills its buffer with N(0, 0.01²) noise; make its chains start where deepgm's do (uniform on the
    # init box) through the public buffer it keeps, with no warm-up steps (deepgm has none)
    te_loss.initialize_buffer((2,), generator=te_gen)
    te_loss.replay_buffer.copy_(init_lo + (init_hi - init_lo) * torch.rand(buf.capacity, 2, generator=te_gen))
    te_opt = torch.optim.Adam(te_model.parameters(), lr=1e-3)
    torch.set_rng_state(rng_after_build)  # building (b) must not shift deepgm's global random stream

    def te_step(batch: torch.Tensor) -> None:
        te_opt.zero_grad(set_to_none=True)
        loss, _ = te_loss(batch, generator=te_gen)
        loss.backward()
        te_opt.step()

    runs: list[dict[str, Any]] = [
        {"implementation": "deepgm (PCD)", "step": lambda b: dg.train_step({"x": b}), "times": [], "error": None},
        {"implementation": f"torchebm {version} (ContrastiveDivergence, persistent)", "step": te_step, "times": [],
         "error": None},
    ]
    for i, idx in enumerate(order):
        batch = x[idx]
        for r in (runs if i % 2 == 0 else runs[::-1]):  # the order swapped every step
            if r["error"] is not None:
                continue
            t0 = time.perf_counter()
            try:
                r["step"](batch)
            except Exception as err:  # a diverged run is a result, not a crash of the benchmark
                r["error"] = f"step {i}: {type(err).__name__}: {str(err).splitlines()[0][:200]}"
            r["times"].append(time.perf_counter() - t0)

    te_dist = EnergyDistribution(var=["x"], energy=te_model, event_shape=[2], name="p_torchebm")
    rows = []
    for r, dist in zip(runs, (p, te_dist), strict=True):
        row: dict[str, Any] = {"implementation": r["implementation"], "toy": toy, "steps": len(r["times"]),
                               "params": sum(q.numel() for q in dist.parameters() if q.requires_grad)}
        if r["error"] is not None:
            row["error"] = r["error"]
        else:
            try:
                with torch.no_grad():
                    e = dg.energies(test) if dist is p else \
                        torch.cat([dist.energy_rows(c) for c in torch.split(test, 1000)])
                    row["test_nll"] = float(e.mean() + dist.grid_log_normalizer(box, args.grid))
                row["likelihood"] = f"grid {args.grid}x{args.grid} over [-{args.box}, {args.box}]^2"
            except Exception as err:
                row["error"] = f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"
        row["train_seconds"] = round(sum(r["times"]), 2)
        if r["times"]:
            stats = summarize(r["times"])
            row["s_per_step_median"] = stats["median_s"]
            row["s_per_step_iqr"] = stats["iqr_s"]
        print(json.dumps(row), flush=True)
        rows.append(row)
    budget = {"toy": toy, "n_train": args.n_train, "n_test": args.n_test, "steps": args.steps, "batch": args.batch,
              "hidden": [args.hidden, args.hidden], "activation": "SiLU", "adam_lr": 1e-3, "langevin_steps": k,
              "deepgm_langevin": {"step_size_eps": eps, "noise_sigma": sigma},
              "torchebm_langevin": {"step_size_eta": eta, "noise_scale_s": s_noise},
              "buffer_size": buf.capacity, "reinit_or_jitter_share": buf.reinit_prob,
              "energy_reg_alpha": cd.alpha, "chain_init": f"uniform on [{init_lo}, {init_hi}]^2"}
    notes = [
        "Langevin: deepgm x <- x - (eps/2) grad E + sigma xi (sigma = sqrt(eps) unless noise_scale is set); torchebm "
        "x <- x - eta grad E + s sqrt(2 eta) xi; mapped by eta = eps/2, s = sigma/sqrt(eps): the same update.",
        "Initial weights: torchebm's network is loaded with deepgm's initial state dict (same layers and keys).",
        "Persistent chains: both keep a replay buffer of the same size, filled with uniform starts on the same box "
        "(torchebm's own default fill, N(0, 0.01^2) noise plus init_steps warm-up, replaced via its public "
        "replay_buffer; init_steps=0). They differ in how it is used: deepgm draws slots uniformly with replacement "
        "and writes each advanced chain back into its own slot; torchebm draws stratified slots and writes the "
        "advanced states first-in-first-out at its buffer pointer, so a chain is not written back where it came from.",
        f"Fresh chains: deepgm restarts each drawn chain with probability {buf.reinit_prob} from a uniform start; "
        f"torchebm has no restart: new_sample_ratio={buf.reinit_prob} instead jitters that share of the start "
        "points with N(0, 0.01^2) noise (the closest option).",
        "Non-finite loss: deepgm's model raises (its default guard); torchebm replaces a non-finite loss by 0.1 "
        "and steps on.",
        "Random streams: deepgm uses the global torch RNG from the same state as in the toys section (so on the "
        "same machine and threads its row should repeat that section's pcd row for this toy); torchebm gets its own "
        "torch.Generator (seed 0). The two runs are therefore not draw-for-draw identical, only identically "
        "distributed where the algorithms agree.",
        "Timing: one training step of each in turn, the order swapped every step; train s is the sum of the "
        "per-step times, s/step their median. deepgm's step includes its model's bookkeeping (non-finite "
        "checks, returning the loss as a float).",
    ]
    return {"toy": toy, "torchebm": version, "budget": budget, "rows": rows, "notes": notes}


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
    if "torchebm" in result:
        t = result["torchebm"]
        lines += ["", f"## Side by side with torchebm on {t['toy']} (equal budget)", ""]
        if not t["rows"]:
            lines.append(f"torchebm: {t['torchebm']}")
        else:
            b = t["budget"]
            lines += [f"Both: {b['n_train']} training points, the same {b['steps']} minibatches of {b['batch']}, MLP "
                      f"{b['hidden']} ({b['activation']}), Adam lr {b['adam_lr']}, {b['langevin_steps']} Langevin "
                      f"steps per step (deepgm eps={b['deepgm_langevin']['step_size_eps']:g}, "
                      f"sigma={b['deepgm_langevin']['noise_sigma']:g} = torchebm step_size="
                      f"{b['torchebm_langevin']['step_size_eta']:g}, noise_scale="
                      f"{b['torchebm_langevin']['noise_scale_s']:g}), buffer {b['buffer_size']}, E^2 weight "
                      f"{b['energy_reg_alpha']:g}; test NLL on {b['n_test']} points (grid normaliser as above).", "",
                      "| implementation | steps | test NLL | train s | s/step |", "|---|---|---|---|---|"]
            for r in t["rows"]:
                nll = f"{r['test_nll']:.3f}" if "test_nll" in r else r.get("error", "")
                sps = f"{r['s_per_step_median']:.4f}" if "s_per_step_median" in r else ""
                lines.append(f"| {r['implementation']} | {r['steps']} | {nll} | {r['train_seconds']} | {sps} |")
            lines += ["", "Notes:", "", *[f"- {n}" for n in t["notes"]]]
    lines += ["", f"torchebm: {result['meta']['torchebm']}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["toys", "rbm", "torchebm"], default=None)
    ap.add_argument("--toys", default=",".join(TOYS))
    ap.add_argument("--objectives", default=",".join(OBJECTIVES))
    ap.add_argument("--torchebm-toy", default=None, help="the toy of the torchebm section (default: first of --toys)")
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
    ap.add_argument("--smoke", action="store_true",
                    help="a run of every section (torchebm's included, a few seconds) in under a minute")
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
    version = _torchebm_version()
    te = f"installed ({version})" if version is not None else \
        "not installed (optional benchmark dependency); no side-by-side run"
    result["meta"] = {"machine": machine_info(args.threads, REPO), "torchebm": te,
                      "options": {k: v for k, v in vars(args).items() if k != "out"}}
    for name, run in (("toys", toys), ("rbm", rbm), ("torchebm", torchebm_side_by_side)):
        if args.only in (None, name):
            result[name] = run(args)
            out.write_text(json.dumps(result, indent=2) + "\n")
    md = _markdown(result)
    out.with_suffix(".md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
