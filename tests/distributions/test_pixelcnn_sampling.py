"""The PixelCNNs' samplers and likelihoods beyond binary pixels: the cached sampler draws what the naive one
draws under the same seed (binary and grey-level pixels, conditional ones) while running the network on
fewer pixels; the discretised logistic mixture against a direct CDF-difference reference; a PixelCNN as
the decoder of a VAE through the ordinary API."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
import torch

from deepgm.distributions import (
    DiscretizedLogisticMixture,
    GatedPixelCNN,
    Normal,
    PixelAutoregressive,
    PixelCNN,
    sampling_speed,
)
from deepgm.distributions.logistic_mixture import discretized_logistic_log_prob, discretized_logistic_sample
from deepgm.errors import SupportError
from deepgm.models import VAE
from deepgm.nn import MLP, NormalHead

KW: dict[str, Any] = {"channels": 4, "layers": 2, "kernel": 3, "first_kernel": 3}


@pytest.mark.parametrize(("cls", "likelihood", "conditional"), [
    (PixelCNN, "bernoulli", False), (GatedPixelCNN, "bernoulli", True), (GatedPixelCNN, "logistic", False),
    (PixelCNN, "logistic", True),
])
def test_cached_sampler_draws_what_the_naive_one_draws_under_the_same_seed(
        cls: type[PixelAutoregressive], likelihood: str, conditional: bool) -> None:
    torch.manual_seed(0)
    options = {"cond_var": ["y"], "cond_dim": 3, "n_classes": 3} if conditional else {}
    p = cls(var=["x"], image_shape=(1, 7, 9), likelihood=likelihood, components=2, **KW, **options).double()
    cond = torch.eye(3, dtype=torch.float64)[torch.tensor([0, 1, 2, 1])] if conditional else None
    torch.manual_seed(7)
    naive = p.sample_naive(4, cond)
    torch.manual_seed(7)
    cached = p.sample_cached(4, cond)
    assert torch.equal(naive, cached)
    assert naive.std() > 0  # not a constant image
    if likelihood == "logistic":
        assert (naive * 255 == (naive * 255).round()).all()


def test_cached_sampler_runs_the_network_on_a_fraction_of_the_pixels() -> None:
    torch.manual_seed(1)
    p = GatedPixelCNN(var=["x"], image_shape=(1, 16, 16), **KW)
    seen = {"pixels": 0}

    def count(_: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        seen["pixels"] += args[0].shape[-1] * args[0].shape[-2]

    p.net.register_forward_pre_hook(count)
    work = {}
    for sampler in (p.sample_naive, p.sample_cached):
        seen["pixels"] = 0
        sampler(1)
        work[sampler.__name__] = seen["pixels"]
    assert work["sample_naive"] == 256 * 256
    assert work["sample_cached"] < work["sample_naive"] / 4


def test_sampling_speed_reports_both_samplers_and_that_their_draws_agree() -> None:
    torch.manual_seed(2)
    p = PixelCNN(var=["x"], image_shape=(1, 6, 6), **KW).double()
    r = sampling_speed(p, n=2)
    assert r["identical"] is True and r["naive_samples_per_s"] > 0 and r["cached_samples_per_s"] > 0
    assert r["speedup"] == pytest.approx(r["cached_samples_per_s"] / r["naive_samples_per_s"])


def _reference_probs(loc: torch.Tensor, log_scale: torch.Tensor, logits: torch.Tensor, levels: int) -> torch.Tensor:
    """P(level k) = Σ_j π_j [F_j(y_k + δ) - F_j(y_k - δ)], F(+δ at the top) = 1, F(-δ at the bottom) = 0."""
    y = torch.linspace(-1, 1, levels, dtype=torch.float64)
    delta = 1 / (levels - 1)
    s = log_scale.exp()
    upper = torch.sigmoid((y[:, None] + delta - loc) / s)
    lower = torch.sigmoid((y[:, None] - delta - loc) / s)
    upper[-1], lower[0] = 1.0, 0.0
    return ((upper - lower) * logits.softmax(-1)).sum(-1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_logistic_mixture_sums_to_one_over_all_256_levels_and_matches_cdf_differences(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    k = 3
    loc = torch.rand(k, generator=g, dtype=torch.float64) * 2.4 - 1.2
    log_scale = torch.rand(k, generator=g, dtype=torch.float64) * 6 - 5  # e^-5 .. e^1
    logits = torch.randn(k, generator=g, dtype=torch.float64)
    x = torch.arange(256, dtype=torch.float64) / 255
    lp = discretized_logistic_log_prob(x, logits.expand(256, k), loc.expand(256, k), log_scale.expand(256, k))
    ref = _reference_probs(loc, log_scale, logits, 256)
    assert float(lp.exp().sum()) == pytest.approx(1.0, abs=1e-10)
    assert torch.allclose(lp.exp(), ref, atol=1e-12)


def test_logistic_mixture_keeps_a_finite_log_probability_far_in_a_tail() -> None:
    one = torch.ones(1, 1)
    x = torch.tensor([200 / 255])
    lp = discretized_logistic_log_prob(x, one * 0, -one, one * -5)  # about 230 scales above the mean
    y, delta, s = 2 * x - 1, 1 / 255, torch.tensor(-5.0).exp()
    naive = torch.sigmoid((y + delta + 1) / s) - torch.sigmoid((y - delta + 1) / s)
    assert naive == 0  # float32 cancels to exactly 0 there: log 0 = -inf
    assert torch.isfinite(lp).all() and lp < -100


def test_logistic_mixture_draws_follow_its_probabilities() -> None:
    torch.manual_seed(3)
    logits, loc, log_scale = torch.tensor([0.3, -0.2]), torch.tensor([-0.4, 0.5]), torch.tensor([-1.0, -1.5])
    draws = discretized_logistic_sample(logits, loc, log_scale, levels=8, shape=(40000,))
    freq = torch.bincount(torch.round(draws * 7).long(), minlength=8).double() / 40000
    probs = _reference_probs(loc.double(), log_scale.double(), logits.double(), 8)
    assert torch.allclose(freq, probs, atol=0.01)


def test_logistic_pixelcnn_is_normalised_over_every_grey_image() -> None:
    torch.manual_seed(4)
    p = PixelCNN(var=["x"], image_shape=(1, 1, 3), likelihood="logistic", levels=4, components=2, **KW).double()
    every = torch.tensor(list(itertools.product(range(4), repeat=3)), dtype=torch.float64) / 3
    with torch.no_grad():
        assert float(p.log_prob({"x": every}).exp().sum()) == pytest.approx(1.0, abs=1e-10)
    with pytest.raises(SupportError, match=r"variable 'x' must hold grey levels k/3 in \[0, 1\] \(4 levels\)"):
        p.log_prob({"x": torch.tensor([[0.5, 0.0, 1.0]])})
    with pytest.raises(SupportError, match="must hold grey levels"):
        DiscretizedLogisticMixture(var=["x"], logits=torch.zeros(1), loc=torch.zeros(1),
                                   log_scale=torch.zeros(1)).log_prob({"x": torch.tensor([1.5])})


def _pixel_vae(make_decoder: Callable[[], PixelAutoregressive]) -> VAE:
    q = Normal(var=["z"], cond_var=["x"], name="q", net=NormalHead(MLP([16, 16], "relu", out_activation="relu"), 16, 2))
    prior = Normal(var=["z"], loc=0.0, scale=1.0, features_shape=[2], name="p_{prior}")
    return VAE(q, make_decoder(), prior, optimizer=torch.optim.Adam, optimizer_params={"lr": 1e-2})


def test_a_pixelcnn_is_the_decoder_of_a_vae_through_the_ordinary_api() -> None:
    torch.manual_seed(5)
    vae = _pixel_vae(lambda: GatedPixelCNN(var=["x"], cond_var=["z"], image_shape=(1, 4, 4), cond_dim=2, **KW))
    x = torch.bernoulli(torch.rand(3, 16)[torch.randint(0, 3, (64,))])
    torch.manual_seed(0)
    first = sum(vae.eval_step({"x": x}) for _ in range(5)) / 5
    for _ in range(60):
        vae.train_step({"x": x})
    torch.manual_seed(0)
    assert sum(vae.eval_step({"x": x}) for _ in range(5)) / 5 < first
    decoder: Any = vae.decoder.net
    assert all(w.grad is not None and w.grad.abs().sum() > 0 for w in decoder.blocks[0].cond.parameters())
    metrics = vae.evaluate({"x": x[:8]}, k=20)
    assert metrics["test_nll"] <= -metrics["test_elbo"] + 0.5  # the importance-sampled bound is the tighter
    assert vae.generate(3).shape == (3, 16) and set(vae.generate(3).unique().tolist()) <= {0.0, 1.0}
    assert "p(x|z)" in str(vae.loss)
