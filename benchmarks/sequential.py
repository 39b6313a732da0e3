#!/usr/bin/env python
"""Sequential latent-variable models on the polyphonic-music sets (issue 11): deepgm against Pyro and
hand-written PyTorch.

Parts (each writes ``benchmarks/results/sequential_<part>.json`` and ``.md``, recording the command, git
commit, whether ``src/`` had uncommitted changes, the date and the machine's load):

* ``dmm``: the DMM on JSB Chorales — deepgm's ``dmm`` (zoo defaults: Pyro tutorial's sizes), the same model
  in Pyro (``TraceMeanField_ELBO``) and in plain PyTorch (``benchmarks/sequential_refs.py``). Same data
  tensors, batch size, epochs, shuffling order, optimiser (Adam, lr 1e-3, betas (0.96, 0.999), global
  gradient-norm clipping at 10) and KL annealing (β from 0.2 to 1 over the first ``--anneal-epochs``),
  trained epoch by epoch in turn (interleaved, so the machine's load is shared). Reported: seconds per
  epoch (median) and, after the last epoch, the test negative ELBO per time step (total over the test
  sequences ÷ number of real test time steps, mean of ``--eval-repeats`` evaluations, β = 1) of each;
  for deepgm also its particle-filter (FIVO) and IWAE estimates of the NLL per time step.
* ``vrnn``: deepgm's ``vrnn`` trained with the ELBO, the sequence IWAE and FIVO (``--particles``) on JSB and
  Nottingham, the same epochs each; every trained model is evaluated by all three estimators.
* ``speed``: one training step (zero_grad, loss, backward, clip, Adam step, ``.item()``) on a fixed JSB
  batch of 20 sequences — deepgm's VRNN against the hand-written VRNN (ELBO, and FIVO with 4 particles),
  deepgm's DMM against the hand-written and Pyro DMMs — in interleaved rounds; medians and ratios.

Run from the repository root with the benchmark environment (benchmarks/requirements.txt)::

    DEEPGM_DATA=../shared/data .venv-bench/bin/python benchmarks/sequential.py --part dmm
    DEEPGM_DATA=../shared/data .venv-bench/bin/python benchmarks/sequential.py --part vrnn
    DEEPGM_DATA=../shared/data .venv-bench/bin/python benchmarks/sequential.py --part speed
    ... --quick    # a smoke test of the same code (minutes)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import machine_info  # noqa: E402
from sequential_refs import PyroDMM, TorchDMM, TorchVRNN  # noqa: E402

from deepgm import zoo  # noqa: E402
from deepgm.data import load_splits  # noqa: E402
from deepgm.models import SequenceModel  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
BATCH = 20
MACHINE: dict[str, Any] = {}
LR, BETAS, CLIP = 1e-3, (0.96, 0.999), 10.0

# published figures, test NLL per time step (nats), each with its source and protocol
PUBLISHED = {
    "dmm_jsb": [
        {"value": 6.93, "source": "Krishnan et al. 2017 (DMM), as quoted by Pyro's DMM tutorial",
         "protocol": "test negative ELBO per time step"},
        {"value": 6.87, "source": "Pyro DMM tutorial, its own run", "protocol": "5000 epochs, test negative ELBO"},
    ],
}


def _data_dir(arg: str | None) -> str | None:
    return arg or None


def _batches(n: int, epoch: int, seed: int) -> list[Tensor]:
    """The shuffled mini-batch indices of one epoch (the same for every implementation)."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = torch.randperm(n, generator=g)
    return [order[i:i + BATCH] for i in range(0, n - BATCH + 1, BATCH)]


def _beta(step: int, anneal_steps: int) -> float:
    return 1.0 if anneal_steps <= 0 else 0.2 + 0.8 * min(1.0, step / anneal_steps)


