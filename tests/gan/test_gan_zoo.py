"""Every GAN of the zoo trains a few steps on tiny data (its MMD to the data falls), draws samples of the
right shape, prints its objective, and saves/loads."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from deepgm.zoo import gan_basic, gan_bigan, gan_conditional, gan_dcgan, gan_infogan, gan_mmd  # noqa: F401
from deepgm.zoo.registry import REGISTRY, DataInfo

GAN_NAMES = [n for n, e in REGISTRY.items() if e.build.__module__.startswith("deepgm.zoo.gan_")]
SMALL = {"z_dim": 4, "hidden": (32,), "disc_hidden": (32,), "channels": 8, "n_codes": 3}


def _data(side: int | None = None) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    d = 20 if side is None else side * side
    y = torch.randint(0, 3, (64,), generator=g)
    protos = torch.rand(3, d, generator=g)
    return {"x": torch.bernoulli(protos[y], generator=g), "y": y}


def test_the_zoo_registers_the_gans() -> None:
    assert {"gan", "ns-gan", "kl-gan", "wgan", "wgan-gp", "lsgan", "hinge-gan", "f-gan", "dcgan", "cgan",
            "acgan", "infogan", "gmmn", "mmd-gan", "bigan"} <= set(GAN_NAMES)


@pytest.mark.parametrize("name", GAN_NAMES)
def test_gan_trains_samples_prints_and_saves(name: str, tmp_path: object) -> None:
    entry = REGISTRY[name]
    fields = {f.name for f in dataclasses.fields(entry.config)}
    lr = 5e-4 if name in ("wgan",) else 2e-3
    cfg = entry.config(**{k: v for k, v in SMALL.items() if k in fields}, lr=lr)
    side = 8 if name == "dcgan" else None
    info = DataInfo("toy", (64,) if side else (20,), n_classes=3)
    model = entry.build(cfg, info)
    data = _data(side)
    batch = data if entry.needs_labels else {"x": data["x"]}
    torch.manual_seed(0)
    first = sum(model.eval_step(batch) for _ in range(5)) / 5
    for _ in range(150):
        out = model.train_step(batch)
    torch.manual_seed(0)
    last = sum(model.eval_step(batch) for _ in range(5)) / 5
    assert last < first, (name, first, last)
    if name != "gmmn":
        assert isinstance(out, dict) and {"loss", "discriminator"} <= set(out)
    cond = {"y": torch.tensor([0, 1, 2, 0, 1])} if entry.needs_labels else {}
    assert model.generate(5, **cond).shape == (5, info.x_dim)
    assert model.loss.to_latex() and str(model.loss)
    path = tmp_path / "m.pt"  # type: ignore[operator]
    model.save(path)
    again = entry.build(cfg, info)
    again.load(path)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))


def test_the_mlp_gan_builder_takes_any_objective_of_the_two_sides_and_the_discriminator() -> None:
    from deepgm.losses import KLGAN, AdversarialLoss

    cfg = gan_basic.GANConfig(z_dim=4, hidden=(8,), disc_hidden=(8,))
    made: list[AdversarialLoss] = []

    def make(p: object, q: object, d: torch.nn.Module) -> AdversarialLoss:
        made.append(KLGAN(p, q, d))  # type: ignore[arg-type]
        return made[-1]

    model = gan_basic.build_mlp_gan(cfg, DataInfo("toy", (20,)), make)  # (p, q, D): no unused config argument
    assert len(made) == 1 and any(node is made[0] for node in model.loss.walk())
    plain = gan_basic.build_mlp_gan(cfg, DataInfo("toy", (20,)), KLGAN)  # a class is such a builder too
    assert any(isinstance(node, KLGAN) for node in plain.loss.walk())


def test_dcgan_rejects_non_square_data() -> None:
    with pytest.raises(ValueError, match="square images"):
        gan_dcgan.build_dcgan(gan_dcgan.DCGANConfig(), DataInfo("toy", (20,)))


def test_conditional_gans_need_labels() -> None:
    with pytest.raises(ValueError, match="labelled"):
        gan_conditional.build_cgan(gan_basic.GANConfig(), DataInfo("toy", (20,)))
