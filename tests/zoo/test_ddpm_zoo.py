"""The zoo's DDPM through its config and the command line: a U-Net for square images and an MLP for other
data, options refused with the option named, and ``deepgm train/eval/sample/latex`` on the 8×8 digits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deepgm import zoo
from deepgm.cli import main
from deepgm.distributions.diffusion import ImageNoisePredictor
from deepgm.errors import ConfigError
from deepgm.nn import UNet
from deepgm.nn.unet import MLPNoisePredictor

TINY = ["--steps", "20", "--channels", "8", "--channel-mults", "1,2", "--sample-steps", "4", "--bound-images", "5"]


def test_builds_a_unet_for_images_and_an_mlp_otherwise() -> None:
    entry = zoo.get("ddpm")
    mnist = entry.build(entry.config(channels=8), zoo.DataInfo("mnist", (784,), 10))
    assert isinstance(mnist.process.eps_model, ImageNoisePredictor) and isinstance(mnist.process.eps_model.net, UNet)
    toy = entry.build(entry.config(hidden=(8,)), zoo.DataInfo("moons", (2,)))
    assert isinstance(toy.process.eps_model, MLPNoisePredictor)
    assert mnist.process.steps == 1000 and float(mnist.process.schedule.betas[-1]) == pytest.approx(0.02)


@pytest.mark.parametrize(("options", "option", "expected"), [
    ({"steps": 0}, "steps", "an integer of at least 1"),
    ({"beta_start": 0.0}, "beta_start", r"a number in \(0, 1\)"),
    ({"beta_end": 1.0}, "beta_end", r"a number in \(0, 1\)"),
    ({"steps": 10, "sample_steps": 11}, "sample_steps", r"at most steps \(T = 10\)"),
    ({"network": "unet", "channel_mults": (1, 2, 2, 2)}, "channel_mults",
     r"4 resolutions that halve images of shape \(1, 28, 28\) \(sides divisible by 8\)"),
])
def test_bad_options_name_the_option_and_what_was_expected(options: dict, option: str, expected: str) -> None:
    entry = zoo.get("ddpm")
    with pytest.raises(ConfigError, match=rf"{option} must be {expected}") as err:
        entry.build(entry.config(**options), zoo.DataInfo("mnist", (784,), 10))
    assert err.value.option == option


def test_cli_trains_evaluates_and_samples_with_ddim_steps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert main(["train", "ddpm", "--dataset", "digits", "--max-steps", "3", "--out", str(run), "--progress", "false",
                 *TINY]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--n-test", "8"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["test_bits_per_dim_bound"] > 0 and "exact sum over t = 2..T" in metrics["bound_estimator"]
    assert main(["sample", str(run), "-n", "4", "--steps", "2", "-o", str(tmp_path / "s.pt")]) == 0
    assert (tmp_path / "s.pt").exists()
    assert main(["sample", str(run), "-n", "4", "--steps", "21"]) == 2
    assert "steps must be an integer in [1, T] = [1, 20]" in capsys.readouterr().err


def test_latex_prints_the_noise_prediction_objective(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["latex", "ddpm"]) == 0
    assert r"\left\|eps - \mathbb{E}_{p(eps|x_t,t)}\left[eps\right]\right\|^2" in capsys.readouterr().out
