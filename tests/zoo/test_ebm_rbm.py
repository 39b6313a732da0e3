"""The zoo's ebm (each objective) and rbm train, evaluate with the estimator named, and run through the CLI's
train / eval / sample / latex."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from deepgm import zoo
from deepgm.cli import main
from deepgm.data import toy_2d

OBJECTIVES = ["pcd", "cd", "short-run", "sm", "ssm", "dsm", "nce"]


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_each_ebm_objective_trains_on_a_2d_toy_and_reports_a_grid_nll(objective: str) -> None:
    torch.manual_seed(0)
    entry = zoo.get("ebm")
    model = entry.build(entry.config(objective=objective, hidden=(32, 32), mcmc_steps=10, buffer_size=500,
                                     sample_steps=10), zoo.DataInfo("8gaussians", (2,), binary=False))
    x = toy_2d("8gaussians", 2000, seed=0)
    for _ in range(40):
        model.train_step({"x": x[torch.randint(0, 2000, (128,))]})
    metrics = model.evaluate({"x": toy_2d("8gaussians", 500, seed=1)})
    assert math.isfinite(metrics["test_nll_grid"]) and "grid" in metrics["likelihood"]
    assert model.loss.to_latex()


def test_rbm_and_ebm_through_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "rbm"
    assert main(["train", "rbm", "--hidden-units", "12", "--epochs", "1", "--ais-chains", "20",
                 "--ais-temperatures", "200", "--sample-sweeps", "20", "--out", str(run), "--progress", "false"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["ais_temperatures"] == 200 and metrics["ais_chains"] == 20
    assert abs(metrics["test_loglik_ais"] - metrics["test_loglik_exact"]) < 1.0  # 2^12 states: exact too
    capsys.readouterr()
    assert main(["eval", str(run), "--n-test", "50"]) == 0
    assert "test_loglik_ais" in json.loads(capsys.readouterr().out)
    assert main(["sample", str(run), "-n", "16", "-o", str(tmp_path / "rbm.png")]) == 0
    assert (tmp_path / "rbm.png").stat().st_size > 0
    run = tmp_path / "ebm"
    assert main(["train", "ebm", "--hidden", "16", "--mcmc-steps", "5", "--sample-steps", "5", "--buffer-size",
                 "100", "--epochs", "1", "--out", str(run), "--progress", "false"]) == 0
    assert json.loads((run / "metrics.json").read_text())["likelihood"].startswith("unnormalised")
    assert main(["sample", str(run), "-n", "16", "-o", str(tmp_path / "ebm.png")]) == 0
    capsys.readouterr()
    assert main(["latex", "ebm"]) == 0 and "PCD" in capsys.readouterr().out
    assert main(["latex", "rbm"]) == 0 and r"\mathrm{CD}" in capsys.readouterr().out
