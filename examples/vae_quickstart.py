"""The seed's VAE, written as its objective, trained on scikit-learn's bundled 8×8 digits.

Run: ``.venv/bin/python examples/vae_quickstart.py`` (after ``bash scripts/setup.sh``). The quickstart,
``bash scripts/quickstart.sh``, trains the zoo's VAE through the command line (``deepgm train vae``); this
file is the same kind of model written with the library directly. Writes ``runs/vae_quickstart/``: the
objective in LaTeX and the test ELBO and importance-sampled log-likelihood (``metrics.json``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

from deepgm.distributions import Bernoulli, Normal
from deepgm.losses import ELBO, KL, E, LogProb
from deepgm.models import Model, log_likelihood


class Encoder(Normal):  # q(z|x)
    def __init__(self) -> None:
        super().__init__(var=["z"], cond_var=["x"], name="q")
        self.h = nn.Sequential(nn.Linear(64, 128), nn.ReLU())
        self.loc, self.scale = nn.Linear(128, 4), nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.h(x)
        return {"loc": self.loc(h), "scale": F.softplus(self.scale(h))}


class Decoder(Bernoulli):  # p(x|z)
    def __init__(self) -> None:
        super().__init__(var=["x"], cond_var=["z"], name="p")
        self.net = nn.Sequential(nn.Linear(4, 128), nn.ReLU(), nn.Linear(128, 64))

    def forward(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": self.net(z)}


def main(epochs: int = 60, out: Path = Path("runs/vae_quickstart")) -> dict[str, float]:
    torch.manual_seed(0)
    images = torch.tensor(load_digits().data, dtype=torch.float32) / 16.0  # grey levels in [0, 1]
    perm = torch.randperm(len(images))
    train, test = images[perm[:1500]], images[perm[1500:]]

    q, p = Encoder(), Decoder()
    prior = Normal(var=["z"], loc=0.0, scale=1.0, features_shape=[4], name="p_{prior}")
    loss = (KL(q, prior) - E(q, LogProb(p))).mean()
    print("objective:", loss)
    model = Model(loss, distributions=[p, q], optimizer=torch.optim.Adam, optimizer_params={"lr": 1e-3})

    start = time.time()
    for epoch in range(epochs):
        order = torch.randperm(len(train))
        total = 0.0
        for i in range(0, len(train), 100):
            total += model.train_step({"x": train[order[i:i + 100]]}) * len(order[i:i + 100])
        if epoch % 10 == 9 or epoch == epochs - 1:
            print(f"epoch {epoch + 1:3d}  train loss {total / len(train):8.3f}  test loss "
                  f"{model.eval_step({'x': test}):8.3f}")

    with torch.no_grad():
        test_elbo = float(ELBO(p * prior, q)({"x": test}).mean())
        test_ll = float(log_likelihood(p * prior, q, {"x": test}, k=1000, chunk=250).mean())
    metrics = {"test_elbo": test_elbo, "test_log_likelihood_k1000": test_ll,
               "epochs": epochs, "seconds": round(time.time() - start, 1)}
    out.mkdir(parents=True, exist_ok=True)
    (out / "objective.tex").write_text(loss.to_latex() + "\n")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    model.save(out / "checkpoint.pt")
    print(json.dumps(metrics, indent=2))
    return metrics


if __name__ == "__main__":
    main()
