#!/usr/bin/env python
"""Per-step training time of the Kingma & Welling VAE: hand-written PyTorch vs Pyro vs Pixyz vs deepgm.

Every implementation starts from the same initial weights, trains on the same (synthetic, binarised,
fixed-seed) batch and does the same work per step: zero_grad, forward, backward, optimizer step (Adam,
lr 1e-3) and one ``.item()`` on the loss. Each step gets a fresh ``x.clone()`` (Pixyz memoises on tensor
identity; all implementations pay the same clone).

Timing: warm-up steps, then ``--rounds`` rounds in which every implementation runs ``--steps`` steps back
to back, in an order rotated each round. Reported: the median over rounds of seconds/step, the IQR, and
the ratio to hand-written PyTorch's median (same sample count K) in the same run.

Run from the repository root with the benchmark virtualenv (see benchmarks/README.md)::

    .venv-bench/bin/python benchmarks/vae_step.py            # full run (~20 min on 2 cores)
    .venv-bench/bin/python benchmarks/vae_step.py --quick    # smoke test (~1-2 min)
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import logging
import os
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch._dynamo
import torch.nn.functional as F
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import RoundLog, Runner, cpu_busy_fraction, machine_info, run_interleaved, summarize, wait_until_idle

D = 784
REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"

StepFn = Callable[[Tensor], float]


# --------------------------------------------------------------------------------------------- configs
@dataclass(frozen=True)
class Config:
    """One benchmark configuration: batch size, latent size z, hidden width h."""

    batch: int
    z: int
    h: int

    @property
    def label(self) -> str:
        return f"B={self.batch} z={self.z} h={self.h}"

    @property
    def key(self) -> str:
        return f"b{self.batch}-z{self.z}-h{self.h}"


FULL_CONFIGS = [Config(128, z, h) for z, h in itertools.product((10, 30), (400, 2000))] + [Config(1, 16, 64)]
QUICK_CONFIGS = [Config(128, 10, 400), Config(1, 16, 64)]


@dataclass(frozen=True)
class Impl:
    """An implementation row: key, human label, sample count K, whether it uses torch.compile."""

    key: str
    label: str
    k: int
    compiled: bool
    family: str  # torch | pyro | pixyz | deepgm

    @property
    def baseline(self) -> str:
        return "torch" if self.k == 1 else f"torch_k{self.k}"


K_MANY = 10
IMPLS = [
    Impl("torch", "PyTorch, hand-written", 1, False, "torch"),
    Impl("torch_compile", "PyTorch, hand-written + torch.compile(loss)", 1, True, "torch"),
    Impl("pyro_trace", "Pyro SVI Trace_ELBO", 1, False, "pyro"),
    Impl("pyro_meanfield", "Pyro SVI TraceMeanField_ELBO (analytic KL)", 1, False, "pyro"),
    Impl("pixyz", "Pixyz 0.3.3 Model.train", 1, False, "pixyz"),
    Impl("deepgm", "deepgm Model.train_step", 1, False, "deepgm"),
    Impl("deepgm_compile", "deepgm Model.train_step, compile=True", 1, True, "deepgm"),
    Impl(f"torch_k{K_MANY}", f"PyTorch, hand-written, K={K_MANY} (vectorised)", K_MANY, False, "torch"),
    Impl(f"pyro_meanfield_k{K_MANY}", f"Pyro TraceMeanField_ELBO, K={K_MANY} vectorised", K_MANY, False, "pyro"),
    Impl(f"pixyz_k{K_MANY}", f"Pixyz 0.3.3, K={K_MANY}", K_MANY, False, "pixyz"),
    Impl(f"deepgm_k{K_MANY}", f"deepgm, E(..., sample_shape={K_MANY})", K_MANY, False, "deepgm"),
    Impl(
        f"deepgm_compile_k{K_MANY}",
        f"deepgm, E(..., sample_shape={K_MANY}), compile=True",
        K_MANY,
        True,
        "deepgm",
    ),
]


# ------------------------------------------------------------------------------------ shared pieces
class Nets(nn.Module):
    """The reference networks whose initial weights every implementation copies."""

    def __init__(self, z: int, h: int) -> None:
        super().__init__()
        self.enc_h = nn.Sequential(nn.Linear(D, h), nn.ReLU())
        self.enc_loc = nn.Linear(h, z)
        self.enc_scale = nn.Linear(h, z)
        self.dec = nn.Sequential(nn.Linear(z, h), nn.ReLU(), nn.Linear(h, D))


def make_reference(cfg: Config, seed: int) -> Nets:
    """Reference nets with seeded default initialisation."""
    torch.manual_seed(seed)
    return Nets(cfg.z, cfg.h)


def make_data(batch: int, seed: int) -> Tensor:
    """A fixed binary batch with some structure: each row is drawn from one of 10 random pixel-probability
    prototypes, so the ELBO actually improves during training."""
    g = torch.Generator().manual_seed(seed + 1)
    protos = torch.rand(10, D, generator=g) ** 3
    which = torch.randint(0, 10, (batch,), generator=g)
    return torch.bernoulli(protos[which], generator=g)


def gaussian_kl_std_normal(loc: Tensor, scale: Tensor) -> Tensor:
    """KL(N(loc, scale^2) || N(0, 1)) summed over the last dim."""
    return 0.5 * (loc.square() + scale.square() - 1.0).sum(-1) - scale.log().sum(-1)


# ---------------------------------------------------------------------------- a. hand-written PyTorch
def build_torch(ref: Nets, cfg: Config, k: int, compiled: bool) -> StepFn:
    """What a user would write by hand: one reparameterised sample (or K, vectorised), closed-form KL."""
    net = copy.deepcopy(ref)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def loss_fn(x: Tensor) -> Tensor:
        hid = net.enc_h(x)
        loc, scale = net.enc_loc(hid), F.softplus(net.enc_scale(hid))
        if k == 1:
            z = loc + scale * torch.randn_like(loc)
            logits = net.dec(z)
            nll = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)
        else:
            z = loc + scale * torch.randn((k, *loc.shape), dtype=loc.dtype)
            logits = net.dec(z)
            nll = F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none")
            nll = nll.sum(-1).mean(0)
        return (gaussian_kl_std_normal(loc, scale) + nll).mean()

    fn = torch.compile(loss_fn) if compiled else loss_fn

    def step(x: Tensor) -> float:
        opt.zero_grad()
        loss = fn(x)
        loss.backward()
        opt.step()
        return loss.item()

    return step


# --------------------------------------------------------------------------------------------- b. Pyro
_PYRO_COUNTER = itertools.count()


def build_pyro(ref: Nets, cfg: Config, k: int, mean_field: bool) -> StepFn:
    """Pyro model/guide with ``pyro.module`` and SVI; the summed ELBO is scaled by 1/B to a batch mean."""
    import pyro
    import pyro.distributions as pdist
    from pyro import poutine
    from pyro.infer import SVI, Trace_ELBO, TraceMeanField_ELBO
    from pyro.optim import Adam

    tag = next(_PYRO_COUNTER)  # distinct names in Pyro's global param store
    net = copy.deepcopy(ref)
    enc = nn.ModuleDict({"h": net.enc_h, "loc": net.enc_loc, "scale": net.enc_scale})
    dec = net.dec
    zeros, ones = torch.zeros(cfg.z), torch.ones(cfg.z)

    def model(x: Tensor) -> None:
        pyro.module(f"decoder{tag}", dec)
        b = x.shape[0]
        with pyro.plate("data", b), poutine.scale(scale=1.0 / b):
            z = pyro.sample("z", pdist.Normal(zeros, ones).to_event(1))
            pyro.sample("x", pdist.Bernoulli(logits=dec(z)).to_event(1), obs=x)

    def guide(x: Tensor) -> None:
        pyro.module(f"encoder{tag}", enc)
        b = x.shape[0]
        with pyro.plate("data", b), poutine.scale(scale=1.0 / b):
            hid = enc["h"](x)
            loc, scale = enc["loc"](hid), F.softplus(enc["scale"](hid))
            pyro.sample("z", pdist.Normal(loc, scale).to_event(1))

    elbo_cls = TraceMeanField_ELBO if mean_field else Trace_ELBO
    elbo = elbo_cls(num_particles=k, vectorize_particles=k > 1, max_plate_nesting=1)
    svi = SVI(model, guide, Adam({"lr": 1e-3}), loss=elbo)

    def step(x: Tensor) -> float:
        return float(svi.step(x))  # SVI.step already returns a Python float (one .item())

    return step


# -------------------------------------------------------------------------------------------- c. Pixyz
def build_pixyz(ref: Nets, cfg: Config, k: int) -> StepFn:
    """Pixyz 0.3.3 Distribution API + Loss API + Model.train. Pixyz's Bernoulli only takes ``probs``."""
    from pixyz.distributions import Bernoulli as PxBernoulli
    from pixyz.distributions import Normal as PxNormal
    from pixyz.losses import Expectation, KullbackLeibler, LogProb
    from pixyz.models import Model as PxModel

    net = copy.deepcopy(ref)

    class Encoder(PxNormal):
        def __init__(self) -> None:
            super().__init__(var=["z"], cond_var=["x"], name="q")
            self.h, self.loc, self.scale = net.enc_h, net.enc_loc, net.enc_scale

        def forward(self, x: Tensor) -> dict[str, Tensor]:
            hid = self.h(x)
            return {"loc": self.loc(hid), "scale": F.softplus(self.scale(hid))}

    class Decoder(PxBernoulli):
        def __init__(self) -> None:
            super().__init__(var=["x"], cond_var=["z"], name="p")
            self.net = net.dec

        def forward(self, z: Tensor) -> dict[str, Tensor]:
            return {"probs": torch.sigmoid(self.net(z))}

    q, p = Encoder(), Decoder()
    prior = PxNormal(
        var=["z"], loc=torch.tensor(0.0), scale=torch.tensor(1.0), features_shape=[cfg.z], name="p_{prior}"
    )
    loss = (KullbackLeibler(q, prior) - Expectation(q, LogProb(p), sample_shape=(k,))).mean()
    model = PxModel(loss, distributions=[p, q], optimizer=torch.optim.Adam, optimizer_params={"lr": 1e-3})

    def step(x: Tensor) -> float:
        return model.train({"x": x}).item()

    return step


