"""Every registered model trains a few steps on tiny data (the objective falls), draws samples of the
right shape, and prints its objective."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from deepgm import zoo
from deepgm.distributions import Categorical, Normal
from deepgm.losses import DIPCovariance, Enumerate, LogProb, TotalCorrelation
from deepgm.zoo.gmvae import cluster_of

SMALL = {"z_dim": 2, "hidden": (16,), "z1_dim": 4, "z2_dim": 2, "hidden1": (16,), "hidden2": (8,),
         "dataset_size": 64, "capacity_steps": 20, "lambda_": 10.0, "n_codes": 3}
NEEDS_SQUARE_IMAGES = {"dcgan"}  # convolutional: tested on images in tests/gan


def _data() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (64,), generator=g)
    protos = torch.rand(3, 20, generator=g)
    x = torch.bernoulli(protos[y], generator=g)
    return {"x": x, "y": y}


@pytest.mark.parametrize("name", zoo.names())
def test_model_trains_samples_and_prints(name: str) -> None:
    if name in NEEDS_SQUARE_IMAGES:
        pytest.skip(f"{name} needs square images; tests/gan trains it on 8x8 images")
    entry = zoo.get(name)
    if entry.sequences:
        pytest.skip(f"{name} models sequences: tests/zoo/test_sequence_models.py trains it")
    if entry.example is not None:
        pytest.skip(f"{name} models {entry.example.name}: tests/zoo/test_{name.split('-')[0]}.py trains it")
    fields = {f.name for f in dataclasses.fields(entry.config)}
    cfg = entry.config(**{k: v for k, v in SMALL.items() if k in fields}, lr=1e-2)
    model = entry.build(cfg, zoo.DataInfo("toy", (20,), n_classes=3))
    data = _data()
    batch = data if entry.needs_labels else {"x": data["x"]}
    torch.manual_seed(0)
    first = sum(model.eval_step(batch) for _ in range(20)) / 20
    for _ in range(150):
        model.train_step(batch)
    torch.manual_seed(0)
    last = sum(model.eval_step(batch) for _ in range(20)) / 20
    assert last < first, (name, first, last)
    cond = {"y": torch.tensor([0, 1, 2, 0, 1])} if entry.needs_labels else {}
    assert model.generate(5, **cond).shape == (5, 20)
    assert model.loss.to_latex()


def test_capacity_schedule_reaches_c_max() -> None:
    entry = zoo.get("beta-vae")
    model = entry.build(entry.config(z_dim=2, hidden=(8,), capacity_max=5.0, capacity_steps=10),
                        zoo.DataInfo("toy", (20,)))
    assert model.schedule(0) == {"C": 0.0} and model.schedule(5) == {"C": 2.5} and model.schedule(50) == {"C": 5.0}
    assert "|" in str(model.loss)


def test_enumerate_is_the_exact_expectation() -> None:
    logits = torch.randn(4, 3)

    class Net(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"logits": logits}

    q = Categorical(var=["y"], cond_var=["x"], net=Net(), name="q")
    w = torch.tensor([1.0, -2.0, 5.0])
    p = Normal(var=["v"], cond_var=["y"], net=_Lin(w), name="p")
    got = Enumerate(q, LogProb(p))({"x": torch.zeros(4, 1), "v": torch.zeros(4, 1)})
    probs = logits.softmax(-1)
    ref = sum(probs[:, k] * torch.distributions.Normal(w[k], 1.0).log_prob(torch.zeros(4)) for k in range(3))
    assert torch.allclose(got, ref, atol=1e-5)


class _Lin(torch.nn.Module):
    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = w

    def forward(self, y: torch.Tensor) -> dict[str, torch.Tensor]:
        loc = (y * self.w).sum(-1, keepdim=True)
        return {"loc": loc, "scale": torch.ones_like(loc)}


def test_dip_covariance_matches_formula() -> None:
    mu = torch.randn(50, 3)

    class Net(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"loc": mu, "scale": torch.full_like(mu, 0.5)}

    q = Normal(var=["z"], cond_var=["x"], net=Net(), name="q")
    cov = torch.cov(mu.T, correction=0)
    off = cov - torch.diag(cov.diagonal())
    ref_i = 10 * (off**2).sum() + 100 * ((cov.diagonal() - 1) ** 2).sum()
    assert torch.allclose(DIPCovariance(q, "i")({"x": torch.zeros(50, 1)}), ref_i, rtol=1e-4)
    cov2 = cov + torch.eye(3) * 0.25
    ref_ii = 10 * (off**2).sum() + 100 * ((cov2.diagonal() - 1) ** 2).sum()
    assert torch.allclose(DIPCovariance(q, "ii")({"x": torch.zeros(50, 1)}), ref_ii, rtol=1e-4)


def test_total_correlation_is_near_zero_for_independent_and_positive_for_correlated() -> None:
    def tc(loc: torch.Tensor) -> float:
        class Net(torch.nn.Module):
            def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
                return {"loc": loc, "scale": torch.full_like(loc, 0.1)}

        q = Normal(var=["z"], cond_var=["x"], net=Net(), name="q")
        return float(TotalCorrelation(q, dataset_size=len(loc))({"x": torch.zeros(len(loc), 1)}))

    a = torch.randn(500, 1)
    independent = torch.cat([a, torch.randn(500, 1)], 1)
    correlated = torch.cat([a, a + 0.05 * torch.randn(500, 1)], 1)
    assert abs(tc(independent)) < 0.3
    assert tc(correlated) > 1.0


def test_gmm_vae_clusters() -> None:
    entry = zoo.get("gmm-vae")
    model = entry.build(entry.config(z_dim=2, hidden=(16,)), zoo.DataInfo("toy", (20,), n_classes=3))
    assert cluster_of(model, _data()["x"]).shape == (64,)


def test_density_ratio_recovers_known_log_ratio() -> None:
    from deepgm.losses import DensityRatio
    from deepgm.models import AuxiliaryObjective, Model

    class Batch(torch.nn.Module):
        def __init__(self, mean: float) -> None:
            super().__init__()
            self.mean = mean

        def forward(self, w: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"loc": torch.full((512, 1), self.mean), "scale": torch.ones(512, 1)}

    p = Normal(var=["x"], cond_var=["w"], net=Batch(1.0), name="p")
    q = Normal(var=["x"], cond_var=["w"], net=Batch(-1.0), name="q")
    disc = torch.nn.Linear(1, 1)
    ratio = DensityRatio(p, disc, q=q)
    aux = AuxiliaryObjective(ratio.discriminator_loss(), optimizer=torch.optim.Adam, optimizer_params={"lr": 0.05})
    holder = Normal(var=["w"], loc=torch.nn.Parameter(torch.zeros(1)), scale=1.0, name="h")
    model = Model(LogProb(holder).mean() * 0.0, [holder], auxiliary=[aux])
    for _ in range(400):
        model._aux_step(aux, model._aux_optimizers[0], {"w": torch.zeros(1)}, {})
    # log N(x;1,1)/N(x;-1,1) = 2x: the optimal logit
    xs = torch.linspace(-2, 2, 5).unsqueeze(-1)
    assert torch.allclose(disc(xs).squeeze(-1), 2 * xs.squeeze(-1), atol=0.25)


@pytest.mark.parametrize("name", ["jmvae", "mvae", "mmvae"])
def test_multimodal_cross_generation_learns_labels(name: str) -> None:
    entry = zoo.get(name)
    model = entry.build(entry.config(z_dim=4, hidden=(32,), label_hidden=(16,), lr=1e-2),
                        zoo.DataInfo("toy", (20,), n_classes=3))
    data = _data()
    for _ in range(300):
        model.train_step(data)
    assert model.accuracy(data["x"], data["y"]) > 0.9  # image → label
    x_of_y = model.y_to_x(torch.tensor([0, 1, 2]))
    protos = torch.stack([data["x"][data["y"] == k].mean(0) for k in range(3)])
    nearest = torch.cdist(x_of_y, protos).argmin(-1)
    assert nearest.tolist() == [0, 1, 2]  # label → image looks like that class
    xs, ys = model.generate_pairs(6)
    assert xs.shape == (6, 20) and ys.shape == (6,)


def test_convolutional_vae_and_gaussian_decoder_train() -> None:
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(32, 64, generator=g) > 0.5).float()
    for options in ({"network": "conv"}, {"decoder": "normal"}):
        entry = zoo.get("vae")
        model = entry.build(entry.config(z_dim=2, hidden=(32,), lr=1e-2, **options), zoo.DataInfo("toy", (64,)))
        torch.manual_seed(0)
        first = sum(model.eval_step({"x": x}) for _ in range(10)) / 10
        for _ in range(60):
            model.train_step({"x": x})
        torch.manual_seed(0)
        assert sum(model.eval_step({"x": x}) for _ in range(10)) / 10 < first
        assert model.generate(4).shape == (4, 64)
    with pytest.raises(ValueError, match="square"):
        zoo.get("vae").build(zoo.get("vae").config(network="conv"), zoo.DataInfo("toy", (20,)))
