"""The DDPM model: the simplified objective is ‖ε - ε_θ(x_t, t)‖² at the noised data, the one-t bound
estimate averages to the exact bound, training lowers the objective, and evaluation reports the bound in
bits/dim with its estimator named and MNIST-FID of samples."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from deepgm.distributions import DiffusionProcess, NoiseSchedule
from deepgm.distributions.diffusion import ImageNoisePredictor
from deepgm.errors import ConfigError
from deepgm.losses import E, SquaredError
from deepgm.models import DDPM
from deepgm.models.diffusion import diffusion_bound, diffusion_simple
from deepgm.nn import UNet
from deepgm.nn.unet import MLPNoisePredictor


class Linear(nn.Module):
    """ε_θ(x_t, t) = a_t x_t, a fixed function with a closed form to compare with."""

    def forward(self, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return xt * (t.float() / 100)


def test_simple_objective_is_the_squared_noise_prediction_error() -> None:
    s = NoiseSchedule.linear(100)
    proc = DiffusionProcess(s, Linear(), dim=3)
    x, eps, t = torch.rand(5, 3), torch.randn(5, 3), torch.randint(1, 101, (5, 1))
    got = E(proc.noised, SquaredError(proc.noise_model))(x=x, eps=eps, t=t)
    abar = s.alpha_bar[t - 1]
    xt = abar.sqrt() * (2 * x - 1) + (1 - abar).sqrt() * eps
    assert torch.allclose(got, ((eps - xt * t / 100) ** 2).sum(-1), atol=1e-5)
    assert diffusion_simple(proc).input_var == ["x"]


def test_the_one_t_estimate_of_the_bound_averages_to_the_exact_bound() -> None:
    torch.manual_seed(0)
    proc = DiffusionProcess(NoiseSchedule.linear(20, 1e-3, 0.3), Linear(), dim=2)
    x = torch.rand(1, 2).expand(20000, 2)
    with torch.no_grad():
        exact = diffusion_bound(proc, exact=True)(x=x)
        estimate = diffusion_bound(proc, exact=False)(x=x)
    se = float(estimate.std()) / math.sqrt(len(x))
    assert abs(float(estimate.mean()) - float(exact.mean())) < 4 * se + 1e-3
    assert float(estimate.std()) > 2 * float(exact.std())  # it is an estimate: one t per row


@pytest.mark.parametrize("objective", ["simple", "bound"])
def test_training_lowers_the_objective(objective: str) -> None:
    torch.manual_seed(0)
    proc = DiffusionProcess(NoiseSchedule.linear(50, 1e-3, 0.2), MLPNoisePredictor(4, hidden=(32,)), dim=4)
    model = DDPM(proc, objective, optimizer_params={"lr": 3e-3})  # type: ignore[arg-type]
    x = torch.randint(0, 256, (64, 4)).float() / 255 * 0.2 + 0.4
    torch.manual_seed(1)
    before = sum(model.eval_step({"x": x}) for _ in range(20)) / 20
    for _ in range(150):
        model.train_step({"x": x})
    torch.manual_seed(1)
    after = sum(model.eval_step({"x": x}) for _ in range(20)) / 20
    assert after < 0.8 * before, (before, after)


def _tiny_mnist_model() -> DDPM:
    unet = UNet(1, base_channels=8, channel_mults=(1, 2), attention=False)
    proc = DiffusionProcess(NoiseSchedule.linear(10, 1e-3, 0.5), ImageNoisePredictor(unet, (1, 28, 28)), dim=784)
    return DDPM(proc, sample_steps=5, bound_images=3, fid_samples=30)


def test_evaluate_reports_the_bound_in_bits_per_dim_and_fid_with_the_estimator_named() -> None:
    torch.manual_seed(0)
    model = _tiny_mnist_model()
    x = torch.randint(0, 256, (40, 784)).float() / 255
    m = model.evaluate({"x": x})
    assert m["test_bits_per_dim_bound"] == pytest.approx(m["test_nll_bound"] / (784 * math.log(2)))
    assert sum(m["bound_terms_bits_per_dim"].values()) == pytest.approx(m["test_bits_per_dim_bound"])
    assert "exact sum over t = 2..T" in m["bound_estimator"] and m["bound_images"] == 3
    assert m["mnist_fid"] > 0 and m["fid_samples"] == 30 and m["sampler"] == "DDIM (eta=0), 5 of T=10 steps"
    assert model.training


def test_sampling_options_are_checked() -> None:
    model = _tiny_mnist_model()
    assert model.generate(2, steps=3).shape == (2, 784)
    assert model.generate(2, sampler="ancestral").shape == (2, 784)
    with pytest.raises(ConfigError, match=r"steps must be an integer in \[1, T\] = \[1, 10\], got 11"):
        model.generate(2, steps=11)
    with pytest.raises(ConfigError, match="sampler must be 'ancestral' or 'ddim'"):
        DDPM(model.process, sampler="euler")  # type: ignore[arg-type]