# ------------------------------------------------------------------------------------------- d/e. deepgm
def deepgm_available() -> str | None:
    """None if the deepgm core API imports, else the reason it does not."""
    try:
        from deepgm.distributions import Bernoulli, Normal  # noqa: F401
        from deepgm.losses import KL, E, LogProb  # noqa: F401
        from deepgm.models import Model  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - any failure means "not there yet"
        return f"{type(exc).__name__}: {exc}"
    return None


def build_deepgm(ref: Nets, cfg: Config, k: int, compiled: bool) -> StepFn:
    """deepgm, written exactly as in the spec's VAE example."""
    from deepgm.distributions import Bernoulli, Normal
    from deepgm.losses import KL, E, LogProb
    from deepgm.models import Model

    net = copy.deepcopy(ref)

    class Encoder(Normal):
        def __init__(self) -> None:
            super().__init__(var=["z"], cond_var=["x"], name="q")
            self.h = net.enc_h
            self.loc, self.scale = net.enc_loc, net.enc_scale

        def forward(self, x: Tensor) -> dict[str, Tensor]:
            hid = self.h(x)
            return {"loc": self.loc(hid), "scale": F.softplus(self.scale(hid))}

    class Decoder(Bernoulli):
        def __init__(self) -> None:
            super().__init__(var=["x"], cond_var=["z"], name="p")
            self.net = net.dec

        def forward(self, z: Tensor) -> dict[str, Tensor]:
            return {"logits": self.net(z)}

    q, p = Encoder(), Decoder()
    prior = Normal(var=["z"], loc=0.0, scale=1.0, features_shape=[cfg.z], name="p_{prior}")
    expectation = E(q, LogProb(p)) if k == 1 else E(q, LogProb(p), sample_shape=k)
    loss = (KL(q, prior) - expectation).mean()
    model = Model(
        loss,
        distributions=[p, q],
        optimizer=torch.optim.Adam,
        optimizer_params={"lr": 1e-3},
        compile=compiled,
    )

    def step(x: Tensor) -> float:
        return float(model.train_step({"x": x}))

    return step


