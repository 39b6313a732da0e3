"""The VAE family at a fixed CPU budget per model: MNIST NLL, M2 with 100 labels, disentanglement on the
library's dSprites-like factor data, multimodal cross-generation, and GMM-prior clustering.

    python benchmarks/vae_zoo.py --data-dir ../shared/data --seconds 60

Every model trains for the same wall-clock budget (``--seconds``, on 2 threads) with Adam; the figures
are therefore early-training figures, far from the published ones after hundreds or thousands of
epochs, which are given beside them for orientation only. Writes ``benchmarks/results/vae_zoo.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from deepgm import zoo
from deepgm.data import DSprites, binarize_fixed, labelled_subset, load_dataset
from deepgm.metrics import active_units, cluster_accuracy, factorvae_score, mutual_information_gap
from deepgm.zoo.gmvae import cluster_of

PUBLISHED = {
    "vae_nll": 86.76,  # Burda et al. 2016, one stochastic layer, after 3280 passes
    "iwae_k5_nll": 85.54,
    "m2_error_100_labels": 0.1197,  # Kingma et al. 2014, M2 alone
}


def train_for(model: Any, batches: Callable[[int], dict[str, torch.Tensor]], seconds: float) -> dict[str, Any]:
    """Train until ``seconds`` have passed; ``batches(step)`` gives the step's batch."""
    start, step, last = time.time(), 0, float("nan")
    while time.time() - start < seconds:
        out = model.train_step(batches(step))
        last = out["loss"] if isinstance(out, dict) else out
        step += 1
    return {"steps": step, "seconds": round(time.time() - start, 1), "last_loss": round(float(last), 3)}


def sampler(data: dict[str, torch.Tensor], batch: int, binarize: bool, seed: int) -> Callable[[int], dict]:
    """Random batches (with dynamic binarisation of ``x`` if asked), seeded."""
    g = torch.Generator().manual_seed(seed)
    n = len(next(iter(data.values())))

    def get(step: int) -> dict[str, torch.Tensor]:
        idx = torch.randint(n, (batch,), generator=g)
        out = {k: v[idx] for k, v in data.items()}
        if binarize:
            out["x"] = torch.bernoulli(out["x"], generator=g)
        return out

    return get


def build(name: str, info: zoo.DataInfo, **options: Any) -> Any:
    entry = zoo.get(name)
    return entry.build(entry.config(**options), info)


def mnist_nll(args: argparse.Namespace, train: dict, test_x: torch.Tensor) -> dict[str, Any]:
    info = zoo.DataInfo("mnist", (784,), 10)
    arch = {"z_dim": 50, "hidden": (200, 200), "activation": "tanh"}
    runs = {
        "vae": ("vae", arch),
        "iwae_k5": ("iwae", {**arch, "k": 5}),
        "iwae_k50": ("iwae", {**arch, "k": 50}),
        "iwae2_k5": ("iwae2", {"k": 5}),
    }
    out = {}
    for label, (name, opts) in runs.items():
        torch.manual_seed(args.seed)
        model = build(name, info, **opts)
        budget = train_for(model, sampler({"x": train["x"]}, 100, True, args.seed), args.seconds)
        model.eval()
        torch.manual_seed(args.seed)
        nll = float(-model.log_likelihood(test_x, k=args.k, chunk=500).mean())
        au = active_units(model.encode(test_x)) if name != "iwae2" else None
        out[label] = {
            "test_nll": round(nll, 2),
            "published": PUBLISHED.get(f"{label}_nll"),
            "active_units": au,
            **budget,
        }
        print(f"  {label}: NLL {nll:.2f}  {budget}", flush=True)
    return out


def m2(args: argparse.Namespace, train: dict, test: dict) -> dict[str, Any]:
    info = zoo.DataInfo("mnist", (784,), 10)
    torch.manual_seed(args.seed)
    entry = zoo.get("m2")
    cfg = entry.config()
    model = entry.build(cfg, info)
    idx = labelled_subset(train["y"], 100, seed=args.seed)
    model.set_labelled(train["x"][idx], train["y"][idx], lambda b: {**b, "x": torch.bernoulli(b["x"])})
    budget = train_for(model, sampler({"x": train["x"]}, 100, True, args.seed), args.seconds * 2)
    model.eval()
    err = 1 - model.accuracy(test["x"], test["y"])
    print(f"  m2: test error {err:.4f}  {budget}", flush=True)
    return {"test_error": round(err, 4), "published": PUBLISHED["m2_error_100_labels"], "labels": 100, **budget}


