"""The zoo's jem: one network is both the classifier and the energy, a tiny JEM learns two 2-D blobs and reports
accuracy and calibration with the estimator named, bad labels are refused by name, and the CLI runs it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from deepgm import zoo
from deepgm.cli import main
from deepgm.distributions import Categorical, EnergyDistribution
from deepgm.errors import MissingVariableError, ParameterError
from deepgm.losses import LogProb
from deepgm.models.energy import JEMModel
from deepgm.nn import LogitsHead

BLOBS = zoo.DataInfo("blobs", (2,), n_classes=2, binary=False)


def _blobs(n: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = 0.5 * torch.randn(n, 2, generator=g) + torch.tensor([[-1.5, 0.0], [1.5, 0.0]])[y]
    return {"x": x, "y": y}


def _tiny(**options: object) -> JEMModel:
    entry = zoo.get("jem")
    cfg = entry.config(**{"hidden": (32, 32), "mcmc_steps": 10, "buffer_size": 500, "sample_steps": 20,
                          "lr": 1e-2, **options})
    model = entry.build(cfg, BLOBS)
    assert isinstance(model, JEMModel)
    return model


def test_the_energy_is_minus_logsumexp_of_the_classifiers_logits() -> None:
    model = _tiny()
    f = model.energy_dist.energy_net.logits  # type: ignore[union-attr]
    assert model.classifier.net.net is f  # the same network, not a copy
    x = torch.randn(7, 2)
    with torch.no_grad():
        logits = f(x)
    assert torch.allclose(model.energies(x), -torch.logsumexp(logits, -1), atol=1e-6)
    assert torch.allclose(model.class_log_probs(x).exp(), torch.softmax(logits, -1), atol=1e-6)
    # the conditional energy of generate(y=...): E(x) - log p(y|x) = -f(x)[y]
    y = torch.tensor([0, 1, 1, 0, 1, 0, 0])
    cond = model.energies(x) - model.class_log_probs(x).gather(1, y[:, None])[:, 0]
    assert torch.allclose(cond, -logits.gather(1, y[:, None])[:, 0], atol=1e-5)
    assert "log p(y|x)" in str(model.loss) and "PCD-10" in str(model.loss)


def test_a_tiny_jem_learns_two_blobs_and_reports_accuracy_and_calibration() -> None:
    torch.manual_seed(0)
    model = _tiny(sample_steps=500)  # long enough for a chain to cross from one blob to the other
    train, test = _blobs(256, 0), _blobs(400, 1)
    before = model.evaluate(test)["test_accuracy"]
    for _ in range(60):
        loss = model.train_step(train)
        assert math.isfinite(float(loss))  # type: ignore[arg-type]
    m = model.evaluate(test)
    assert m["test_accuracy"] > 0.95 and m["test_accuracy"] >= before
    assert m["test_error"] == pytest.approx(1 - m["test_accuracy"])
    assert 0 <= m["test_ece"] < 0.1 and m["test_nll_labels"] < 0.2
    assert m["calibration"] == "ECE, 15 equal-width confidence bins (Guo et al. 2017)"
    assert math.isfinite(m["test_nll_grid"]) and "grid" in m["likelihood"]  # p(x)'s metrics stay
    json.dumps(m)
    # draws of p(x|y) from the buffer's chains land on their own class's side
    y = torch.arange(200) % 2
    x = model.generate(200, y=y)
    assert x.shape == (200, 2) and float((model.predict(x) == y).float().mean()) > 0.9
    assert model.generate(5).shape == (5, 2) and model.training


def test_px_weight_zero_is_a_plain_classifier() -> None:
    model = _tiny(px_weight=0.0)
    assert str(model.loss) == "mean(-log p(y|x))"
    assert "PCD" in str(_tiny(px_weight=0.5).loss) and "0.5 *" in str(_tiny(px_weight=0.5).loss)


def test_missing_or_out_of_range_labels_are_refused_by_name() -> None:
    model = _tiny()
    data = _blobs(8, 0)
    with pytest.raises(MissingVariableError, match="needs the variable 'y'"):
        model.train_step({"x": data["x"]})
    with pytest.raises(ParameterError, match=r"class indices of 'y' must lie in \[0, 2\)"):
        model.train_step({"x": data["x"], "y": data["y"] + 2})
    with pytest.raises(MissingVariableError, match=r"evaluate needs the labels 'y' \(class indices in \[0, 2\)\)"):
        model.evaluate({"x": data["x"]})
    with pytest.raises(ParameterError, match=r"labels 'y' must be class indices in \[0, 2\); got values in \[-1"):
        model.evaluate({"x": data["x"], "y": data["y"] - 1})
    with pytest.raises(ValueError, match=r"labels 'y' must be integer class indices of shape \(8,\)"):
        model.evaluate({"x": data["x"], "y": data["y"].float()})
    with pytest.raises(ValueError, match="needs a labelled dataset of at least 2 classes"):
        zoo.get("jem").build(zoo.get("jem").config(), zoo.DataInfo("toy", (2,), binary=False))


def test_the_classifier_must_be_the_energys_network() -> None:
    f = nn.Linear(2, 3)
    p = EnergyDistribution(var=["x"], energy=lambda x: -f(x).logsumexp(-1), event_shape=[2])
    own = Categorical(var=["y"], cond_var=["x"], features_shape=[3], net=LogitsHead(nn.Linear(2, 3)))
    with pytest.raises(ValueError, match="every parameter of p\\(y\\|x\\) must be one of p\\(x\\)'s"):
        JEMModel(p, own, -LogProb(own).mean())
    with pytest.raises(TypeError, match="Categorical classifier"):
        JEMModel(p, p, -LogProb(own).mean())  # type: ignore[arg-type]


def test_jem_through_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "jem"
    assert main(["train", "jem", "--dataset", "digits", "--hidden", "32", "--mcmc-steps", "5", "--sample-steps",
                 "5", "--buffer-size", "200", "--max-steps", "30", "--lr", "0.01", "--out", str(run),
                 "--progress", "false"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test_accuracy"] > 0.3 and 0 <= metrics["test_ece"] <= 1
    assert "15 equal-width" in metrics["calibration"]
    assert (run / "samples.png").stat().st_size > 0 and (run / "samples_by_class.png").stat().st_size > 0
    capsys.readouterr()
    assert main(["eval", str(run), "--n-test", "50"]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert ev["test_images"] == 50 and "test_ece" in ev and "test_accuracy" in ev
    assert main(["sample", str(run), "-n", "16", "-o", str(tmp_path / "jem.png")]) == 0
    assert (tmp_path / "jem.png").stat().st_size > 0
    capsys.readouterr()
    assert main(["latex", "jem"]) == 0 and r"\log p(y|x)" in capsys.readouterr().out
