"""Train the small MNIST classifier whose features define MNIST-FID and whose softmax defines MNIST-IS.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/train_mnist_classifier.py --data-dir ../shared/data/mnist

Writes the ``state_dict`` of :class:`deepgm.nn.MNISTClassifier` (load it with
``deepgm.metrics.gan.load_mnist_classifier(path)``) and ``PATH.json`` with its test accuracy, the exact
command, the seed, the torch version and the file's SHA-256. The default ``--out`` is the copy shipped
inside the package (``src/deepgm/metrics/weights/mnist_classifier.pt``), which ``deepgm eval`` uses for
MNIST-FID and MNIST-IS without downloading anything. The images are the loader's [0, 1] grey values
(not binarised), as GAN samples are.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from deepgm.data import load_dataset
from deepgm.nn import MNISTClassifier

PACKAGED = Path(__file__).resolve().parents[1] / "src" / "deepgm" / "metrics" / "weights" / "mnist_classifier.pt"


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=PACKAGED)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    train = load_dataset("mnist", "train+valid", args.data_dir, flatten=True).batch()  # type: ignore[attr-defined]
    test = load_dataset("mnist", "test", args.data_dir, flatten=True).batch()  # type: ignore[attr-defined]
    net = MNISTClassifier()
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    n = train["x"].shape[0]
    start = time.time()
    acc = float("nan")
    for epoch in range(args.epochs):
        net.train()
        order = torch.randperm(n)
        for i in range(0, n - args.batch_size + 1, args.batch_size):
            idx = order[i:i + args.batch_size]
            loss = F.cross_entropy(net(train["x"][idx]), train["y"][idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            pred = torch.cat([net(test["x"][j:j + 1000]).argmax(1) for j in range(0, len(test["x"]), 1000)])
        acc = float((pred == test["y"]).float().mean())
        print(f"epoch {epoch + 1}: test accuracy {acc:.4f} ({time.time() - start:.0f} s)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), args.out)
    info = {"test_accuracy": acc, "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
            "seed": args.seed, "train_images": n, "seconds": round(time.time() - start, 1),
            "torch": torch.__version__, "sha256": hashlib.sha256(args.out.read_bytes()).hexdigest(),
            "command": "OMP_NUM_THREADS=1 .venv/bin/python " + shlex.join(sys.argv)}
    args.out.with_suffix(".json").write_text(json.dumps(info, indent=2) + "\n")
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
