"""The deepgm command: every subcommand as a user runs it, and one-line errors with exit status 2."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from deepgm.cli import main


def _err_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # one line, no traceback
    return err[0]


def test_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "vae" in out and "iwae" in out


def test_latex(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["latex", "vae"]) == 0
    assert capsys.readouterr().out.strip().startswith(r"\operatorname{mean}\left(D_{\mathrm{KL}}")
    assert main(["latex", "iwae"]) == 0
    assert r"\mathcal{L}_{5}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "pattern"),
    [
        (["train", "nosuch"], "unknown model 'nosuch'"),
        (["train", "vae", "--no-such-option", "1"], "unrecognized arguments: --no-such-option"),
        (["train", "vae", "--epochs", "many"], "argument --epochs: invalid"),
        (["train", "vae", "--decoder", "poisson"], "invalid choice: 'poisson'"),
        (["train", "vae", "--dataset", "imagenet"], "unknown dataset 'imagenet'"),
        (["latex", "nosuch"], "unknown model 'nosuch'"),
        (["eval", "/nonexistent/run"], "not a run folder"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv: list[str], pattern: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert pattern in _err_line(capsys)


def test_missing_mnist_names_the_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DEEPGM_DATA", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert main(["train", "vae", "--dataset", "mnist", "--data-dir", str(tmp_path / "empty"),
                 "--out", str(tmp_path / "run")]) == 2
    assert "train-images-idx3-ubyte" in _err_line(capsys)


def test_malformed_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\nz_dim = 3\n")
    assert main(["train", "vae", "--config", str(bad)]) == 2
    assert "not valid TOML" in _err_line(capsys)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[model]\nzdim = 3\n")
    assert main(["train", "vae", "--config", str(unknown)]) == 2
    assert "unknown option(s) ['zdim']" in _err_line(capsys)


def test_train_eval_sample_resume_on_digits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    cfg = tmp_path / "cfg.toml"
    cfg.write_text("[model]\nz_dim = 2\nhidden = [32]\n[train]\nbatch_size = 100\n")
    assert main(["train", "vae", "--config", str(cfg), "--epochs", "1", "--out", str(run), "--progress", "false",
                 "--eval-k", "20"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test_elbo"] < 0 and metrics["test_nll_k20"] > 0
    for name in ("samples.png", "reconstructions.png", "latent_traversal.png", "latent_map.png",
                 "loss_curve.png", "objective.tex", "metrics.csv", "run.json"):
        assert (run / name).stat().st_size > 0, name
    assert json.loads((run / "run.json").read_text())["model_config"]["z_dim"] == 2
    assert json.loads((run / "run.json").read_text())["data_config"]["binarize"] == "dynamic"  # auto: Bernoulli
    capsys.readouterr()
    assert main(["eval", str(run), "--k", "10", "--n-test", "20"]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert ev["test_images"] == 20 and ev["test_nll"] > 0
    assert main(["sample", str(run), "-n", "16", "-o", str(tmp_path / "grid.png")]) == 0
    assert (tmp_path / "grid.png").stat().st_size > 0
    assert main(["train", "vae", "--config", str(cfg), "--epochs", "2", "--out", str(run), "--resume",
                 "--progress", "false", "--eval-k", "20"]) == 0
    assert json.loads((run / "metrics.json").read_text())["steps"] == 2 * metrics["steps"]


def test_train_a_flow_on_digits_then_inpaint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "nice"
    assert main(["train", "nice", "--hidden", "32", "--epochs", "1", "--out", str(run), "--progress", "false"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test_bits_per_dim"] > 0 and (run / "samples.png").stat().st_size > 0
    assert json.loads((run / "run.json").read_text())["data_config"]["binarize"] == "none"  # auto: grey levels
    capsys.readouterr()
    assert main(["inpaint", str(run), "-n", "4", "--steps", "20", "-o", str(tmp_path / "fill.png")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["images"] == 4 and 0 <= out["mala_acceptance"] <= 1 and (tmp_path / "fill.png").stat().st_size > 0
    lp = out["mean_log_likelihood"]
    assert lp["mode"] > lp["observed, grey fill"] and math.isfinite(lp["sample"])  # the fill raised log p
    assert main(["inpaint", str(run), "--hide", "middle"]) == 2
    assert "--hide" in _err_line(capsys)
