"""Flows on the 2-D toys and MNIST: density heat maps, sample grids and inpainting.

Run: ``.venv/bin/python examples/flows_gallery.py --data-dir ../shared/data/mnist --out docs/img``

* ``flows_toys.png``: for moons, 8 Gaussians, checkerboard and pinwheel, the data's histogram beside the
  densities learned by MAF, a neural-spline coupling flow and FFJORD (``--steps`` Adam steps each,
  FFJORD ``--cnf-steps``; built from the zoo and from ``deepgm.flows`` directly).
* ``maf_mnist_samples.png`` and ``maf_mnist_inpainting.png``: MAF trained on dequantised MNIST for
  ``--mnist-seconds`` (skipped without MNIST), 64 samples, and the bottom half of 8 test digits filled
  under its likelihood (rows: truth, observed, conditional mode by Adam, a draw by Langevin MCMC).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from deepgm import viz, zoo
from deepgm.data import DatasetNotFoundError, load_dataset, toy_2d
from deepgm.flows import Flow, RQSplineCoupling, alternating_mask, inpaint, inpaint_sample
from deepgm.models import FlowModel
from deepgm.zoo.flows_common import base_distribution

TOYS = ("moons", "8gaussians", "checkerboard", "pinwheel")


def spline_flow() -> FlowModel:
    """Four rational-quadratic spline couplings on alternating coordinates, written with the library."""
    ts = [RQSplineCoupling(alternating_mask(2, i % 2), bins=8, bound=4.0, hidden=(64, 64)) for i in range(4)]
    return FlowModel(Flow(var=["x"], base=base_distribution("normal", 2), transforms=ts, event_shape=[2]))


def fit(model: FlowModel, x: torch.Tensor, steps: int, batch: int = 256) -> FlowModel:
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        model.train_step({"x": x[torch.randint(0, len(x), (batch,), generator=g)]})
    return model.eval()


def toys(args: argparse.Namespace) -> None:
    info = zoo.DataInfo("toy", (2,), binary=False)
    rows = {}
    for toy in TOYS:
        torch.manual_seed(0)
        x = toy_2d(toy, 20_000, seed=0)
        maf = zoo.get("maf").build(zoo.get("maf").config(layers=5, hidden=(64, 64), batch_norm=False), info)
        ffjord = zoo.get("ffjord").build(zoo.get("ffjord").config(hidden=(64, 64), steps=8), info)
        fitted = {"MAF": fit(maf, x, args.steps), "spline coupling": fit(spline_flow(), x, args.steps),
                  "FFJORD": fit(ffjord, x, args.cnf_steps)}
        rows[toy] = {"data": x, **{k: (lambda pts, m=m: m.log_likelihood(pts, batch_size=8192))
                                   for k, m in fitted.items()}}
        print(toy, {k: round(float(-m.log_likelihood(toy_2d(toy, 2000, seed=1)).mean()), 3)
                    for k, m in fitted.items()}, "test NLL (nats)", flush=True)
    print(viz.save_density_panels_2d(rows, args.out / "flows_toys.png", resolution=120))


def mnist(args: argparse.Namespace) -> None:
    try:
        train = load_dataset("mnist", "train", args.data_dir, flatten=True).batch()["x"]  # type: ignore[attr-defined]
        test = load_dataset("mnist", "test", args.data_dir, flatten=True).batch()["x"]  # type: ignore[attr-defined]
    except DatasetNotFoundError as err:
        print(f"skipping MNIST: {err}")
        return
    torch.manual_seed(0)
    entry = zoo.get("maf")
    model = entry.build(entry.config(logit_alpha=1e-6), zoo.DataInfo("mnist", (784,), 10, binary=True))
    g, start, steps = torch.Generator().manual_seed(0), time.time(), 0
    while time.time() - start < args.mnist_seconds:
        model.train_step({"x": train[torch.randint(0, len(train), (100,), generator=g)]})
        steps += 1
    model.eval()
    print(f"MAF on MNIST: {steps} steps, test bits/dim {model.bits_per_dim(test[:1000]):.3f} (first 1000 images)")
    viz.save_image_grid(model.generate(64).clamp(0, 1), args.out / "maf_mnist_samples.png", image_shape=(1, 28, 28))
    x = test[:8]
    mask = torch.ones(1, 28, 28)
    mask[:, 14:] = 0
    mask = mask.reshape(-1)
    mode = inpaint(model.flow, x, mask, steps=300)
    draw, acceptance = inpaint_sample(model.flow, x, mask, steps=300, init=mode)
    rows = torch.cat([x, x * mask + 0.5 * (1 - mask), mode, draw])
    print(f"inpainting: MALA acceptance {acceptance:.2f}")
    print(viz.save_image_grid(rows, args.out / "maf_mnist_inpainting.png", nrow=8, image_shape=(1, 28, 28)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--out", type=Path, default=Path("runs/flows_gallery"))
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--cnf-steps", type=int, default=1000)
    ap.add_argument("--mnist-seconds", type=float, default=300.0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    toys(args)
    mnist(args)


if __name__ == "__main__":
    main()