def disentanglement(args: argparse.Namespace) -> dict[str, Any]:
    ds = DSprites(size=32, n_scale=4, n_rotation=8, n_pos=8, flatten=True)
    info = zoo.DataInfo("dsprites", (1024,))
    data = ds.sample(20000, seed=args.seed)
    evaluation = ds.sample(5000, seed=args.seed + 1)
    opts = {"z_dim": 10, "hidden": (256, 256), "activation": "relu"}
    runs = {
        "vae": ("vae", opts),
        "beta-vae": ("beta-vae", {**opts, "beta": 4.0}),
        "factor-vae": ("factor-vae", {**opts, "gamma": 10.0}),
        "beta-tcvae": ("beta-tcvae", {**opts, "beta": 6.0, "dataset_size": 20000}),
        "dip-vae": ("dip-vae", {**opts, "kind": "ii"}),
        "infovae": ("infovae", opts),
    }
    out = {}
    for label, (name, o) in runs.items():
        torch.manual_seed(args.seed)
        model = build(name, info, **o)
        budget = train_for(model, sampler({"x": data["x"]}, 64, False, args.seed), args.seconds)
        model.eval()
        z = model.encode(evaluation["x"])
        mig = mutual_information_gap(z, evaluation["factors"])

        def with_factor(k: int, n: int, g: torch.Generator) -> torch.Tensor:
            f = torch.stack([torch.randint(s, (n,), generator=g) for s in ds.factor_sizes], 1)
            f[:, k] = torch.randint(ds.factor_sizes[k], (1,), generator=g)
            return ds.render(f)

        score = factorvae_score(model.encode, with_factor, ds.factor_sizes, z.std(0), n_votes=500, seed=args.seed)
        out[label] = {
            "mig": round(mig, 4),
            "factorvae_score": round(score, 4),
            "active_units": active_units(z),
            **budget,
        }
        print(f"  {label}: MIG {mig:.3f} FactorVAE score {score:.3f}  {budget}", flush=True)
    return out


class Classifier(nn.Module):
    """The MNIST classifier that judges label-conditional generations."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def train_classifier(train: dict, seconds: float, seed: int) -> Classifier:
    torch.manual_seed(seed)
    clf = Classifier()
    opt = torch.optim.Adam(clf.parameters(), lr=1e-3)
    get = sampler(train, 128, False, seed)
    start = time.time()
    while time.time() - start < seconds:
        b = get(0)
        loss = nn.functional.cross_entropy(clf(b["x"]), b["y"])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return clf


def multimodal(args: argparse.Namespace, train: dict, test: dict, clf: Classifier) -> dict[str, Any]:
    info = zoo.DataInfo("mnist", (784,), 10)
    out = {}
    for name in ("jmvae", "mvae", "mmvae"):
        torch.manual_seed(args.seed)
        model = build(name, info)
        budget = train_for(model, sampler({"x": train["x"], "y": train["y"]}, 100, True, args.seed), args.seconds)
        model.eval()
        x_to_y = model.accuracy(test["x"], test["y"])
        labels = torch.arange(1000) % 10
        torch.manual_seed(args.seed)
        y_to_x = float((clf(model.y_to_x(labels, mean=False)).argmax(-1) == labels).float().mean())
        xs, ys = model.generate_pairs(1000)
        joint = float((clf(xs).argmax(-1) == ys).float().mean())
        out[name] = {
            "image_to_label_accuracy": round(x_to_y, 4),
            "label_to_image_accuracy": round(y_to_x, 4),
            "joint_coherence": round(joint, 4),
            **budget,
        }
        print(f"  {name}: x→y {x_to_y:.3f} y→x {y_to_x:.3f} joint {joint:.3f}  {budget}", flush=True)
    return out


def cvae(args: argparse.Namespace, train: dict, test: dict, clf: Classifier) -> dict[str, Any]:
    """Label-conditional generation by the CVAE, judged by the benchmark's own classifier."""
    info = zoo.DataInfo("mnist", (784,), 10)
    torch.manual_seed(args.seed)
    model = build("cvae", info, z_dim=20, hidden=(256, 256))
    budget = train_for(model, sampler({"x": train["x"], "y": train["y"]}, 100, True, args.seed), args.seconds)
    model.eval()
    labels = torch.arange(1000) % 10
    torch.manual_seed(args.seed)
    acc = float((clf(model.generate(1000, y=labels)).argmax(-1) == labels).float().mean())
    nll = float(-model.log_likelihood(test["x"][:200], k=500, chunk=500, y=test["y"][:200]).mean())
    print(f"  cvae: label-conditional accuracy {acc:.3f}, NLL(x|y) k=500 {nll:.2f}  {budget}", flush=True)
    return {"label_conditional_accuracy": round(acc, 4), "test_nll_given_label_k500_200_images": round(nll, 2),
            **budget}


