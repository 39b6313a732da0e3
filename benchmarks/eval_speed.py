#!/usr/bin/env python
"""Time of the test NLL that every VAE paper reports: k = 5000 importance samples on the 10,000 MNIST test
images, for Burda et al.'s 784-200-200-50 VAE (tanh MLPs, Bernoulli decoder), before and after the rewrite
of ``deepgm.models.likelihood.log_likelihood``.

* **before**: ``VAE.log_likelihood`` and ``log_likelihood`` as they were at commit
  ``4315efbc38886a2f4fdaaebc551948214c00fb28`` (copied below, unchanged but for names): batches of 100
  images, 500 draws at a time, so every pass decodes 50,000 rows, and the memo of the evaluation keeps
  every pass's draws and decoder outputs until the batch is done. ``deepgm eval`` called it with
  ``chunk=min(k, 500)``.
* **after**: ``VAE.log_likelihood(x, k=k)`` of the working tree, as ``deepgm eval`` (``VAE.evaluate``)
  calls it: passes of about 2048 (image, draw) pairs, one encoder pass per image, the Bernoulli
  log-density without the cross-entropy's temporaries.

Both estimate the same quantity with the same estimator. The check: on a subset, the new code run with the
old chunking (100 images × 500 draws) consumes the random stream exactly as the old one does, so the two
must agree to float tolerance (``same_draws_max_abs_diff``); the new default chunking uses the same number of
draws in another order, so it agrees up to Monte Carlo error (``default_layout_mean_diff``).

The weights are briefly trained (``--train-steps``; the cost does not depend on them). MNIST is read from
``--data-dir`` or ``$DEEPGM_DATA/mnist`` and binarised with a fixed seed; without it, synthetic binary
images of the same shape are used (and said so in the JSON).

    .venv/bin/python benchmarks/eval_speed.py --wait-idle 1800    # full: 10,000 images, k = 5000 (~20 min)
    .venv/bin/python benchmarks/eval_speed.py --quick             # 200 images (~1 min)

Writes ``benchmarks/results/eval_speed.json`` (``--quick``: ``eval_speed_quick.json``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import Runner, cpu_busy_fraction, machine_info, run_interleaved, wait_until_idle

from deepgm.data import read_idx
from deepgm.distributions import Bernoulli, Distribution, Env, Normal
from deepgm.errors import ObjectiveError
from deepgm.models import VAE

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
BEFORE_COMMIT = "4315efbc38886a2f4fdaaebc551948214c00fb28"
TARGET_S = 300.0  # the goal for 10,000 images, k = 5000, on 2 cores
X, H, Z = 784, 200, 50
FLOPS_PER_DRAW = 2 * (Z * H + H * H + H * X)  # the decoder's multiply-adds (the encoder runs once per image)


# ------------------------------------------------------------------------------- the old implementation
@torch.no_grad()
def before_log_likelihood(p: Distribution, q: Distribution, inputs: Mapping[str, Any], k: int = 5000,
                          chunk: int = 500) -> torch.Tensor:
    """``deepgm.models.likelihood.log_likelihood`` at commit ``BEFORE_COMMIT``."""
    if k < 1 or chunk < 1:
        raise ObjectiveError(f"log_likelihood: k and chunk must be positive, got k={k}, chunk={chunk}")
    missing = [v for v in q.var if v not in p.var]
    if missing:
        raise ObjectiveError(f"log_likelihood: p must be the joint over the data and {q.var}; "
                             f"{p.prob_text} lacks {missing}")
    env = Env(inputs)
    total: torch.Tensor | None = None
    for start in range(0, k, chunk):
        n = min(chunk, k - start)
        scope = env.child()
        scope.salt = start + 1
        q.draw_into(scope, (n,), None, False)
        part = (p.log_prob_at(scope) - q.log_prob_at(scope)).logsumexp(0)
        total = part if total is None else torch.logaddexp(total, part)
    assert total is not None
    return total - math.log(k)


def before_vae_log_likelihood(model: VAE, x: torch.Tensor, k: int = 5000, chunk: int = 500,
                              batch_size: int = 100) -> torch.Tensor:
    """``VAE.log_likelihood`` at commit ``BEFORE_COMMIT`` (no conditions)."""
    parts = []
    for i in range(0, len(x), batch_size):
        parts.append(before_log_likelihood(model.joint, model.encoder, {"x": x[i:i + batch_size]}, k=k,
                                           chunk=chunk))
    return torch.cat(parts)


# ------------------------------------------------------------------------------------------- the model
class Encoder(nn.Module):
    """784-200-200 tanh, then loc and softplus scale of a 50-dimensional Normal."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(X, H), nn.Tanh(), nn.Linear(H, H), nn.Tanh())
        self.loc, self.scale = nn.Linear(H, Z), nn.Linear(H, Z)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.body(x)
        return {"loc": self.loc(h), "scale": F.softplus(self.scale(h)) + 1e-4}