class Runner:
    """One implementation trained by one loop: ``loss(x, mask, beta) -> summed negative ELBO``."""

    def __init__(self, name: str, params: list[nn.Parameter], loss: Callable[[Tensor, Tensor, float], Tensor],
                 test_loss: Callable[[Tensor, Tensor], float]) -> None:
        self.name, self.params, self.loss, self.test_loss = name, params, loss, test_loss
        self.opt = torch.optim.Adam(params, lr=LR, betas=BETAS)
        self.epoch_seconds: list[float] = []
        self.nonfinite_steps = 0
        self.steps = 0

    def train_epoch(self, x: Tensor, mask: Tensor, batches: list[Tensor], anneal_steps: int) -> float:
        start = time.perf_counter()
        for idx in batches:
            self.opt.zero_grad(set_to_none=True)
            loss = self.loss(x[idx], mask[idx], _beta(self.steps, anneal_steps)) / len(idx)
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(self.params, CLIP)
            if not (math.isfinite(float(loss.detach())) and math.isfinite(float(norm))):
                self.nonfinite_steps += 1
                continue
            self.opt.step()
            self.steps += 1
        seconds = time.perf_counter() - start
        self.epoch_seconds.append(seconds)
        return seconds


class DeepgmRunner(Runner):
    """deepgm's model trained as a user trains it: ``model.train_step(batch)`` (its optimiser, clipping and
    KL-annealing schedule are the zoo model's, set to the values the references use)."""

    def __init__(self, name: str, model: SequenceModel) -> None:
        self.model = model
        super().__init__(name, [p for p in model.parameters() if p.requires_grad], lambda x, m, b: x.sum(),
                         lambda x, m: _deepgm_test(model, x, m))

    def train_epoch(self, x: Tensor, mask: Tensor, batches: list[Tensor], anneal_steps: int) -> float:
        start = time.perf_counter()
        for idx in batches:
            if not math.isfinite(self.model.train_step({"x": x[idx], "mask": mask[idx]})):
                self.nonfinite_steps += 1
        self.steps = self.model.steps
        seconds = time.perf_counter() - start
        self.epoch_seconds.append(seconds)
        return seconds


@torch.no_grad()
def _deepgm_test(model: SequenceModel, x: Tensor, mask: Tensor) -> float:
    model.eval()
    try:
        return -model.sequence_totals({"x": x, "mask": mask}, model.elbo, batch=BATCH)
    finally:
        model.train()


@torch.no_grad()
def _ref_test(loss: Callable[[Tensor, Tensor, float], Tensor], x: Tensor, mask: Tensor) -> float:
    total = 0.0
    for i in range(0, len(x), BATCH):
        total += float(loss(x[i:i + BATCH], mask[i:i + BATCH], 1.0))
    return total


def _build(name: str, info: Any, **options: Any) -> SequenceModel:
    entry = zoo.get(name)
    model = entry.build(entry.config(**options), info)
    assert isinstance(model, SequenceModel)
    return model


def _write(part: str, result: dict[str, Any], table: list[str]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"sequential_{part}.json").write_text(json.dumps(result, indent=2) + "\n")
    head = [f"<!-- written by: {result['machine']['command']} -->",
            f"<!-- commit {result['machine']['deepgm_git_commit']}, src uncommitted changes: "
            f"{result['machine']['deepgm_src_uncommitted_changes']}, {result['machine']['date']}, "
            f"load at start {result['machine']['loadavg_at_start']}, at end {result['loadavg_at_end']} -->", ""]
    (RESULTS / f"sequential_{part}.md").write_text("\n".join(head + table) + "\n")
    print("\n".join(table))