def gmm(args: argparse.Namespace, train: dict, test: dict) -> dict[str, Any]:
    info = zoo.DataInfo("mnist", (784,), 10)
    torch.manual_seed(args.seed)
    model = build("gmm-vae", info, z_dim=10, hidden=(500, 500))
    budget = train_for(model, sampler({"x": train["x"]}, 100, True, args.seed), args.seconds)
    model.eval()
    acc = cluster_accuracy(cluster_of(model, test["x"]), test["y"])
    print(f"  gmm-vae: cluster accuracy {acc:.3f}  {budget}", flush=True)
    return {"cluster_accuracy": round(acc, 4), "components": 10, **budget}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default=os.environ.get("DEEPGM_DATA"))
    ap.add_argument("--seconds", type=float, default=60.0, help="training budget per model (M2: twice)")
    ap.add_argument("--k", type=int, default=5000, help="importance samples for the NLL")
    ap.add_argument("--test-n", type=int, default=500, help="test images for the NLL")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", nargs="*", default=None, help="sections to run")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "vae_zoo.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    start = time.time()
    train = load_dataset("mnist", "train+valid", args.data_dir, flatten=True).batch()
    test = load_dataset("mnist", "test", args.data_dir, flatten=True).batch()
    test = {"x": binarize_fixed(test["x"], seed=123), "y": test["y"]}
    cache: dict[str, Classifier] = {}

    def classifier() -> Classifier:
        if "clf" not in cache:
            binary = torch.bernoulli(train["x"], generator=torch.Generator().manual_seed(1))
            cache["clf"] = train_classifier({"x": binary, "y": train["y"]}, args.seconds, args.seed)
            cache["clf"].eval()
            acc = float((cache["clf"](test["x"]).argmax(-1) == test["y"]).float().mean())
            print(f"  judge classifier: test accuracy {acc:.3f}", flush=True)
            results.setdefault("judge_classifier", {"test_accuracy": round(acc, 4), "seconds": args.seconds})
        return cache["clf"]

    results: dict[str, Any] = {}
    sections: dict[str, Callable[[], dict[str, Any]]] = {
        "mnist_nll": lambda: mnist_nll(args, train, test["x"][: args.test_n]),
        "m2": lambda: m2(args, train, test),
        "disentanglement": lambda: disentanglement(args),
        "multimodal": lambda: multimodal(args, train, test, classifier()),
        "cvae": lambda: cvae(args, train, test, classifier()),
        "gmm_prior": lambda: gmm(args, train, test),
    }
    for name, run in sections.items():
        if args.only and name not in args.only:
            continue
        print(name, flush=True)
        results[name] = run()
    out = {
        "command": " ".join(["python", *sys.argv]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {"torch": torch.__version__, "threads": args.threads, "platform": platform.platform()},
        "budget_seconds_per_model": args.seconds,
        "nll": {"test_images": args.test_n, "k": args.k},
        "published": PUBLISHED,
        "results": results,
        "total_seconds": round(time.time() - start, 1),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out} in {out['total_seconds']} s")


if __name__ == "__main__":
    main()
