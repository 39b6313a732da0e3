"""DDPM on MNIST at a stated CPU budget: deepgm's DDPM beside the same U-Net trained through diffusers'
``DDPMScheduler``, at equal wall-clock training time.

    python benchmarks/ddpm.py --data-dir ../shared/data/mnist       # → benchmarks/results/ddpm.json (+ .md)
    python benchmarks/ddpm.py --smoke                               # < 1 min → results/ddpm_smoke.json

Both implementations train the same U-Net (deepgm.nn.UNet, base width ``--channels``, channel
multipliers 1, 2, 2, self-attention at 7×7; the same initial weights) with Adam (lr 2e-4, gradient norm
clipped at 1), batches of ``--batch`` grey MNIST images in [-1, 1], T = 1000, β linear from 1e-4 to 0.02,
for ``--seconds`` of training each on ``--threads`` threads:

* deepgm: ``zoo.get("ddpm")`` with ``objective="simple"``: ``E_{t,ε}‖ε - ε_θ(x_t, t)‖²`` summed over pixels;
* diffusers: ``DDPMScheduler.add_noise`` and ``F.mse_loss`` (the mean over pixels; with Adam the scale of
  the loss barely matters), the network called at ``t + 1`` (diffusers counts steps from 0, deepgm from 1).

Reported for each: training steps and seconds per step (the median of the per-step times after 5 warm-up
steps), MNIST-FID and MNIST-IS (the packaged classifier of ``deepgm.metrics.mnist``) of ``--fid-samples``
draws by deterministic DDIM (η = 0, ``--sample-steps`` steps; diffusers' ``DDIMScheduler`` for the diffusers
model) against the 10,000 test images, and the variational bound in bits/dim on the first
``--bound-images`` test images, computed by deepgm for both networks (the bound is a property of the
network and the schedule, which are the same): exact over all t, one draw of x_t per term.
Ho et al.'s CIFAR-10 figures are listed beside ours for orientation only (other data, 800k steps on TPUs).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

import deepgm.zoo.ddpm  # noqa: F401  (registers the model)
from deepgm import zoo
from deepgm.data import load_splits
from deepgm.distributions.diffusion import DiffusionProcess, ImageNoisePredictor
from deepgm.metrics.mnist import mnist_scores
from deepgm.models import DDPM

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import machine_info  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = {"dataset": "CIFAR-10 (32×32×3), not MNIST: for orientation only", "fid": 3.17,
             "nll_bits_per_dim_bound": 3.70, "source": "Ho et al. 2020, Table 1 (L_simple; the bound ≤ 3.75 with "
             "L_simple, 3.70 with the true bound objective)", "training": "800k steps, batch 128, TPU v3-8"}


def _batches(x: torch.Tensor, batch: int, seed: int) -> Any:
    g = torch.Generator().manual_seed(seed)
    while True:
        yield x[torch.randint(len(x), (batch,), generator=g)]


def _train(step: Any, seconds: float, warmup: int = 5) -> dict[str, Any]:
    """Call ``step()`` for ``seconds`` of wall time; the steps taken and the per-step times."""
    times: list[float] = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or len(times) < warmup + 1:
        t0 = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - t0)
    return {"steps": len(times), "train_seconds": round(time.perf_counter() - start, 1),
            "seconds_per_step": statistics.median(times[warmup:]), "last_loss": float(loss)}


def _deepgm(args: argparse.Namespace, x_train: torch.Tensor) -> tuple[DDPM, dict[str, Any]]:
    entry = zoo.get("ddpm")
    cfg = entry.config(channels=args.channels, sample_steps=args.sample_steps, fid_samples=args.fid_samples,
                       bound_images=args.bound_images)
    torch.manual_seed(args.seed)
    model = entry.build(cfg, zoo.DataInfo("mnist", (784,), 10))
    batches = _batches(x_train, args.batch, args.seed)
    return model, _train(lambda: model.train_step({"x": next(batches)}), args.seconds)


def _diffusers(args: argparse.Namespace, x_train: torch.Tensor, init: torch.nn.Module) -> tuple[Any, dict[str, Any]]:
    from diffusers import DDPMScheduler

    unet = copy.deepcopy(init)
    sched = DDPMScheduler(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule="linear")
    opt = torch.optim.Adam(unet.parameters(), lr=2e-4)
    batches = _batches(x_train, args.batch, args.seed)

    def step() -> float:
        x0 = next(batches).reshape(-1, 1, 28, 28) * 2 - 1
        noise = torch.randn_like(x0)
        t = torch.randint(0, 1000, (len(x0),))
        loss = F.mse_loss(unet(sched.add_noise(x0, noise, t), t + 1), noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        return loss.item()

    return unet, _train(step, args.seconds)


@torch.no_grad()
def _diffusers_samples(unet: torch.nn.Module, n: int, steps: int, batch: int = 250) -> torch.Tensor:
    from diffusers import DDIMScheduler

    sched = DDIMScheduler(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule="linear",
                          clip_sample=True, set_alpha_to_one=True)
    sched.set_timesteps(steps)
    out = []
    unet.eval()
    for i in range(0, n, batch):
        x = torch.randn(min(batch, n - i), 1, 28, 28)
        for t in sched.timesteps:
            eps = unet(x, torch.full((len(x),), int(t) + 1))
            x = sched.step(eps, t, x, eta=0.0).prev_sample
        out.append(((x.clamp(-1, 1) + 1) / 2).reshape(len(x), -1))
    return torch.cat(out)


def _score(samples: torch.Tensor, test: torch.Tensor) -> dict[str, float]:
    s = mnist_scores(samples, test)
    return {"mnist_fid": s["mnist_fid"], "mnist_is": s["mnist_is"]}


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    data = load_splits("mnist", args.data_dir, "none", "grey")
    x_train, x_test = data.train["x"], data.test["x"]
    if args.smoke:
        x_test = x_test[:500]
    t_draws = args.bound_t
    results: dict[str, Any] = {}

    print(f"deepgm: training {args.seconds:.0f} s", file=sys.stderr, flush=True)
    model, stats = _deepgm(args, x_train)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    samples = model.generate(args.fid_samples, steps=args.sample_steps)
    stats["sampling_seconds"] = round(time.perf_counter() - t0, 1)
    stats.update(_score(samples, x_test))
    bound = model.bound(x_test[: args.bound_images], t_draws)
    stats["test_bits_per_dim_bound"] = model.bits(bound["total"])
    results["deepgm"] = stats

    try:
        import diffusers
    except ImportError:
        results["diffusers"] = {"skipped": "diffusers is not installed (benchmarks/requirements.txt)"}
    else:
        print(f"diffusers {diffusers.__version__}: training {args.seconds:.0f} s", file=sys.stderr, flush=True)
        torch.manual_seed(args.seed)
        fresh = zoo.get("ddpm").build(zoo.get("ddpm").config(channels=args.channels),
                                      zoo.DataInfo("mnist", (784,), 10))
        eps = fresh.process.eps_model
        assert isinstance(eps, ImageNoisePredictor)
        unet, dstats = _diffusers(args, x_train, eps.net)
        torch.manual_seed(0)
        t0 = time.perf_counter()
        dsamples = _diffusers_samples(unet, args.fid_samples, args.sample_steps)
        dstats["sampling_seconds"] = round(time.perf_counter() - t0, 1)
        dstats.update(_score(dsamples, x_test))
        same = DDPM(DiffusionProcess(model.process.schedule, ImageNoisePredictor(unet, (1, 28, 28)), 784))
        dstats["test_bits_per_dim_bound"] = same.bits(same.bound(x_test[: args.bound_images], t_draws)["total"])
        dstats["version"] = diffusers.__version__
        results["diffusers"] = dstats

    return {
        "machine": machine_info(args.threads, ROOT),
        "protocol": {
            "data": "MNIST grey levels (pixel/255), scaled to [-1, 1] by the model; 60,000 training images, "
                    f"{len(x_test)} test images for FID",
            "budget": f"{args.seconds:.0f} s of training per implementation on {args.threads} threads",
            "network": f"deepgm.nn.UNet(base {args.channels}, mults 1,2,2, attention at 7x7), same init for both",
            "optimiser": "Adam lr 2e-4, grad-norm clip 1, batch " + str(args.batch),
            "schedule": "T=1000, linear beta 1e-4..0.02, sigma_t^2 = beta_t",
            "fid": f"{args.fid_samples} samples, deterministic DDIM (eta=0) over {args.sample_steps} steps, against "
                   "the test images; MNIST-FID of deepgm.metrics.mnist (packaged classifier)",
            "bound": (f"variational bound in bits/dim on the first {args.bound_images} test images, exact sum over "
                      "all t, one x_t draw per term" if t_draws is None else
                      f"bound on {args.bound_images} test images with {t_draws} uniform draws of t per image"),
        },
        "results": results,
        "published_cifar10_for_orientation": PUBLISHED,
    }


def markdown(report: dict[str, Any]) -> str:
    rows = ["| implementation | steps | s/step | MNIST-FID | MNIST-IS | bound (bits/dim) |",
            "|---|---|---|---|---|---|"]
    for name, r in report["results"].items():
        if "skipped" in r:
            rows.append(f"| {name} | skipped: {r['skipped']} | | | | |")
            continue
        rows.append(f"| {name} | {r['steps']} | {r['seconds_per_step']:.3f} | {r['mnist_fid']:.2f} | "
                    f"{r['mnist_is']:.2f} | {r['test_bits_per_dim_bound']:.3f} |")
    pub = report["published_cifar10_for_orientation"]
    rows.append(f"| Ho et al. 2020 (CIFAR-10, orientation only) | 800k | | FID {pub['fid']} | | ≤ "
                f"{pub['nll_bits_per_dim_bound']} |")
    p, m = report["protocol"], report["machine"]
    lines = ["# DDPM on MNIST", "", *rows, "", *[f"- {k}: {v}" for k, v in p.items()], "",
             f"Command `{m['command']}` on {m['cpu_model']} ({m['torch_threads']} threads), torch {m['torch']}, "
             f"deepgm commit {m['deepgm_git_commit']} (uncommitted changes in src: "
             f"{m['deepgm_src_uncommitted_changes']}), {m['date']}, load at start {m['loadavg_at_start']}."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=None, help="the folder of MNIST's IDX files (default: $DEEPGM_DATA)")
    ap.add_argument("--seconds", type=float, default=900.0, help="training budget per implementation")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--channels", type=int, default=32)
    ap.add_argument("--fid-samples", type=int, default=1000)
    ap.add_argument("--sample-steps", type=int, default=50)
    ap.add_argument("--bound-images", type=int, default=100)
    ap.add_argument("--bound-t", type=int, default=None, help="draws of t per image (default: exact over all t)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--smoke", action="store_true", help="a < 1 min run of every part (numbers meaningless)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if args.smoke:
        args.seconds, args.fid_samples, args.sample_steps, args.bound_images, args.bound_t = 5.0, 50, 4, 2, 3
    out = args.out or ROOT / "benchmarks" / "results" / ("ddpm_smoke.json" if args.smoke else "ddpm.json")
    report = run(args)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
