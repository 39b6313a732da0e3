"""What JMVAE, MVAE and MMVAE share: two modalities — an image ``x`` and its label ``y`` — with
decoders ``p(x|z)``, ``p(y|z)``, a prior ``p(z)``, unimodal encoders ``q(z|x)``, ``q(z|y)``, and
cross-modal generation (``x → y``, ``y → x``) and joint generation (``z ~ p(z) → (x, y)``).

:meth:`MultimodalVAE.evaluate` reports the cross-modal accuracy ``x → y`` and, on MNIST, the coherence of
generated images as judged by the packaged MNIST classifier (Shi et al. 2019's measure): of ``y → x``
(``cross_coherence``) and of joint draws (``joint_coherence``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from torch.distributions import OneHotCategorical

from deepgm.data import DataInfo
from deepgm.distributions import Bernoulli, Categorical, Distribution, Family, Normal
from deepgm.models import Model
from deepgm.nn import MLP, LogitsHead, NormalHead, OneHotInputs


@dataclass
class MultimodalConfig:
    """Network sizes shared by the multimodal models."""

    z_dim: int = 20
    hidden: tuple[int, ...] = (256, 256)
    label_hidden: tuple[int, ...] = (64,)
    activation: str = "relu"
    lr: float = 1e-3


@dataclass
class Parts:
    """The distributions of a two-modality VAE."""

    q_x: Normal
    q_y: Normal
    p_x: Bernoulli
    p_y: Categorical
    prior: Normal


def parts(cfg: MultimodalConfig, data: DataInfo) -> Parts:
    """Unimodal encoders, decoders and ``N(0, I)`` prior for image ``x`` and label ``y`` (K classes)."""
    if not data.n_classes:
        raise ValueError("multimodal models need a labelled dataset (image and label)")
    k, h, lh, a = data.n_classes, list(cfg.hidden), list(cfg.label_hidden), cfg.activation
    q_x = Normal(var=["z"], cond_var=["x"], name="q",
                 net=NormalHead(MLP([data.x_dim, *h], a, out_activation=a), h[-1], cfg.z_dim))
    q_y = Normal(var=["z"], cond_var=["y"], name="q",
                 net=OneHotInputs(NormalHead(MLP([k, *lh], a, out_activation=a), lh[-1], cfg.z_dim), k, (0,)))
    p_x = Bernoulli(var=["x"], cond_var=["z"], name="p", net=LogitsHead(MLP([cfg.z_dim, *h[::-1], data.x_dim], a)))
    p_y = Categorical(var=["y"], cond_var=["z"], name="p", features_shape=[k],
                      net=LogitsHead(MLP([cfg.z_dim, *lh[::-1], k], a)))
    prior = Normal(var=["z"], loc=0.0, scale=1.0, features_shape=[cfg.z_dim], name="p_{prior}")
    return Parts(q_x, q_y, p_x, p_y, prior)


class MultimodalVAE(Model):
    """A model of ``(x, y)`` with cross-modal and joint generation."""

    def __init__(self, loss: Any, dists: list[Distribution], p: Parts, joint_encoder: Distribution,
                 lr: float, **kwargs: Any) -> None:
        super().__init__(loss, dists, optimizer=torch.optim.Adam, optimizer_params={"lr": lr}, **kwargs)
        self._p = p
        self._joint = joint_encoder

    @staticmethod
    def _z(q: Distribution, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return q.mean(inputs) if isinstance(q, Family) else q.sample(inputs)["z"]

    @torch.no_grad()
    def x_to_y(self, x: torch.Tensor) -> torch.Tensor:
        """The most probable label of each image: ``argmax p(y|z)``, ``z`` the mean of ``q(z|x)``."""
        return cast(OneHotCategorical, self._p.p_y.dist({"z": self._z(self._p.q_x, {"x": x})})).probs.argmax(-1)

    @torch.no_grad()
    def y_to_x(self, y: torch.Tensor, mean: bool = True) -> torch.Tensor:
        """Images of labels ``y``: ``z ~ q(z|y)``, then the mean of ``p(x|z)``."""
        z = self._p.q_y.sample({"y": y})["z"] if not mean else self._z(self._p.q_y, {"y": y})
        return self._p.p_x.mean({"z": z})

    @torch.no_grad()
    def generate(self, n: int, mean: bool = True, y: torch.Tensor | None = None) -> torch.Tensor:
        """Images: of labels ``y`` (``y → x``) when given, else jointly from ``z ~ p(z)``."""
        if y is not None:
            return self.y_to_x(y, mean)
        z = self._p.prior.sample(batch_n=n)["z"]
        return self._p.p_x.mean({"z": z})

    @torch.no_grad()
    def generate_pairs(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Joint generation of both modalities: images and the labels ``p(y|z)`` gives the same ``z``."""
        z = self._p.prior.sample(batch_n=n)["z"]
        return self._p.p_x.mean({"z": z}), cast(OneHotCategorical, self._p.p_y.dist({"z": z})).probs.argmax(-1)

    def accuracy(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """Cross-modal accuracy image → label."""
        return float((self.x_to_y(x) == y).float().mean())

    @property
    def n_classes(self) -> int:
        """The number of classes of ``y``."""
        shape = self._p.p_y.features_shape
        if not shape:
            raise ValueError("MultimodalVAE: p(y|z) has no features_shape (the number of classes)")
        return int(shape[0])

    def evaluate(self, test_data: Mapping[str, torch.Tensor], *, k: int = 1000,
                 info: DataInfo | None = None) -> dict[str, Any]:
        """``test_accuracy``/``test_error`` of ``x → y`` on the test pairs; on MNIST also
        ``cross_coherence`` (images of the test labels ``y → x`` that the packaged MNIST classifier reads as
        their label) and ``joint_coherence`` (joint draws whose image it reads as the drawn label)."""
        x, y = test_data["x"], test_data["y"]
        was = self.training
        self.eval()
        try:
            acc = self.accuracy(x, y)
            out: dict[str, Any] = {"test_accuracy": acc, "test_error": 1 - acc}
            if info is not None and info.name == "mnist" and self.n_classes == 10:
                from deepgm.metrics.mnist import mnist_classifier

                clf = mnist_classifier()
                with torch.no_grad():
                    out["cross_coherence"] = float((clf(self.y_to_x(y)).argmax(-1) == y).float().mean())
                    images, labels = self.generate_pairs(len(y))
                    out["joint_coherence"] = float((clf(images).argmax(-1) == labels).float().mean())
        finally:
            self.train(was)
        return out

    def figures(self, out_dir: Path, test_data: Mapping[str, torch.Tensor], info: DataInfo) -> list[Path]:
        """``samples.png`` (joint draws), ``cross_generation.png`` (``y → x``: 8 draws of every label, a
        column per label) for images, and ``latent_map.png`` (``q(z|x)`` of the test images by label)."""
        from deepgm import viz

        out: list[Path] = []
        shape = info.image_shape
        was = self.training
        self.eval()
        try:
            if shape is not None:
                out.append(viz.save_samples(self.generate(64), out_dir / "samples.png", image_shape=shape))
                y = torch.arange(8 * self.n_classes) % self.n_classes
                out.append(viz.save_samples(self.y_to_x(y, mean=False), out_dir / "cross_generation.png",
                                            image_shape=shape, nrow=self.n_classes))
            with torch.no_grad():
                z = self._z(self._p.q_x, {"x": test_data["x"]})
            out.append(viz.save_latent_map_2d(z, test_data.get("y"), out_dir / "latent_map.png"))
        finally:
            self.train(was)
        return out