class Decoder(nn.Module):
    """50-200-200 tanh, then 784 Bernoulli logits."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(Z, H), nn.Tanh(), nn.Linear(H, H), nn.Tanh(), nn.Linear(H, X))

    def forward(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": self.body(z)}


def build_vae(seed: int) -> VAE:
    torch.manual_seed(seed)
    q = Normal(var=["z"], cond_var=["x"], net=Encoder(), name="q")
    p = Bernoulli(var=["x"], cond_var=["z"], net=Decoder(), name="p")
    prior = Normal(var=["z"], loc=0.0, scale=1.0, features_shape=[Z], name="p_{prior}")
    return VAE(q, p, prior, optimizer=torch.optim.Adam, optimizer_params={"lr": 1e-3})


def train(model: VAE, x_train: torch.Tensor, steps: int, seed: int) -> list[float]:
    """``steps`` Adam steps of batch 100 on dynamically binarised training images; a few losses."""
    g = torch.Generator().manual_seed(seed)
    losses = []
    for step in range(steps):
        idx = torch.randint(len(x_train), (100,), generator=g)
        loss = float(model.train_step({"x": torch.bernoulli(x_train[idx], generator=g)}))
        if step % max(1, steps // 5) == 0 or step == steps - 1:
            losses.append(round(loss, 2))
    model.eval()
    return losses


# -------------------------------------------------------------------------------------------- the data
def load_images(data_dir: str | None, n_test: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    """(grey training images, binarised test images, where they came from)."""
    candidates = [Path(data_dir)] if data_dir else []
    if os.environ.get("DEEPGM_DATA"):
        candidates.append(Path(os.environ["DEEPGM_DATA"]))
    for c in candidates:
        for d in (c, c / "mnist"):
            test_file, train_file = d / "t10k-images-idx3-ubyte.gz", d / "train-images-idx3-ubyte.gz"
            if test_file.exists() and train_file.exists():
                x_test = torch.from_numpy(read_idx(test_file)).reshape(-1, X).float() / 255
                x_train = torch.from_numpy(read_idx(train_file)).reshape(-1, X).float() / 255
                x_test = torch.bernoulli(x_test[:n_test], generator=torch.Generator().manual_seed(123))
                return x_train, x_test, str(d)
    g = torch.Generator().manual_seed(seed)
    protos = torch.rand(10, X, generator=g) ** 3  # mostly dark, like digits

    def draw(n: int) -> torch.Tensor:
        return protos[torch.randint(10, (n,), generator=g)]

    return draw(60_000), torch.bernoulli(draw(n_test), generator=g), "synthetic (no MNIST found)"


# ------------------------------------------------------------------------------------------ measuring
def timed(key: str, fn: Callable[[], torch.Tensor], max_others: float) -> dict[str, Any]:
    """One run of ``fn`` (the whole test set), with the other processes' CPU share during it."""
    out: dict[str, torch.Tensor] = {}

    def step() -> float:
        out["value"] = fn()
        return 0.0

    runner = Runner(key, step, warmup=0)
    log = run_interleaved([runner], rounds=1, steps=1, max_others=max_others, max_redo=0)
    others = log.others_cpu[0] if log.others_cpu else None
    values = out["value"]
    return {"seconds": runner.per_step[0], "test_nll": float(-values.mean()), "others_cpu": others,
            "disturbed": others is not None and others > max_others, "values": values}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="200 test images, a 100-image check (~1 min)")
    ap.add_argument("--n", type=int, default=None, help="test images timed (default 10000; quick 200)")
    ap.add_argument("--k", type=int, default=5000, help="importance samples per image (default 5000)")
    ap.add_argument("--check-n", type=int, default=None, help="images of the same-draws check (default 100)")
    ap.add_argument("--train-steps", type=int, default=None, help="Adam steps before timing (default 500)")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    ap.add_argument("--data-dir", default=None, help="folder with the MNIST IDX files (else $DEEPGM_DATA)")
    ap.add_argument("--only", choices=["before", "after"], default=None, help="time one implementation")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-others", type=float, default=0.2, metavar="FRACTION",
                    help="flag a timing during which other processes used more than this share of the CPUs")
    ap.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                    help="wait up to SECONDS before starting for other processes to leave the CPUs idle")
    ap.add_argument("--out", type=Path, default=None, help="output JSON (default results/eval_speed[_quick].json)")
    args = ap.parse_args(argv)
    quick = args.quick
    for name, full, small in (("n", 10_000, 200), ("check_n", 100, 100), ("train_steps", 500, 100)):
        if getattr(args, name) is None:
            setattr(args, name, small if quick else full)
    if args.out is None:
        args.out = RESULTS / ("eval_speed_quick.json" if quick else "eval_speed.json")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    x_train, x_test, source = load_images(args.data_dir, max(args.n, args.check_n), args.seed)
    model = build_vae(args.seed)
    losses = train(model, x_train, args.train_steps, args.seed)
    print(f"data: {source}; trained {args.train_steps} steps (loss {losses[-1] if losses else 'n/a'})", flush=True)

    # the check first (it also warms both paths up): same draws, same value
    sub, k = x_test[: args.check_n], args.k
    torch.manual_seed(args.seed + 1)
    old = before_vae_log_likelihood(model, sub, k=k)
    torch.manual_seed(args.seed + 1)
    same = model.log_likelihood(sub, k=k, chunk=min(k, 500), batch_size=100)
    torch.manual_seed(args.seed + 1)
    default = model.log_likelihood(sub, k=k)
    diff = (old - same).abs()
    check = {
        "images": len(sub), "k": k,
        "same_draws_max_abs_diff": float(diff.max()),
        "same_draws_max_rel_diff": float((diff / old.abs()).max()),
        "same_draws_agree": bool(torch.allclose(old, same, rtol=1e-5, atol=1e-3)),
        "before_test_nll": float(-old.mean()), "after_same_draws_test_nll": float(-same.mean()),
        "after_default_layout_test_nll": float(-default.mean()),
        "default_layout_mean_diff": float((default - old).mean()),
    }
    print(f"check on {len(sub)} images: same draws max |diff| {check['same_draws_max_abs_diff']:.2e} nats "
          f"(agree: {check['same_draws_agree']}); default layout NLL {check['after_default_layout_test_nll']:.3f} "
          f"vs before {check['before_test_nll']:.3f}", flush=True)

    busy = wait_until_idle(args.wait_idle) if args.wait_idle > 0 else cpu_busy_fraction()
    info = machine_info(args.threads, REPO)
    info["cpu_busy_before_start"] = busy
    if busy is not None and busy > 0.15:
        print(f"WARNING: {busy:.0%} of the CPUs were busy with other work at the start; on a 2-core machine "
              "the timings are then unreliable (see --wait-idle)", file=sys.stderr, flush=True)
    x = x_test[: args.n]
    impls = {
        "before": lambda: before_vae_log_likelihood(model, x, k=k, chunk=min(k, 500)),
        "after": lambda: model.log_likelihood(x, k=k),
    }
    results: dict[str, Any] = {}
    for key, fn in impls.items():
        if args.only not in (None, key):
            continue
        print(f"{key}: {len(x)} images, k = {k} ...", flush=True)
        torch.manual_seed(args.seed + 2)
        row = timed(key, fn, args.max_others)
        row.pop("values")
        row["gflops_per_s"] = FLOPS_PER_DRAW * len(x) * k / row["seconds"] / 1e9
        row["seconds_per_10000_images"] = row["seconds"] * 10_000 / len(x)
        results[key] = row
        print(f"{key}: {row['seconds']:.1f} s ({row['gflops_per_s']:.0f} GFLOP/s), test NLL {row['test_nll']:.3f}, "
              f"others used {row['others_cpu'] if row['others_cpu'] is None else round(row['others_cpu'], 2)} "
              "of the CPUs", flush=True)
    if "before" in results and "after" in results:
        results["speedup"] = results["before"]["seconds"] / results["after"]["seconds"]
    if "after" in results:  # extrapolated linearly when fewer images or another k were timed
        full = results["after"]["seconds_per_10000_images"] * 5000 / k
        results["after_seconds_for_10000_images_k5000"] = full
        results["after_extrapolated"] = len(x) != 10_000 or k != 5000
        results["after_meets_target"] = full <= TARGET_S
    info["loadavg_at_end"] = [round(v, 2) for v in os.getloadavg()]
    info["cpu_busy_after_end"] = cpu_busy_fraction()
    doc = {
        "machine": info,
        "settings": {key: (str(v) if isinstance(v, Path) else v) for key, v in vars(args).items()},
        "before_commit": BEFORE_COMMIT,
        "model": {"architecture": "784-200-200-50 tanh, Bernoulli decoder, N(0, I) prior",
                  "decoder_flops_per_draw": FLOPS_PER_DRAW, "train_steps": args.train_steps,
                  "train_losses": losses},
        "data": {"source": source, "test_images": len(x), "k": k},
        "target_seconds_for_10000_images_k5000": TARGET_S,
        "check": check,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
