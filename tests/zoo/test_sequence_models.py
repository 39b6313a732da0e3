"""The zoo's sequential models (VRNN, DMM, SRNN, TD-VAE): each trains on small padded sequences with each of
its objectives (the objective falls, no step is non-finite), evaluates itself per time step, samples, draws
its figures; the registry refuses the wrong kind of data; and through the command line, a run on JSB
Chorales trains, evaluates, samples and resumes exactly (skipped without the data)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
import torch

from deepgm import zoo
from deepgm.cli import main
from deepgm.errors import ConfigError, DeepGMError
from deepgm.models import SequenceModel

SMALL = {"vrnn": {"h_dim": 16, "z_dim": 4, "feature_dim": 16},
         "dmm": {"z_dim": 4, "emission_dim": 16, "transition_dim": 16, "rnn_dim": 16},
         "srnn": {"d_dim": 16, "a_dim": 16, "z_dim": 4, "hidden": 16}}
INFO = zoo.DataInfo("jsb", (6,), None, binary=True, sequence=True)


def _sequences(n: int = 24, length: int = 9, dim: int = 6) -> dict[str, torch.Tensor]:
    """Binary sequences with a pattern to learn (a rotating block of notes), lengths 3..length, padded."""
    g = torch.Generator().manual_seed(0)
    start = torch.randint(0, dim, (n, 1), generator=g)
    t = torch.arange(length)
    notes = (start + t) % dim  # (n, T): the key that is on at step t
    x = torch.nn.functional.one_hot(notes, dim).float()
    x = torch.maximum(x, torch.bernoulli(torch.full(x.shape, 0.05), generator=g))
    lengths = torch.randint(3, length + 1, (n,), generator=g)
    mask = (t < lengths.unsqueeze(1)).float()
    return {"x": x * mask.unsqueeze(-1), "mask": mask}


def _build(name: str, **options: object) -> SequenceModel:
    entry = zoo.get(name)
    model = entry.build(entry.config(**SMALL[name], **options), INFO)
    assert isinstance(model, SequenceModel)
    return model


@pytest.mark.parametrize("objective", ["elbo", "iwae", "fivo"])
@pytest.mark.parametrize("name", ["vrnn", "dmm", "srnn"])
def test_sequence_model_trains_with_each_objective_without_a_nonfinite_step(name: str, objective: str) -> None:
    torch.manual_seed(0)
    model = _build(name, objective=objective, particles=3, lr=1e-2)
    data = _sequences()
    torch.manual_seed(1)
    first = sum(model.eval_step(data) for _ in range(5)) / 5
    for _ in range(40):
        assert math.isfinite(model.train_step(data))
    torch.manual_seed(1)
    last = sum(model.eval_step(data) for _ in range(5)) / 5
    assert last < first - 0.5, (first, last)
    assert model.skipped_steps == 0
    assert model.generate(3, 7).shape == (3, 7, 6)
    assert "sum_" in str(model.loss) and model.loss.to_latex()


def test_dmm_with_an_iaf_posterior_trains_and_its_kl_is_by_monte_carlo() -> None:
    torch.manual_seed(0)
    model = _build("dmm", posterior="iaf", iaf_layers=2, lr=1e-2)
    kl = next(n for n in model.loss.walk() if type(n).__name__ == "KL")
    assert not kl.analytic  # a flow's KL to the transition has no closed form
    data = _sequences()
    torch.manual_seed(1)
    first = model.eval_step(data)
    for _ in range(40):
        assert math.isfinite(model.train_step(data))
    torch.manual_seed(1)
    assert model.eval_step(data) < first - 0.5
    torch.manual_seed(2)
    metrics = model.evaluate(data, k=16)
    assert math.isfinite(metrics["test_nll_smc_per_step"]) and metrics["test_nll_smc_per_step"] > 0


@pytest.mark.parametrize("name", ["vrnn", "dmm", "srnn"])
def test_sequence_model_reports_per_step_bounds_and_draws_piano_rolls(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = _build(name)
    data = _sequences()
    for _ in range(30):
        model.train_step(data)
    torch.manual_seed(2)
    metrics = model.evaluate(data, k=64)
    json.dumps(metrics)
    assert metrics["time_steps"] == int(data["mask"].sum()) and metrics["particles"] == 64
    elbo, smc, iwae = (metrics[f"test_{k}_per_step"] for k in ("neg_elbo", "nll_smc", "nll_iwae"))
    assert all(math.isfinite(v) and v > 0 for v in (elbo, smc, iwae))
    assert smc < elbo and iwae < elbo  # 64 particles: tighter than the one-sample ELBO
    paths = model.figures(tmp_path, data, INFO)
    assert [p.name for p in paths] == ["samples.png"] and paths[0].stat().st_size > 0
    assert model.training


@pytest.mark.parametrize("name", ["vrnn", "dmm", "srnn"])
def test_vector_sequence_models_train_on_videos_and_draw_frame_strips(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    info = zoo.DataInfo("bouncing-balls", (1, 5, 5), None, binary=True, sequence=True)
    entry = zoo.get(name)
    model = entry.build(entry.config(**SMALL[name], lr=1e-2), info)
    g = torch.Generator().manual_seed(0)
    data = {"x": (torch.rand(12, 6, 1, 5, 5, generator=g) < 0.2).float(), "mask": torch.ones(12, 6)}
    torch.manual_seed(1)
    first = model.eval_step(data)
    for _ in range(20):
        model.train_step(data)
    torch.manual_seed(1)
    assert model.eval_step(data) < first
    assert model.generate(2, 4).shape == (2, 4, 1, 5, 5)
    paths = model.figures(tmp_path, data, info)
    assert [p.name for p in paths] == ["samples.png"] and paths[0].stat().st_size > 0


def test_tdvae_trains_on_videos_and_draws_its_jumpy_predictions(tmp_path: Path) -> None:
    torch.manual_seed(0)
    info = zoo.DataInfo("bouncing-balls", (1, 6, 6), None, binary=True, sequence=True)
    entry = zoo.get("tdvae")
    model = entry.build(entry.config(b_dim=16, z_dim=3, hidden=16, max_jump=2, context=2, lr=1e-2), info)
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(16, 8, 1, 6, 6, generator=g) < 0.2).float()
    data = {"x": x, "mask": torch.ones(16, 8)}
    torch.manual_seed(1)
    first = model.eval_step(data)
    for _ in range(30):
        model.train_step(data)
    torch.manual_seed(1)
    assert model.eval_step(data) < first
    metrics = model.evaluate(data)
    assert math.isfinite(metrics["test_tdvae_loss_per_step"]) and "particles" not in metrics
    paths = model.figures(tmp_path, data, info)
    assert [p.name for p in paths] == ["jumpy_predictions.png"] and paths[0].stat().st_size > 0
    with pytest.raises(DeepGMError, match="predicts from observed ones"):
        model.generate(2)


@pytest.mark.parametrize("name", ["vrnn", "dmm", "srnn", "tdvae"])
def test_cli_prints_each_sequence_models_objective_as_latex(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["latex", name]) == 0
    assert r"\sum_{t=1}^{T}" in capsys.readouterr().out


def test_registry_refuses_the_wrong_kind_of_data() -> None:
    with pytest.raises(ConfigError, match="dataset must be a sequence dataset"):
        zoo.get("dmm").build(zoo.get("dmm").config(), zoo.DataInfo("digits", (64,), 10))
    with pytest.raises(ConfigError, match="not of sequences"):
        zoo.get("vae").build(zoo.get("vae").config(), INFO)


DATA = os.environ.get("DEEPGM_DATA")
needs_jsb = pytest.mark.skipif(
    not DATA or not any((Path(d) / "polyphonic" / "JSB_Chorales.mat").is_file() for d in DATA.split(os.pathsep)),
    reason="JSB Chorales not found: set DEEPGM_DATA to a folder holding polyphonic/JSB_Chorales.mat")
TINY_VRNN = ["--h-dim", "8", "--z-dim", "2", "--feature-dim", "8", "--batch-size", "40", "--progress", "false",
             "--eval-k", "2", "--checkpoint-every", "1"]


@needs_jsb
def test_cli_trains_evaluates_samples_and_resumes_a_vrnn_on_jsb_exactly(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert main(["train", "vrnn", "--dataset", "jsb", *TINY_VRNN, "--max-steps", "4", "--out", str(straight)]) == 0
    metrics = json.loads((straight / "metrics.json").read_text())
    assert metrics["time_steps"] == 4725 and metrics["test_nll_smc_per_step"] > 0  # JSB's test set
    assert main(["train", "vrnn", "--dataset", "jsb", *TINY_VRNN, "--max-steps", "2", "--out", str(resumed)]) == 0
    assert main(["train", "vrnn", "--dataset", "jsb", *TINY_VRNN, "--max-steps", "4", "--out", str(resumed),
                 "--resume"]) == 0
    a, b = (zoo.load_run(r).model.state_dict() for r in (straight, resumed))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # bit-identical weights
    capsys.readouterr()
    assert main(["eval", str(straight), "--k", "4", "--n-test", "5"]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert ev["particles"] == 4 and ev["test_sequences"] == 5
    assert main(["sample", str(straight), "-n", "3", "-o", str(tmp_path / "rolls.png")]) == 0
    assert (tmp_path / "rolls.png").stat().st_size > 0
