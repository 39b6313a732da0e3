"""The deepgm command: every subcommand as a user runs it, and one-line errors with exit status 2."""

from __future__ import annotations

import json
import math
import re
import time
import typing
from pathlib import Path

import pytest
import torch

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


def test_missing_data_advice_names_what_the_cli_has(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DEEPGM_DATA", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert main(["train", "vae", "--dataset", "mnist", "--out", str(tmp_path / "run")]) == 2
    line = _err_line(capsys)
    assert "train-images-idx3-ubyte" in line and "--data-dir" in line
    assert "download=True" not in line  # the Python API's option, which the CLI does not have
    assert not (tmp_path / "run").exists()  # refused before anything was written


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


def test_train_help_shows_each_default_once(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["train", "vae", "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps help lines
    assert "--epochs EPOCHS (default: 10)" in text and "--eval-k EVAL_K importance" in text
    assert re.findall(r"\(default: [^)]*\) \(default:", text) == []  # was "(default: 10) (default: None)"


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, typing.Any]:
    """A VAE trained 2 epochs on the digits, with the lines drawn into its loss_curve.png recorded and a
    2 s pause in its final evaluation; its folder and how long ``deepgm train`` took."""
    import deepgm.viz.plots as plots
    from deepgm.models import VAE

    lines: dict[str, list[float]] = {}
    write, log_likelihood = plots._write, VAE.log_likelihood

    def recording(fig: typing.Any, path: Path) -> Path:
        if path.name == "loss_curve.png":
            lines.update({ln.get_label(): list(ln.get_xdata()) for ln in fig.axes[0].lines})
        return write(fig, path)

    def slow(self: VAE, *args: typing.Any, **kwargs: typing.Any) -> torch.Tensor:
        time.sleep(2.0)
        return log_likelihood(self, *args, **kwargs)

    run = tmp_path_factory.mktemp("vae") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plots, "_write", recording)
        mp.setattr(VAE, "log_likelihood", slow)
        start = time.perf_counter()
        assert main(["train", "vae", "--z-dim", "2", "--hidden", "16", "--epochs", "2", "--log-every", "5",
                     "--out", str(run), "--progress", "false", "--eval-k", "5"]) == 0
        wall = time.perf_counter() - start
    return {"run": run, "lines": lines, "wall": wall, "metrics": json.loads((run / "metrics.json").read_text())}


def test_loss_curve_plots_train_and_validation_against_the_step(vae_run: dict[str, typing.Any]) -> None:
    steps, lines = vae_run["metrics"]["steps"], vae_run["lines"]
    assert lines["validation (per epoch)"] == [steps // 2, steps]  # at the step of each epoch's end
    train_x = lines["train"]
    assert train_x[0] == 5 and train_x[-1] == steps and train_x == sorted(train_x)  # the logged steps


def test_metrics_report_training_and_evaluation_time_apart(vae_run: dict[str, typing.Any]) -> None:
    metrics = vae_run["metrics"]
    assert metrics["eval_seconds"] >= 2.0  # the final evaluation (with its 2 s pause)...
    assert metrics["train_seconds"] <= vae_run["wall"] - 2.0  # ...is not in the training time


def test_sample_writes_tensors_and_a_grid_beside(vae_run: dict[str, typing.Any], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    import numpy as np

    run = vae_run["run"]
    assert main(["sample", str(run), "-n", "10", "-o", str(tmp_path / "s.pt")]) == 0
    assert torch.load(tmp_path / "s.pt").shape == (10, 64) and (tmp_path / "s.png").stat().st_size > 0
    assert main(["sample", str(run), "-n", "7", "-o", str(tmp_path / "s.npy")]) == 0
    assert np.load(tmp_path / "s.npy").shape == (7, 64)
    capsys.readouterr()
    assert main(["sample", str(run), "-o", str(tmp_path / "s.txt")]) == 2
    assert ".png, .pt or .npy" in _err_line(capsys)


def test_eval_of_a_gan_reports_sample_metrics(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "gan"
    assert main(["train", "gan", "--z-dim", "4", "--hidden", "16", "--epochs", "1", "--out", str(run),
                 "--progress", "false"]) == 0
    assert (run / "samples.png").stat().st_size > 0
    capsys.readouterr()
    assert main(["eval", str(run), "--n-test", "50"]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert ev["test_images"] == 50 and ev["test_mmd2"] > 0 and 0 <= ev["precision"] <= 1 and "28x28" in ev["note"]


def test_cli_functions_use_every_argument() -> None:
    import ast

    import deepgm.cli

    tree = ast.parse(Path(deepgm.cli.__file__).read_text())
    for fn in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
        used = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name)}
        params = [a.arg for a in (*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs) if a.arg != "self"]
        unused = [p for p in params if not p.startswith("_") and p not in used]
        assert not unused, f"cli.{fn.name} never uses its argument(s) {unused}"


def test_the_vae_example_says_how_it_runs_and_runs(tmp_path: Path) -> None:
    import importlib.util

    root = Path(__file__).resolve().parents[1]
    path = root / "examples" / "vae_quickstart.py"
    spec = importlib.util.spec_from_file_location("vae_quickstart", path)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    how = (example.__doc__ or "").split("Run:", 1)[1].split(". ", 1)[0]  # "Run: <how to run this file>."
    commands = [ln for ln in (root / "scripts" / "quickstart.sh").read_text().splitlines() if not ln.startswith("#")]
    assert "quickstart.sh" not in how or any("vae_quickstart.py" in ln for ln in commands), how
    metrics = example.main(epochs=1, out=tmp_path / "q")
    assert metrics["test_elbo"] < 0 and (tmp_path / "q" / "metrics.json").exists()


# -- run folders: nothing lost ----------------------------------------------------------------------------
TINY = ["--z-dim", "2", "--hidden", "8", "--progress", "false", "--eval-k", "2"]


def _pointed(run: Path) -> dict[str, str]:
    ckpts = run / "checkpoints"
    return {p: (ckpts / p).read_text().strip() for p in ("last", "best") if (ckpts / p).exists()}


def test_training_into_an_existing_run_is_refused_unless_overwritten(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert main(["train", "vae", *TINY, "--epochs", "1", "--out", str(run)]) == 0
    before = {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"}
    capsys.readouterr()
    assert main(["train", "vae", *TINY, "--max-steps", "3", "--out", str(run)]) == 2
    assert "already holds a run; pass --resume to continue it, --overwrite" in _err_line(capsys)
    after = {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"}
    assert after == before  # nothing of the run changed
    # --overwrite replaces the run whole: no checkpoint of the old one is left for best/last to name
    assert main(["train", "vae", "--z-dim", "3", "--hidden", "8", "--max-steps", "3", "--progress", "false",
                 "--eval-k", "2", "--overwrite", "--out", str(run)]) == 0
    steps = sorted(d.name for d in (run / "checkpoints").iterdir() if d.name.startswith("step-"))
    assert steps == ["step-000000003"] and set(_pointed(run).values()) <= set(steps)
    assert json.loads((run / "run.json").read_text())["model_config"]["z_dim"] == 3
    capsys.readouterr()
    assert main(["eval", str(run), "--k", "2", "--n-test", "10"]) == 0


def test_an_overwrite_with_missing_data_leaves_the_old_run_intact(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert main(["train", "vae", *TINY, "--epochs", "1", "--out", str(run)]) == 0
    before = {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"}
    capsys.readouterr()
    typo = tmp_path / "no-such-folder"
    assert main(["train", "vae", "--dataset", "mnist", "--data-dir", str(typo), "--overwrite",
                 "--out", str(run)]) == 2
    assert str(typo) in _err_line(capsys)
    after = {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"}
    assert after == before  # the data were refused before the run folder was touched


def test_a_model_with_shared_weights_resumes(tmp_path: Path) -> None:
    # M2's classifier is shared by two of its distributions: its checkpoint stores those tensors once
    run = tmp_path / "m2"
    common = ["--progress", "false", "--eval-k", "2", "--checkpoint-every", "1", "--out", str(run)]
    assert main(["train", "m2", "--max-steps", "2", *common]) == 0
    assert main(["train", "m2", "--max-steps", "3", "--resume", *common]) == 0
    assert (run / "checkpoints" / "last").read_text().strip() == "step-000000003"


def test_a_run_folder_trains_one_process_at_a_time(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import os
    import socket

    from deepgm.zoo.runs import LOCK_NAME, hold_run

    run = tmp_path / "run"
    with hold_run(run):  # another training holds the folder
        assert main(["train", "vae", *TINY, "--max-steps", "2", "--out", str(run)]) == 2
        line = _err_line(capsys)
    assert f"is in use by another training (pid {os.getpid()} on {socket.gethostname()} since " in line
    assert sorted(p.name for p in run.iterdir()) == [LOCK_NAME]  # nothing written: no run.json


def test_a_resume_with_other_options_is_refused_before_anything_is_written(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert main(["train", "vae", *TINY, "--max-steps", "2", "--out", str(run)]) == 0
    meta = (run / "run.json").read_bytes()
    for argv, expected in [
        (["--z-dim", "4"], "options differ from the run's: --z-dim 2 → 4"),
        (["--lr", "0.01", "--batch-size", "50"], "--lr 0.001 → 0.01, --batch-size 100 → 50; that is a different run"),
        (["--seed", "3"], "--allow-changed seed"),
        (["--dataset", "mnist"], "the data of a run cannot change (--dataset digits → mnist)"),
        (["--allow-changed", "z-dim", "--z-dim", "4"], "the changed options change the model's weights"),
    ]:
        capsys.readouterr()
        assert main(["train", "vae", "--resume", "--out", str(run), *argv]) == 2, argv
        assert expected in _err_line(capsys)
        assert (run / "run.json").read_bytes() == meta and _pointed(run) == {"last": "step-000000002"}
    # what may change, changes; options not given keep the run's values; the resume is recorded
    assert main(["train", "vae", "--resume", "--out", str(run), "--max-steps", "4", "--log-every", "1",
                 "--allow-changed", "lr", "--lr", "0.002", "--eval-k", "2"]) == 0
    recorded = json.loads((run / "run.json").read_text())
    assert recorded["resumes"][-1]["changed"] == {"lr": [0.001, 0.002], "max_steps": [2, 4], "log_every": [20, 1]}
    assert recorded["model_config"]["z_dim"] == 2 and recorded["train_config"]["max_steps"] == 4
    state = torch.load(run / "checkpoints" / "step-000000004" / "state.pt", weights_only=True)
    assert state["trainable"]["optimizer"]["param_groups"][0]["lr"] == 0.002  # the allowed change took effect


def test_eval_prints_its_result_before_a_failed_write(vae_run: dict[str, typing.Any], monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    import deepgm.cli

    def read_only(path: typing.Any, _text: str) -> Path:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(deepgm.cli, "write_text_atomic", read_only)
    capsys.readouterr()
    assert main(["eval", str(vae_run["run"]), "--k", "2", "--n-test", "10"]) == 2
    out, err = capsys.readouterr()
    assert json.loads(out)["test_images"] == 10  # the result, computed and shown
    assert err.strip().splitlines() == [f"deepgm: error: the result above was not saved: cannot write "
                                        f"{vae_run['run'] / 'eval.json'} (Permission denied)"]


def test_a_short_run_still_gets_its_report(tmp_path: Path) -> None:
    run = tmp_path / "run"  # two steps, none logged (log every 50), stopped inside the first epoch
    assert main(["train", "vae", *TINY, "--max-steps", "2", "--log-every", "50", "--out", str(run)]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["steps"] == 2 and metrics["test_elbo"] < 0


@pytest.mark.parametrize(("sig", "status"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_signal_stops_training_after_a_checkpoint(sig: str, status: int, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    import os
    import signal
    import subprocess
    import sys

    import deepgm

    run = tmp_path / "run"
    src = str(Path(deepgm.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "deepgm.cli", "train", "vae", *TINY, "--epochs", "10000",
                             "--checkpoint-every", "1", "--out", str(run)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (run / "checkpoints" / "last").exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        proc.send_signal(getattr(signal, sig))
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == status, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"deepgm: training stopped by {sig} after step ") and "--resume" in last, err
    step = int(last.split(" after step ")[1].split(";")[0])
    assert _pointed(run)["last"] == f"step-{step:09d}" and f"checkpoint {run}/checkpoints/step-{step:09d}" in last
    capsys.readouterr()
    assert main(["train", "vae", "--resume", "--out", str(run), "--max-steps", str(step + 1), "--eval-k", "2"]) == 0
    assert json.loads((run / "metrics.json").read_text())["steps"] == step + 1


def test_a_start_removes_what_a_killed_run_left_in_its_folder(tmp_path: Path) -> None:
    from deepgm.zoo.runs import hold_run

    run = tmp_path / "run"
    (run / ".tmp-abc123").mkdir(parents=True)  # a folder write cut short by SIGKILL
    (run / ".tmp-abc123" / "model.safetensors").write_bytes(b"half")
    (run / ".metrics.json.x1y2.tmp").write_text("{")  # a file write cut short
    (run / "metrics.csv").write_text("step,loss\n")
    with hold_run(run):
        assert sorted(p.name for p in run.iterdir()) == [".lock", "metrics.csv"]