def build(impl: Impl, ref: Nets, cfg: Config) -> StepFn:
    """Dispatch to the builder of ``impl``."""
    if impl.family == "torch":
        return build_torch(ref, cfg, impl.k, impl.compiled)
    if impl.family == "pyro":
        return build_pyro(ref, cfg, impl.k, mean_field=impl.key.startswith("pyro_meanfield"))
    if impl.family == "pixyz":
        return build_pixyz(ref, cfg, impl.k)
    if impl.family == "deepgm":
        return build_deepgm(ref, cfg, impl.k, impl.compiled)
    raise ValueError(impl.family)


def missing_reason(impl: Impl, deepgm_reason: str | None) -> str | None:
    """Why ``impl`` cannot run here (an optional package is missing), or None."""
    if impl.family == "pyro":
        try:
            import pyro  # noqa: F401
        except ImportError as exc:
            return f"pyro-ppl not installed ({exc})"
    if impl.family == "pixyz":
        try:
            import pixyz  # noqa: F401
        except ImportError as exc:
            return f"pixyz not installed ({exc})"
    if impl.family == "deepgm" and deepgm_reason is not None:
        return f"deepgm core not importable ({deepgm_reason})"
    return None


# ------------------------------------------------------------------------------------------- driver
class _LogCollector(logging.Handler):
    """Collects torch._dynamo warnings (graph breaks, recompile limits) while a row is built."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        first = record.getMessage().strip().splitlines()
        if first:
            self.messages.append(first[0][:300])


def _dynamo_counts() -> dict[str, int]:
    """Totals of the torch._dynamo counters that reveal graph breaks and recompilation."""
    from torch._dynamo.utils import counters

    return {
        "graph_breaks": sum(counters["graph_break"].values()),
        "frames_compiled": counters["frames"]["ok"],
        "unique_graphs": counters["stats"]["unique_graphs"],
    }


def _prepare(impl: Impl, ref: Nets, cfg: Config, x: Tensor, args: argparse.Namespace, row: dict) -> Runner | None:
    """Build ``impl``, take its sanity step and warm-up steps; return its timed runner (None on error)."""
    logger = logging.getLogger("torch._dynamo")
    collector = _LogCollector()
    logger.addHandler(collector)
    before = _dynamo_counts()
    try:
        step = build(impl, ref, cfg)
        # Sanity check, outside the timing: the first step's loss is evaluated on the shared initial
        # weights (before the optimizer update), so all rows should agree up to Monte-Carlo noise.
        torch.manual_seed(args.seed + 7)
        t0 = time.perf_counter()
        row["first_loss"] = step(x.clone())
        row["first_step_s"] = time.perf_counter() - t0  # includes compilation for compiled rows
        t0 = time.perf_counter()
        for _ in range(args.compile_warmup if impl.compiled else args.warmup):
            step(x.clone())
        row["warmup_s"] = time.perf_counter() - t0
    except Exception as exc:  # noqa: BLE001 - report and go on with the other rows
        row["error"] = f"{type(exc).__name__}: {exc}"
        row["traceback"] = traceback.format_exc()
        print(f"  ERROR {impl.key}: {row['error']}", file=sys.stderr, flush=True)
        traceback.print_exc()
        return None
    finally:
        logger.removeHandler(collector)
    if impl.compiled:
        after = _dynamo_counts()
        row["dynamo"] = {k: after[k] - before[k] for k in after}
        row["dynamo_warnings"] = collector.messages
    print(
        f"  built {impl.key}: first-step loss {row['first_loss']:.3f}, first step {row['first_step_s']:.2f} s"
        + (f", dynamo {row['dynamo']}" if impl.compiled else ""),
        flush=True,
    )

    def timed_step(step: StepFn = step) -> float:
        return step(x.clone())

    return Runner(impl.key, timed_step, warmup=0)


def _wait_budgeted(args: argparse.Namespace) -> None:
    """After a disturbed round: wait (up to 120 s, from the --wait-idle budget) for the machine to be idle."""
    if args.wait_idle_left <= 0:
        return
    t0 = time.monotonic()
    wait_until_idle(min(120.0, args.wait_idle_left), quiet=True)
    args.wait_idle_left = max(0.0, args.wait_idle_left - (time.monotonic() - t0))


def run_group(
    cfg: Config, impls: list[Impl], args: argparse.Namespace, deepgm_reason: str | None, rows: dict
) -> dict[str, list]:
    """Build, sanity-check, warm up and time one group of implementations (same K) interleaved.

    torch.compile's caches are reset before each group, so compiled rows of one group do not share
    cache entries (and the recompile limit) with those of another group or configuration.
    """
    torch._dynamo.reset()
    try:
        import pyro

        pyro.clear_param_store()
    except ImportError:
        pass
    ref = make_reference(cfg, args.seed)
    x = make_data(cfg.batch, args.seed)
    runners: list[Runner] = []
    for impl in impls:
        row: dict[str, object] = {"label": impl.label, "k": impl.k, "compiled": impl.compiled}
        rows[impl.key] = row
        reason = missing_reason(impl, deepgm_reason)
        if reason is not None:
            row["skipped"] = reason
            row["skipped_short"] = reason.split(" (")[0]
            print(f"  skip {impl.key}: {reason}", flush=True)
            continue
        runner = _prepare(impl, ref, cfg, x, args, row)
        if runner is not None:
            runners.append(runner)

    before = _dynamo_counts()
    log = RoundLog()
    try:
        log = run_interleaved(
            runners,
            rounds=args.rounds,
            steps=args.steps,
            max_others=args.max_others,
            on_disturbed=lambda: _wait_budgeted(args),
        )
    except Exception as exc:  # noqa: BLE001 - a crash mid-timing invalidates this group only
        print(f"  ERROR while timing: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        traceback.print_exc()
        for runner in runners:
            rows[runner.key]["error"] = f"during timing: {type(exc).__name__}: {exc}"
        runners = []
    after = _dynamo_counts()
    if any(after[k] != before[k] for k in after):
        note = {k: after[k] - before[k] for k in after}
        print(f"  note: torch.compile still compiled during timing: {note}", flush=True)
        for runner in runners:
            if rows[runner.key]["compiled"]:
                rows[runner.key]["dynamo_during_timing_group"] = note

    seen = [v for v in log.others_cpu if v is not None]
    if seen and max(seen) > args.max_others:
        print(
            f"  note: other processes used up to {max(seen):.0%} of the CPUs during some rounds "
            f"(median {statistics.median(seen):.0%}); those rounds are slower for every implementation",
            flush=True,
        )
    for runner in runners:
        rows[runner.key].update(summarize(runner.per_step))
        rows[runner.key]["per_round_s"] = runner.per_step
        rows[runner.key]["last_loss"] = runner.step()
    return {"others_cpu_per_round": log.others_cpu, "discarded_rounds_others_cpu": log.discarded_others_cpu}


def run_config(
    cfg: Config, impls: list[Impl], args: argparse.Namespace, deepgm_reason: str | None
) -> dict[str, object]:
    """All implementations on one configuration, one interleaved group per sample count K."""
    print(f"\n== {cfg.label} ==", flush=True)
    rows: dict[str, dict[str, object]] = {}
    rounds_info: dict[str, dict[str, list]] = {}
    for k in sorted({i.k for i in impls}):
        rounds_info[f"K={k}"] = run_group(cfg, [i for i in impls if i.k == k], args, deepgm_reason, rows)
    for impl in impls:
        row, base = rows[impl.key], rows.get(impl.baseline, {})
        if "median_s" in row and "median_s" in base:
            row["ratio"] = row["median_s"] / base["median_s"]
            paired = [a / b for a, b in zip(row["per_round_s"], base["per_round_s"], strict=True)]
            row["ratio_paired_median"] = statistics.median(paired)
        if "first_loss" in row and "first_loss" in base:
            rel = abs(row["first_loss"] - base["first_loss"]) / abs(base["first_loss"])
            row["first_loss_rel_diff"] = rel
            row["first_loss_consistent"] = rel < 0.05
    return {
        "config": {"batch": cfg.batch, "z": cfg.z, "h": cfg.h},
        "label": cfg.label,
        "rounds": rounds_info,
        "rows": rows,
    }


def markdown(results: list[dict[str, object]], info: dict[str, object], args: argparse.Namespace) -> str:
    """Results as Markdown: a header with the machine and one table per configuration."""
    out = [
        "# VAE training step: time per step",
        "",
        f"- date: {info['date']}; command: `{info['command']}`",
        f"- CPU: {info['cpu_model']} ({info['cpu_count']} cores), torch threads: {info['torch_threads']}",
        (
            f"- torch {info['torch']}, pyro-ppl {info['pyro-ppl']}, pixyz {info['pixyz']}, "
            f"deepgm {info['deepgm']} (commit {str(info['deepgm_git_commit'])[:10]}"
            f"{' + uncommitted changes' if info['deepgm_src_uncommitted_changes'] else ''})"
        ),
        (
            f"- other CPU load: busy fraction before start {_pct(info['cpu_busy_before_start'])}, after end "
            f"{_pct(info['cpu_busy_after_end'])}; load average (1/5/15 min) at start "
            f"{info['loadavg_at_start']}, at end {info['loadavg_at_end']}"
        ),
        (
            f"- {args.rounds} rounds x {args.steps} steps per implementation, interleaved; warm-up "
            f"{args.warmup} (compiled: {args.compile_warmup}) steps. Median over rounds; IQR = q3 - q1 of "
            "the per-round values; ratio = median / hand-written PyTorch median with the same K."
        ),
        "",
    ]
    for res in results:
        out += [f"## {res['label']}", ""]
        groups = res["rounds"].values()
        seen = [v for g in groups for v in g["others_cpu_per_round"] if v is not None]
        redone = sum(len(g["discarded_rounds_others_cpu"]) for g in groups)
        if seen:
            out += [
                f"Other processes' share of the CPUs during the kept rounds: median "
                f"{statistics.median(seen):.0%}, max {max(seen):.0%}; rounds redone because of other "
                f"load: {redone}.",
                "",
            ]
        out += [
            "| implementation | K | median ms/step | IQR ms | x hand-written | first-step loss |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for row in res["rows"].values():
            if "median_s" in row:
                first = f"{row['first_loss']:.2f}"
                if row.get("first_loss_consistent") is False:
                    first += " (!)"
                ratio = f"{row['ratio']:.2f}" if "ratio" in row else "n/a"
                out.append(
                    f"| {row['label']} | {row['k']} | {row['median_s'] * 1e3:.3f} | {row['iqr_s'] * 1e3:.3f} "
                    f"| {ratio} | {first} |"
                )
            else:
                why = row.get("skipped_short") or f"error: {row.get('error')}"
                why = why.replace("|", "\\|").replace("\n", " ")
                out.append(f"| {row['label']} | {row['k']} | - | - | - | {why} |")
        out.append("")
    return "\n".join(out)


def _pct(v: object) -> str:
    return f"{v:.0%}" if isinstance(v, float) else "n/a"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    keys = [i.key for i in IMPLS]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=None, help="timing rounds (default 20; quick 3)")
    ap.add_argument("--steps", type=int, default=None, help="steps per implementation per round (default 20)")
    ap.add_argument("--warmup", type=int, default=None, help="warm-up steps, eager (default 5)")
    ap.add_argument("--compile-warmup", type=int, default=None, help="warm-up steps, compiled (default 15)")
    ap.add_argument("--quick", action="store_true", help="smoke test: 2 configs, few rounds (~1-2 min)")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--max-others",
        type=float,
        default=0.2,
        metavar="FRACTION",
        help="redo a round in which other processes used more than this share of the CPUs (default 0.2)",
    )
    ap.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait up to SECONDS in all (before starting and after disturbed rounds) for other processes "
        "to leave the CPUs idle (default 0: no waiting)",
    )
    ap.add_argument("--configs", default=None, help="comma-separated config keys, e.g. b128-z10-h400,b1-z16-h64")
    ap.add_argument("--only", default=None, help=f"comma-separated implementations out of {','.join(keys)}")
    ap.add_argument("--skip", default="", help="comma-separated implementations to leave out")
    ap.add_argument(
        "--k-many",
        choices=["small", "all", "none"],
        default="small",
        help=f"where to run the K={K_MANY} rows: configs with h<=400 (default), all, none",
    )
    ap.add_argument("--out", type=Path, default=None, help="output path stem (default results/vae_step[_quick])")
    args = ap.parse_args(argv)
    if args.quick:
        defaults = {"rounds": 3, "steps": 5, "warmup": 2, "compile_warmup": 3}
    else:
        defaults = {"rounds": 20, "steps": 20, "warmup": 5, "compile_warmup": 15}
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.out is None:
        args.out = RESULTS / ("vae_step_quick" if args.quick else "vae_step")
    for name in ("only", "skip"):
        chosen = [s for s in (getattr(args, name) or "").split(",") if s]
        unknown = set(chosen) - set(keys)
        if unknown:
            ap.error(f"--{name}: unknown implementation(s) {sorted(unknown)}; choose from {keys}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    configs = QUICK_CONFIGS if args.quick else FULL_CONFIGS
    if args.configs:
        wanted = args.configs.split(",")
        configs = [c for c in FULL_CONFIGS if c.key in wanted]
        if not configs:
            print(f"no config matches {wanted}; known: {[c.key for c in FULL_CONFIGS]}", file=sys.stderr)
            return 2
    only = set(args.only.split(",")) if args.only else None
    skip = set(args.skip.split(",")) if args.skip else set()

    deepgm_reason = deepgm_available()
    if deepgm_reason is not None:
        print(f"note: deepgm core not importable, deepgm rows skipped ({deepgm_reason})", flush=True)
    t0 = time.monotonic()
    busy = wait_until_idle(args.wait_idle) if args.wait_idle > 0 else cpu_busy_fraction()
    args.wait_idle_left = max(0.0, args.wait_idle - (time.monotonic() - t0))
    info = machine_info(args.threads, REPO)
    info["cpu_busy_before_start"] = busy
    if busy is not None and busy > 0.15:
        print(
            f"WARNING: {busy:.0%} of the CPUs were busy with other work at the start; timings on a 2-core "
            "machine shared with another job are unreliable (see --wait-idle)",
            file=sys.stderr,
            flush=True,
        )
    print(f"torch {info['torch']}, {args.threads} threads, CPU {info['cpu_model']}", flush=True)

    results: list[dict[str, object]] = []
    for n, cfg in enumerate(configs, 1):
        impls = [
            i
            for i in IMPLS
            if (only is None or i.key in only)
            and i.key not in skip
            and (i.k == 1 or args.k_many == "all" or (args.k_many == "small" and cfg.h <= 400))
        ]
        results.append(run_config(cfg, impls, args, deepgm_reason))
        md = write_results(results, info, args, complete=n == len(configs))
    print("\n" + md)
    print(f"wrote {args.out.with_suffix('.json')} and {args.out.with_suffix('.md')}")
    return 0


def write_results(
    results: list[dict[str, object]], info: dict[str, object], args: argparse.Namespace, complete: bool
) -> str:
    """Write the JSON and Markdown files (after every configuration, so an interrupted run leaves data)."""
    info["complete"] = complete
    info["cpu_busy_after_end"] = cpu_busy_fraction()
    info["loadavg_at_end"] = [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None
    md = markdown(results, info, args)
    if not complete:
        md = md.replace("\n", "\n\n**Partial: the run has not finished all configurations.**\n", 1)
    doc = {
        "machine": info,
        "settings": {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in vars(args).items()
            if k not in ("out", "wait_idle_left")
        },
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(doc, indent=1, default=str) + "\n")
    args.out.with_suffix(".md").write_text(md + "\n")
    return md


if __name__ == "__main__":
    raise SystemExit(main())