# ------------------------------------------------------------------------------------------------- DMM
def part_dmm(args: argparse.Namespace) -> None:
    data = load_splits("jsb", _data_dir(args.data_dir))
    train, test = data.train, data.test
    steps_test = float(test["mask"].sum())
    per_epoch = len(train["x"]) // BATCH
    anneal_steps = args.anneal_epochs * per_epoch
    torch.manual_seed(args.seed)
    ours = _build("dmm", data.info, lr=LR, anneal_steps=anneal_steps, min_anneal=0.2)
    assert ours.clip_grad_norm == CLIP and ours.optimizer.defaults["betas"] == BETAS
    torch.manual_seed(args.seed)
    hand = TorchDMM()
    torch.manual_seed(args.seed)
    pyro_dmm = PyroDMM()
    import pyro

    pyro.enable_validation(False)  # its checks cost time per step and the model is known to be valid
    runners = [
        DeepgmRunner("deepgm", ours),
        Runner("hand-written PyTorch", list(hand.parameters()), hand.loss, lambda x, m: _ref_test(hand.loss, x, m)),
        Runner("Pyro", list(pyro_dmm.module.parameters()), pyro_dmm.loss,
               lambda x, m: _ref_test(pyro_dmm.loss, x, m)),
    ]
    for epoch in range(args.epochs):
        batches = _batches(len(train["x"]), epoch, args.seed)
        order = runners[epoch % 3:] + runners[:epoch % 3]  # rotated: no one always runs first
        for r in order:
            r.train_epoch(train["x"], train["mask"], batches, anneal_steps)
        print(f"epoch {epoch + 1}: " + ", ".join(f"{r.name} {r.epoch_seconds[-1]:.1f}s" for r in runners), flush=True)
    rows = []
    for r in runners:
        torch.manual_seed(args.seed + 1)
        values = [-r.test_loss(test["x"], test["mask"]) / steps_test for _ in range(args.eval_repeats)]
        rows.append({"implementation": r.name, "epochs": args.epochs, "steps": r.steps,
                     "nonfinite_steps": r.nonfinite_steps,
                     "seconds_per_epoch_median": statistics.median(r.epoch_seconds),
                     "epoch_seconds": [round(s, 3) for s in r.epoch_seconds],
                     "test_neg_elbo_per_step": -statistics.mean(values),
                     "test_neg_elbo_per_step_repeats": [-v for v in values]})
    torch.manual_seed(args.seed + 2)
    ours_eval = ours.evaluate(test, k=args.eval_particles)
    rows[0]["deepgm_evaluate"] = ours_eval
    base = rows[1]["seconds_per_epoch_median"]
    for row in rows:
        row["seconds_per_epoch_ratio_to_hand_written"] = row["seconds_per_epoch_median"] / base
    result = {"part": "dmm", "machine": MACHINE,
              "setup": {"dataset": "jsb", "batch": BATCH, "lr": LR, "betas": BETAS, "clip_grad_norm": CLIP,
                        "anneal": f"beta 0.2 -> 1 over {args.anneal_epochs} epochs ({anneal_steps} steps)",
                        "epochs": args.epochs, "seed": args.seed, "eval_repeats": args.eval_repeats,
                        "test_time_steps": int(steps_test), "threads": torch.get_num_threads()},
              "rows": rows, "published": PUBLISHED["dmm_jsb"], "loadavg_at_end": list(os.getloadavg())}
    table = ["| implementation | epochs | s/epoch (median) | ratio to hand-written | test −ELBO/step "
             "| non-finite steps |", "|---|---|---|---|---|---|"]
    for row in rows:
        table.append(f"| {row['implementation']} | {row['epochs']} | {row['seconds_per_epoch_median']:.2f} | "
                     f"{row['seconds_per_epoch_ratio_to_hand_written']:.3f} | {row['test_neg_elbo_per_step']:.3f} | "
                     f"{row['nonfinite_steps']} |")
    table.append("")
    table.append(f"deepgm's own evaluation ({args.eval_particles} particles): test −ELBO/step "
                 f"{ours_eval['test_neg_elbo_per_step']:.3f}, NLL/step by the particle filter "
                 f"{ours_eval['test_nll_smc_per_step']:.3f}, by IWAE {ours_eval['test_nll_iwae_per_step']:.3f}")
    _write("dmm", result, table)


