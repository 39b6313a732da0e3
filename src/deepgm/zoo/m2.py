"""Semi-supervised M2 (Kingma et al. 2014): ``p(x|y,z) p(y) p(z)`` with ``q(z|x,y) q(y|x)``.

Labelled pairs: ``L(x,y) = D_KL[q(z|x,y)||p(z)] - E_{q(z|x,y)}[log p(x|y,z)] - log p(y)``;
unlabelled images: ``U(x) = Σ_y q(y|x) L(x,y) - H[q(y|x)]`` (the sum over y is exact, vectorised);
the classifier also learns from the labels: ``α (-log q(y|x))``.
``train_step`` takes unlabelled images and pairs them with a draw from the labelled subset. The objective is
``mean(L + α CE) + mean(U)``: the unlabelled term is the labelled one with ``x`` renamed ``x_u``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from torch.distributions import OneHotCategorical

from deepgm.data import DataInfo
from deepgm.distributions import Bernoulli, Categorical, Distribution, Normal
from deepgm.losses import KL, E, Entropy, Enumerate, LogProb
from deepgm.models import Model
from deepgm.nn import MLP, LogitsHead, NormalHead, OneHotInputs
from deepgm.zoo.options import non_negative, option
from deepgm.zoo.registry import register


@dataclass
class M2Config:
    """Network sizes, the classification weight α, and the number of labels (balanced by class)."""

    z_dim: int = 50
    hidden: tuple[int, ...] = (500,)
    activation: str = "softplus"
    # weight of -log q(y|x) on labelled pairs (Kingma et al.: 0.1 N / n_labels)
    alpha: float = option(60.0, non_negative())
    n_labels: int = 100
    labelled_batch: int = 100
    lr: float = 3e-4


class M2(Model):
    """The M2 model: ``train_step`` takes a batch of unlabelled images ``{"x": ...}`` and pairs it with
    a batch drawn from the labelled subset set by :meth:`set_labelled`."""

    def __init__(self, loss: Any, dists: list[Any], classifier: Categorical, decoder: Bernoulli,
                 prior: Normal, labelled_batch: int, lr: float) -> None:
        super().__init__(loss, dists, optimizer=torch.optim.Adam, optimizer_params={"lr": lr})
        self.labelled_batch = labelled_batch
        self._labelled: dict[str, torch.Tensor] | None = None
        self._transform: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None
        self._classifier, self._decoder, self._prior = classifier, decoder, prior

    def set_labelled(self, x: torch.Tensor, y: torch.Tensor,
                     transform: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None) -> None:
        """The labelled subset (and the batch transform, e.g. dynamic binarisation, applied to its draws)."""
        self._labelled = {"x": x, "y": y}
        self._transform = transform

    def _with_labelled(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        if "y" in inputs and "x_u" not in inputs:  # a labelled batch (validation): use it for both terms
            return {**inputs, "x_u": inputs["x"]}
        if self._labelled is None:
            raise ValueError("M2: call set_labelled(x, y) with the labelled subset before training")
        n = len(self._labelled["y"])
        idx = torch.randint(n, (min(self.labelled_batch, n),))
        lab = {k: v[idx] for k, v in self._labelled.items()}
        if self._transform is not None:
            lab = self._transform(lab)
        return {"x_u": inputs["x"], "x": lab["x"], "y": lab["y"]}

    def train_step(self, inputs: Mapping[str, Any], **params: Any) -> float | dict[str, float]:
        return super().train_step(self._with_labelled(inputs), **params)

    def eval_step(self, inputs: Mapping[str, Any], **params: Any) -> float:
        return super().eval_step(self._with_labelled(inputs), **params)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """The classifier's most probable class."""
        return cast(OneHotCategorical, self._classifier.dist({"x": x})).probs.argmax(-1)

    def accuracy(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """The share of ``x`` whose predicted class is ``y``."""
        return float((self.predict(x) == y).float().mean())

    @torch.no_grad()
    def generate(self, n: int, mean: bool = True, y: torch.Tensor | None = None) -> torch.Tensor:
        """Images of classes ``y`` (default: cycling through the classes) from ``z ~ p(z)``."""
        y = torch.arange(n) % self.n_classes if y is None else y
        z = self._prior.sample(batch_n=n)["z"]
        return self._decoder.mean({"z": z, "y": y})

    @property
    def n_classes(self) -> int:
        """The number of classes of ``y``."""
        return self._classifier.features_shape[0] if self._classifier.features_shape else 10

    def evaluate(self, test_data: Mapping[str, torch.Tensor], *, k: int = 1000,
                 info: DataInfo | None = None) -> dict[str, Any]:
        """What M2 is for: the classifier's ``test_accuracy`` and ``test_error`` on the labelled test data."""
        was = self.training
        self.eval()
        try:
            acc = self.accuracy(test_data["x"], test_data["y"])
        finally:
            self.train(was)
        return {"test_accuracy": acc, "test_error": 1 - acc}

    def figures(self, out_dir: Path, test_data: Mapping[str, torch.Tensor], info: DataInfo) -> list[Path]:
        """``samples.png``: 8 images of every class, a column per class (for image data)."""
        from deepgm import viz

        shape = info.image_shape
        if shape is None:
            return []
        samples = self.generate(8 * self.n_classes)
        return [viz.save_samples(samples, out_dir / "samples.png", image_shape=shape, nrow=self.n_classes)]


def prepare_m2(model: M2, cfg: M2Config, splits: dict[str, dict[str, torch.Tensor]],
               transform: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None
               ) -> dict[str, torch.Tensor]:
    """Pick ``n_labels`` training examples balanced by class as the labelled subset; train on the images."""
    from deepgm.data import labelled_subset

    train = splits["train"]
    idx = labelled_subset(train["y"], cfg.n_labels, seed=0)
    model.set_labelled(train["x"][idx], train["y"][idx], transform)
    return {"x": train["x"]}


@register("m2", "Semi-supervised M2: labelled ELBO + exact sum over y for unlabelled + α·classification",
          M2Config, needs_labels=True, prepare=prepare_m2)
def build_m2(cfg: M2Config, data: DataInfo) -> M2:
    """The M2 model of ``cfg`` for labelled ``data``."""
    if not data.n_classes:
        raise ValueError("m2 needs a labelled dataset")
    k, h, a = data.n_classes, list(cfg.hidden), cfg.activation
    q_y = Categorical(var=["y"], cond_var=["x"], name="q", features_shape=[k],
                      net=LogitsHead(MLP([data.x_dim, *h, k], a)))
    q_z = Normal(var=["z"], cond_var=["x", "y"], name="q",
                 net=OneHotInputs(NormalHead(MLP([data.x_dim + k, *h], a, out_activation=a), h[-1], cfg.z_dim), k))
    p_x = Bernoulli(var=["x"], cond_var=["z", "y"], name="p",
                    net=OneHotInputs(LogitsHead(MLP([cfg.z_dim + k, *h[::-1], data.x_dim], a)), k))
    p_y = Categorical(var=["y"], probs=torch.full((k,), 1.0 / k), name="p")
    p_z = Normal(var=["z"], loc=0.0, scale=1.0, features_shape=[cfg.z_dim], name="p")

    def neg_elbo(q_z: Distribution, p_x: Distribution) -> Any:
        return KL(q_z, p_z) - E(q_z, LogProb(p_x)) - LogProb(p_y)

    labelled = neg_elbo(q_z, p_x) - cfg.alpha * LogProb(q_y)
    q_y_u, q_z_u, p_x_u = q_y.replace_var(x="x_u"), q_z.replace_var(x="x_u"), p_x.replace_var(x="x_u")
    unlabelled = Enumerate(q_y_u, neg_elbo(q_z_u, p_x_u)) - Entropy(q_y_u)
    loss = labelled.mean() + unlabelled.mean()
    return M2(loss, [q_y, q_z, p_x, p_y, p_z], q_y, p_x, p_z, cfg.labelled_batch, cfg.lr)
