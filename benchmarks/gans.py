"""Implicit models at a fixed CPU budget: MNIST-FID of the GAN zoo and a VAE, mode coverage on the ring
of 8 Gaussians with and without the mode-collapse cure, and LFVI against rejection ABC on Lotka–Volterra.

    python scripts/train_mnist_classifier.py --data-dir ../shared/data/mnist --out checkpoints/mnist_classifier.pt
    python benchmarks/gans.py --data-dir ../shared/data/mnist --classifier checkpoints/mnist_classifier.pt

MNIST-FID uses the features of the small MNIST classifier (not Inception): the numbers are on a
different scale from Lucic et al.'s (Inception features), which are printed beside them for
orientation only. Every model trains for the same wall-clock budget (``--seconds``) with its zoo
defaults. Writes ``benchmarks/results/gans.json``. ``--quick`` runs a seconds-long smoke version.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time
from pathlib import Path
from typing import Any

import torch

from deepgm.data import load_dataset
from deepgm.data.toy import toy_2d, toy_2d_modes
from deepgm.inference import LFVI, LV_TRUE_LOG_THETA, LotkaVolterra, rejection_abc
from deepgm.metrics.gan import fid, inception_score, load_mnist_classifier, mode_coverage
from deepgm.zoo import gan_basic, gan_dcgan, gan_mmd, vae  # noqa: F401  (registers the models)
from deepgm.zoo.registry import REGISTRY, DataInfo

# Lucic et al. 2018, "Are GANs created equal?", best MNIST FID (Inception features): orientation only
LUCIC_MNIST_FID = {"ns-gan": 6.8, "wgan": 6.7, "wgan-gp": 20.3, "lsgan": 7.8, "vae": 23.8}
MNIST_MODELS = ["gan", "ns-gan", "wgan", "wgan-gp", "lsgan", "dcgan", "gmmn", "vae"]
RING_MODELS = ["gan", "ns-gan", "kl-gan", "wgan", "wgan-gp", "lsgan", "hinge-gan", "f-gan"]


def _build(name: str, info: DataInfo, **overrides: Any) -> Any:
    entry = REGISTRY[name]
    fields = {f.name for f in dataclasses.fields(entry.config)}
    return entry.build(entry.config(**{k: v for k, v in overrides.items() if k in fields}), info)


def mnist_fid(args: argparse.Namespace) -> dict[str, Any]:
    """Train each model for ``args.seconds`` on MNIST ([0, 1] grey values) and score 10k samples."""
    if args.classifier is None or not Path(args.classifier).exists():
        return {"skipped": "no classifier checkpoint; run scripts/train_mnist_classifier.py first"}
    clf = load_mnist_classifier(args.classifier)
    train = load_dataset("mnist", "train", args.data_dir, flatten=True).batch()  # type: ignore[attr-defined]
    test = load_dataset("mnist", "test", args.data_dir, flatten=True).batch()["x"]  # type: ignore[attr-defined]
    n_eval = 1000 if args.quick else 10_000
    info = DataInfo("mnist", (784,), 10, binary=True)
    out: dict[str, Any] = {"reference_test_vs_train": fid(test[:n_eval], train["x"][:n_eval], clf.features)}
    for name in MNIST_MODELS:
        torch.manual_seed(0)
        model = _build(name, info, decoder="bernoulli")
        steps, start = 0, time.time()
        while time.time() - start < args.seconds:
            idx = torch.randint(0, train["x"].shape[0], (64,))
            batch = {"x": train["x"][idx]}
            if name == "vae":
                batch = {"x": torch.bernoulli(batch["x"])}
            model.train_step(batch)
            steps += 1
        with torch.no_grad():
            x = torch.cat([model.generate(1000) for _ in range(n_eval // 1000)]).clamp(0, 1)
        out[name] = {"fid": fid(x, test[:n_eval], clf.features), "inception_score": inception_score(x, clf)[0],
                     "steps": steps, "seconds": args.seconds, "lucic_inception_fid": LUCIC_MNIST_FID.get(name)}
        print(name, out[name], flush=True)
    return out


def ring_coverage(args: argparse.Namespace) -> dict[str, Any]:
    """Mode coverage of 2,500 samples after ``args.ring_steps`` steps of batch ``args.ring_batch``, with and
    without minibatch discrimination, over ``args.seeds`` seeds; components of std ``args.ring_std``."""
    data = toy_2d("8gaussians", 20_000, seed=0, std=args.ring_std)
    modes = toy_2d_modes("8gaussians")
    info = DataInfo("8gaussians", (2,), binary=False)
    out: dict[str, Any] = {"std": args.ring_std}
    for name in args.ring_models.split(","):
        for cure in (False, True) if name in RING_MODELS else (False,):
            rows = []
            start = time.time()
            for seed in range(args.seeds):
                torch.manual_seed(seed)
                model = _build(name, info, z_dim=2, hidden=(128, 128), disc_hidden=(128, 128), lr=1e-3 if
                               name not in ("wgan",) else 5e-4, minibatch_discrimination=cure)
                for _ in range(args.ring_steps):
                    model.train_step({"x": data[torch.randint(0, len(data), (args.ring_batch,))]})
                mc = mode_coverage(model.generate(2500), modes, args.ring_std)
                rows.append({k: mc[k] for k in ("modes_captured", "high_quality", "mode_kl")})
            key = f"{name}+minibatch" if cure else name
            out[key] = {"runs": rows, "mean_modes": sum(r["modes_captured"] for r in rows) / len(rows),
                        "mean_high_quality": sum(r["high_quality"] for r in rows) / len(rows),
                        "seconds_per_step": (time.time() - start) / (args.seeds * args.ring_steps)}
            print(key, out[key]["mean_modes"], round(out[key]["mean_high_quality"], 3), flush=True)
    return out


def lotka_volterra(args: argparse.Namespace) -> dict[str, Any]:
    """LFVI and rejection ABC with the same number of simulations on the observed true-θ data. LFVI
    simulates its pool once (pilot included in the budget) and trains ``args.lv_steps`` steps on it."""
    g = torch.Generator().manual_seed(0)
    budget = args.lv_simulations
    obs_sim = LotkaVolterra()
    s_obs, _ = obs_sim.simulate(LV_TRUE_LOG_THETA[None], generator=g)
    sim = LotkaVolterra()

    def simulate(theta: torch.Tensor) -> torch.Tensor:
        s, ok = sim.simulate(theta)
        return torch.where(ok[:, None], s, torch.nan)

    start = time.time()
    abc = rejection_abc(simulate, sim.sample_prior, s_obs[0], budget, accept=0.005, batch_size=500)
    abc_row = {**abc.summary(0.9), "simulations": sim.calls, "seconds": time.time() - start}
    sim.calls = 0
    start = time.time()
    pilot = min(1000, budget // 10)
    lfvi = LFVI(simulate, sim.sample_prior, 4, 9, pilot=pilot)
    lfvi.fit_pool(budget - pilot, steps=args.lv_steps, batch_size=256, generator=g)
    draws = lfvi.sample(s_obs[0], 5000)
    q = torch.quantile(draws.double(), torch.tensor([0.05, 0.95], dtype=torch.float64), dim=0)
    lfvi_row = {"mean": draws.mean(0).tolist(), "lower": q[0].tolist(), "upper": q[1].tolist(),
                "simulations": sim.calls, "training_steps": args.lv_steps, "seconds": time.time() - start}
    return {"true_log_theta": LV_TRUE_LOG_THETA.tolist(), "abc": abc_row, "lfvi": lfvi_row}


def markdown(result: dict[str, Any]) -> str:
    """The tables of ``result`` (the JSON this script writes) as Markdown."""
    lines: list[str] = []
    fid_rows = result.get("mnist_fid", {})
    if fid_rows and "skipped" not in fid_rows:
        lines += [f"MNIST-FID of the test set against 10,000 training images: "
                  f"{fid_rows['reference_test_vs_train']:.2f} (the floor at this sample size).", "",
                  "| model | steps in budget | MNIST-FID | MNIST-IS | Lucic et al. FID (Inception) |",
                  "|---|---:|---:|---:|---:|"]
        for name in MNIST_MODELS:
            r = fid_rows.get(name)
            if r:
                ref = r.get("lucic_inception_fid")
                lines.append(f"| {name} | {r['steps']} | {r['fid']:.2f} | {r['inception_score']:.2f} | "
                             f"{'–' if ref is None else ref} |")
    def ring_cells(row: dict[str, Any] | None) -> str:
        if row is None:
            return "– | – | –"
        kl = sum(r["mode_kl"] for r in row["runs"]) / len(row["runs"])
        return f"{row['mean_modes']:.1f} | {row['mean_high_quality']:.2f} | {kl:.2f}"

    for ring_key in [k for k in result if k.startswith("ring_8_gaussians")]:
        ring = result[ring_key]
        lines += ["", f"Ring of 8 Gaussians, std {ring.get('std', 0.1)} (means over seeds):", "",
                  "| objective | modes (of 8) | high-quality share | mode KL | + minibatch discrimination: modes "
                  "| high-quality share | mode KL |", "|---|---:|---:|---:|---:|---:|---:|"]
        for name in RING_MODELS + ["gmmn", "mmd-gan"]:
            if name in ring:
                lines.append(f"| {name} | {ring_cells(ring[name])} | {ring_cells(ring.get(f'{name}+minibatch'))} |")
    lv = result.get("lotka_volterra")
    if lv:
        lines += ["", "| parameter | true | ABC mean [90% interval] | LFVI mean [90% interval] |",
                  "|---|---:|---:|---:|"]
        for i, t in enumerate(lv["true_log_theta"]):
            a, f = lv["abc"], lv["lfvi"]
            lines.append(f"| log θ{i + 1} | {t:.2f} | {a['mean'][i]:.2f} [{a['lower'][i]:.2f}, {a['upper'][i]:.2f}]"
                         f" | {f['mean'][i]:.2f} [{f['lower'][i]:.2f}, {f['upper'][i]:.2f}] |")
        lines.append(f"| simulator calls | | {lv['abc']['simulations']} | {lv['lfvi']['simulations']} |")
        lines.append(f"| seconds | | {lv['abc']['seconds']:.0f} | {lv['lfvi']['seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--classifier", default=None)
    ap.add_argument("--seconds", type=float, default=90.0, help="training wall-clock per MNIST model")
    ap.add_argument("--ring-steps", type=int, default=1500)
    ap.add_argument("--ring-batch", type=int, default=64)
    ap.add_argument("--ring-std", type=float, default=0.1, help="std of the ring's components (Metz et al.: 0.02)")
    ap.add_argument("--ring-models", default=",".join(RING_MODELS + ["gmmn", "mmd-gan"]))
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--lv-simulations", type=int, default=10_000)
    ap.add_argument("--lv-steps", type=int, default=3000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", choices=["mnist", "ring", "lv"], default=None)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--report", action="store_true", help="only render --out's JSON as Markdown (.md beside it)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "gans.json")
    args = ap.parse_args()
    if args.report:
        md = markdown(json.loads(args.out.read_text()))
        args.out.with_suffix(".md").write_text(md)
        print(md)
        return 0
    if args.quick:
        args.seconds, args.ring_steps, args.seeds, args.lv_simulations, args.lv_steps = 2.0, 50, 1, 600, 50
    torch.set_num_threads(args.threads)
    # each section is merged into the JSON as soon as it finishes (sections can run as separate commands)
    result: dict[str, Any] = json.loads(args.out.read_text()) if args.out.exists() and args.only else {}
    result.update({"machine": platform.platform(), "torch": torch.__version__})
    ring_key = "ring_8_gaussians" if args.ring_std == 0.1 else f"ring_8_gaussians_std{args.ring_std:g}"
    sections = {"ring": (ring_key, ring_coverage), "lv": ("lotka_volterra", lotka_volterra),
                "mnist": ("mnist_fid", mnist_fid)}
    for name, (key, run) in sections.items():
        if args.only in (None, name):
            value = run(args)
            value["config"] = {k: str(v) for k, v in vars(args).items()}
            result[key] = value
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