# ------------------------------------------------------------------------------------------------ VRNN
def part_vrnn(args: argparse.Namespace) -> None:
    rows = []
    budgets = {"jsb": args.epochs, "nottingham": args.nottingham_epochs}
    for dataset in args.datasets.split(","):
        epochs = budgets[dataset]
        data = load_splits(dataset, _data_dir(args.data_dir))
        for objective in ("elbo", "iwae", "fivo"):
            torch.manual_seed(args.seed)
            model = _build("vrnn", data.info, objective=objective, particles=args.particles)
            runner = DeepgmRunner(objective, model)
            for epoch in range(epochs):
                runner.train_epoch(data.train["x"], data.train["mask"], _batches(len(data.train["x"]), epoch,
                                                                                 args.seed), 0)
            seconds = sum(runner.epoch_seconds)
            torch.manual_seed(args.seed + 1)
            ev = model.evaluate(data.test, k=args.eval_particles)
            evaluated = {("eval_particles" if k == "particles" else k): v for k, v in ev.items() if k != "note"}
            row = {"dataset": dataset, "objective": objective, "train_particles": args.particles
                   if objective != "elbo" else 1, "epochs": epochs, "steps": model.steps,
                   "train_seconds": round(seconds, 1),
                   "nonfinite_steps": runner.nonfinite_steps + model.skipped_steps,
                   "seconds_per_epoch_median": statistics.median(runner.epoch_seconds), **evaluated}
            rows.append(row)
            print(json.dumps(row), flush=True)
    result = {"part": "vrnn", "machine": MACHINE,
              "setup": {"batch": BATCH, "model": "zoo vrnn defaults", "seed": args.seed,
                        "eval_particles": args.eval_particles, "threads": torch.get_num_threads()},
              "rows": rows, "loadavg_at_end": list(os.getloadavg())}
    table = ["| data | trained by | epochs | train s | test −ELBO/step | NLL/step (IWAE) | NLL/step (FIVO) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        trained = r["objective"] if r["objective"] == "elbo" else f"{r['objective']} (K={r['train_particles']})"
        table.append(f"| {r['dataset']} | {trained} | {r['epochs']} | {r['train_seconds']:.0f} | "
                     f"{r['test_neg_elbo_per_step']:.3f} | "
                     f"{r['test_nll_iwae_per_step']:.3f} | {r['test_nll_smc_per_step']:.3f} |")
    table.append("")
    table.append(f"NLL estimates with {args.eval_particles} particles; per time step = total over the test sequences "
                 f"÷ number of real test time steps.")
    _write("vrnn", result, table)


# ----------------------------------------------------------------------------------------------- speed
def part_speed(args: argparse.Namespace) -> None:
    data = load_splits("jsb", _data_dir(args.data_dir))
    idx = _batches(len(data.train["x"]), 0, args.seed)[0]
    x, mask = data.train["x"][idx], data.train["mask"][idx]
    cases: dict[str, dict[str, Callable[[], float]]] = {}

    def step_fn(params: list[nn.Parameter], loss: Callable[[], Tensor]) -> Callable[[], float]:
        opt = torch.optim.Adam(params, lr=LR, betas=BETAS)

        def step() -> float:
            opt.zero_grad(set_to_none=True)
            value = loss()
            value.backward()
            torch.nn.utils.clip_grad_norm_(params, CLIP)
            opt.step()
            return float(value)

        return step

    batch = {"x": x, "mask": mask}
    torch.manual_seed(args.seed)
    vrnn = _build("vrnn", data.info)
    hand_vrnn = TorchVRNN()
    vrnn_fivo = _build("vrnn", data.info, objective="fivo", particles=4)
    hand_fivo = TorchVRNN()
    cases["vrnn elbo"] = {"deepgm": lambda: vrnn.train_step(batch),
                          "hand-written PyTorch": step_fn(list(hand_vrnn.parameters()),
                                                          lambda: hand_vrnn.loss(x, mask) / len(x))}
    cases["vrnn fivo K=4"] = {"deepgm": lambda: vrnn_fivo.train_step(batch),
                              "hand-written PyTorch": step_fn(list(hand_fivo.parameters()),
                                                              lambda: hand_fivo.fivo_loss(x, mask, 4) / len(x))}
    dmm = _build("dmm", data.info, anneal_steps=0)  # β = 1, as the references use here
    hand_dmm = TorchDMM()
    pyro_dmm = PyroDMM()
    import pyro

    pyro.enable_validation(False)
    cases["dmm elbo"] = {"deepgm": lambda: dmm.train_step({**batch}),
                         "hand-written PyTorch": step_fn(list(hand_dmm.parameters()),
                                                         lambda: hand_dmm.loss(x, mask, 1.0) / len(x)),
                         "Pyro": step_fn(list(pyro_dmm.module.parameters()),
                                         lambda: pyro_dmm.loss(x, mask, 1.0) / len(x))}
    results = []
    for case, impls in cases.items():
        times: dict[str, list[float]] = {k: [] for k in impls}
        for fn in impls.values():
            for _ in range(args.warmup):
                fn()
        names = list(impls)
        for rnd in range(args.rounds):
            for name in names[rnd % len(names):] + names[:rnd % len(names)]:
                start = time.perf_counter()
                for _ in range(args.steps):
                    impls[name]()
                times[name].append((time.perf_counter() - start) / args.steps)
        base = statistics.median(times["hand-written PyTorch"])
        for name, ts in times.items():
            med = statistics.median(ts)
            q = statistics.quantiles(ts, n=4) if len(ts) > 1 else [med, med, med]
            results.append({"case": case, "implementation": name, "median_s_per_step": med,
                            "iqr_s": [q[0], q[2]], "ratio_to_hand_written": med / base, "rounds": len(ts)})
        print(json.dumps(results[-len(times):]), flush=True)
    result = {"part": "speed", "machine": MACHINE,
              "setup": {"batch": BATCH, "batch_time_steps": int(mask.sum(1).max()), "rounds": args.rounds,
                        "steps_per_round": args.steps, "warmup": args.warmup, "threads": torch.get_num_threads()},
              "rows": results, "loadavg_at_end": list(os.getloadavg())}
    table = ["| model, objective | implementation | ms/step (median) | IQR (ms) | ratio to hand-written |",
             "|---|---|---|---|---|"]
    for r in results:
        table.append(f"| {r['case']} | {r['implementation']} | {1e3 * r['median_s_per_step']:.1f} | "
                     f"{1e3 * r['iqr_s'][0]:.1f}–{1e3 * r['iqr_s'][1]:.1f} | {r['ratio_to_hand_written']:.3f} |")
    _write("speed", result, table)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--part", choices=["dmm", "vrnn", "speed"], required=True)
    p.add_argument("--data-dir", default=None, help="folder holding polyphonic/*.mat (default: $DEEPGM_DATA)")
    p.add_argument("--epochs", type=int, default=40, help="dmm, and vrnn on JSB")
    p.add_argument("--nottingham-epochs", type=int, default=4)
    p.add_argument("--datasets", default="jsb,nottingham", help="vrnn: the sets to train on")
    p.add_argument("--anneal-epochs", type=int, default=10)
    p.add_argument("--particles", type=int, default=4)
    p.add_argument("--eval-particles", type=int, default=32)
    p.add_argument("--eval-repeats", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="a smoke test: 2 epochs, 3 rounds")
    args = p.parse_args()
    if args.quick:
        args.epochs, args.nottingham_epochs, args.rounds, args.eval_repeats, args.eval_particles = 2, 1, 3, 2, 4
    torch.set_num_threads(args.threads)
    global MACHINE
    MACHINE = machine_info(torch.get_num_threads(), REPO)  # at the start: the commit and tree that are measured
    {"dmm": part_dmm, "vrnn": part_vrnn, "speed": part_speed}[args.part](args)


if __name__ == "__main__":
    main()
