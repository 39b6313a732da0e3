"""Bad input, as a user types it, against the README's promise: one line naming what is wrong, exit 2.

The table ``PROBES`` holds (argv, a substring of the expected line); each runs in-process through
``deepgm.cli.main`` and must exit 2 with exactly one line on stderr and no traceback, and a refused
``train`` must leave nothing behind. ``{tmp}`` is the test's temporary folder, ``{places}`` a folder of
prepared bad files, ``{run}`` a small trained run, ``{broken}`` a copy of it damaged by the probe's
``damage``. The per-family probes run over every registered model (``zoo.names()``): each option with a
rule is given a value the rule refuses, so a new family is held to the same standard the day it is
registered. A few probes run as a real process, where only a process can show it (the exit status and
stderr of the ``deepgm`` command itself).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import typing
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

import deepgm
from deepgm import zoo
from deepgm.cli import main
from deepgm.data import DataConfig
from deepgm.errors import ConfigError
from deepgm.training import TrainerConfig
from deepgm.zoo.options import _field_parser, rule_of

NO_CUDA = not torch.cuda.is_available()

PROBES: list[tuple[list[str], str]] = [
    # training options, checked before anything runs
    (["train", "vae", "--batch-size", "0"], "--batch-size must be an integer of at least 1, got 0"),
    (["train", "vae", "--eval-batch-size", "-3"], "--eval-batch-size must be an integer of at least 1"),
    (["train", "vae", "--batch-size", "5000"], "batch_size must be in [1, "),  # more than the training set
    (["train", "vae", "--epochs", "0"], "--epochs must be an integer of at least 1, got 0"),
    (["train", "vae", "--max-steps", "0"], "--max-steps must be an integer of at least 1"),
    (["train", "vae", "--log-every", "0"], "--log-every must be an integer of at least 1"),
    (["train", "vae", "--checkpoint-every", "0"], "--checkpoint-every must be an integer of at least 1"),
    (["train", "vae", "--keep-checkpoints", "0"], "--keep-checkpoints must be an integer of at least 1"),
    (["train", "vae", "--early-stopping-patience", "0"], "--early-stopping-patience must be an integer of at least 1"),
    (["train", "vae", "--clip-grad-norm", "-1"], "--clip-grad-norm must be a positive finite number"),
    (["train", "vae", "--clip-grad-norm", "0"], "--clip-grad-norm must be a positive finite number"),
    (["train", "vae", "--seed", "-1"], "--seed must be an integer in [0, 2**32)"),
    (["train", "vae", "--device", "cuda:99"], "--device must be"),
    (["train", "vae", "--device", "tpu"], "--device must be a torch device"),
    (["train", "vae", "--eval-k", "0"], "argument --eval-k: must be an integer of at least 1, got 0"),
    (["train", "vae", "--eval-k", "many"], "argument --eval-k: expected an integer"),
    (["train", "vae", "--data-dir", ""], "data_dir must name a folder"),
    (["train", "vae", "--dataset", "dsprites"], "too large to load whole"),
    # model options: the generic rules and the declared ones
    (["train", "vae", "--z-dim", "0"], "--z-dim must be an integer of at least 1, got 0"),
    (["train", "vae", "--hidden", "64,0"], "--hidden must be a non-empty list of integers of at least 1"),
    (["train", "vae", "--hidden", ""], "--hidden must be a non-empty list"),
    (["train", "vae", "--lr", "-0.1"], "--lr must be a positive finite number, got -0.1"),
    (["train", "vae", "--lr", "nan"], "--lr must be a positive finite number, got nan"),
    (["train", "iwae", "--k", "0"], "--k must be an integer of at least 1"),
    (["train", "gmm-vae", "--components", "-1"], "--components must be an integer of at least 0"),
    (["train", "maf", "--logit-alpha", "0.7"], "--logit-alpha must be a number in (0, 0.5)"),
    (["train", "nice", "--levels", "1"], "--levels must be an integer of at least 2"),
    (["train", "wgan", "--clip", "0"], "--clip must be a positive finite number"),
    (["train", "wgan-gp", "--gp-weight", "-1"], "--gp-weight must be a finite number of at least 0"),
    (["train", "gmmn", "--bandwidths", "0,1"], "--bandwidths must be a non-empty list of positive numbers"),
    (["train", "beta-vae", "--beta", "-1"], "--beta must be a finite number of at least 0"),
    (["train", "ffjord", "--steps", "0"], "--steps must be an integer of at least 1"),
    (["train", "gan", "--disc-lr", "0"], "--disc-lr must be a positive finite number"),
    # --config files
    (["train", "vae", "--config", "{places}"], "is a folder, expected a TOML file"),
    (["train", "vae", "--config", "{places}/binary.toml"], "is not a text file"),
    (["train", "vae", "--config", "{places}/missing.toml"], "missing.toml does not exist"),
    (["train", "vae", "--config", "{places}/top.toml"], "unknown tables ['z_dim']"),
    (["train", "vae", "--config", "{places}/value.toml"], "option 'hidden' has a bad value 'abc'"),
    (["train", "vae", "--config", "{places}/zero.toml"], "--z-dim must be an integer of at least 1, got 0"),
    # run folders
    (["train", "vae", "--out", "{places}/file"], "is a file, expected a run folder"),
    (["train", "vae", "--out", "{places}/file/run"], "cannot be written"),
    (["train", "vae", "--resume", "--out", "{tmp}/none"], "is not a run folder (it does not exist)"),
    (["train", "vae", "--resume", "--overwrite"], "give one of them"),
    (["train", "vae", "--allow-changed", "lr"], "--allow-changed applies to --resume only"),
    (["train", "vae", "--resume", "--allow-changed", "nosuch", "--out", "{run}"], "unknown option(s) nosuch"),
    (["train", "vae", "--out", "{run}"], "already holds a run; pass --resume to continue it, --overwrite"),
    (["train", "iwae", "--resume", "--out", "{run}"], "is a 'vae', not a 'iwae'"),
    (["train", "vae", "--resume", "--z-dim", "3", "--out", "{run}"], "options differ from the run's: --z-dim 2 → 3"),
    (["train", "vae", "--resume", "--dataset", "mnist", "--out", "{run}"], "the data of a run cannot change"),
    (["train", "vae", "--resume", "--allow-changed", "z-dim", "--z-dim", "3", "--out", "{run}"],
     "the changed options change the model's weights"),
    # eval, sample, inpaint
    (["eval", "{run}", "--k", "0"], "argument --k: must be an integer of at least 1, got 0"),
    (["eval", "{run}", "--n-test", "0"], "argument --n-test: must be an integer of at least 1, got 0"),
    (["eval", "{places}/file"], "is not a run folder (a file)"),
    (["eval", "{places}"], "is not a run folder (no run.json)"),
    (["eval", "{broken}"], "run.json is corrupt"),
    (["eval", "{broken}"], "unknown model 'nosuch'"),
    (["eval", "{broken}"], "no checkpoint"),
    (["eval", "{broken}"], "model.safetensors"),
    (["eval", "{broken}"], "state.pt"),
    (["sample", "{run}", "-n", "0"], "argument -n: must be an integer of at least 1, got 0"),
    (["sample", "{run}", "-o", "{places}/file/x.png"], "file is a file, expected a folder there"),
    (["inpaint", "{run}", "--steps", "0"], "argument --steps: must be an integer of at least 1"),
    (["inpaint", "{run}", "-n", "0"], "argument -n: must be an integer of at least 1"),
    (["inpaint", "{run}", "--lr", "0"], "argument --lr: must be a positive finite number"),
    (["inpaint", "{run}", "--step-size", "-1"], "argument --step-size: must be a positive finite number"),
    (["inpaint", "{run}"], "inpainting needs a flow"),
]


def _damage_json(run: Path) -> None:
    (run / "run.json").write_text("{not json")


def _unknown_model(run: Path) -> None:
    meta = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**meta, "model": "nosuch"}))


def _no_checkpoints(run: Path) -> None:
    shutil.rmtree(run / "checkpoints")


def _checkpoint(run: Path) -> Path:
    ckpts = run / "checkpoints"
    return ckpts / (ckpts / ("best" if (ckpts / "best").exists() else "last")).read_text().strip()


def _flip_weights(run: Path) -> None:
    path = _checkpoint(run) / "model.safetensors"
    data = bytearray(path.read_bytes())
    for i in range(len(data) - 64, len(data) - 32):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate_state(run: Path) -> None:
    path = _checkpoint(run) / "state.pt"
    path.write_bytes(path.read_bytes()[:100])


# the damage of each "{broken}" probe, in the order they appear in PROBES
DAMAGES: list[Callable[[Path], None]] = [_damage_json, _unknown_model, _no_checkpoints, _flip_weights, _truncate_state]


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("places")
    (d / "file").write_text("not a folder\n")
    (d / "binary.toml").write_bytes(bytes(range(256)))
    (d / "top.toml").write_text("z_dim = 3\n")
    (d / "value.toml").write_text('[model]\nhidden = "abc"\n')
    (d / "zero.toml").write_text("[model]\nz_dim = 0\n")
    return d


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("trained") / "run"
    assert main(["train", "vae", "--z-dim", "2", "--hidden", "8", "--max-steps", "2", "--progress", "false",
                 "--eval-k", "2", "--out", str(run)]) == 0
    return run


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith("training ")]  # the start line of train
    assert len(lines) == 1, lines
    assert lines[0].startswith("deepgm: error: "), lines[0]
    return lines[0]


@pytest.mark.parametrize(("index", "argv", "expected"), [(i, a, e) for i, (a, e) in enumerate(PROBES)],
                         ids=[" ".join(a)[:60] for a, _ in PROBES])
def test_probe(index: int, argv: list[str], expected: str, tmp_path: Path, places: Path, trained: Path,
               capsys: pytest.CaptureFixture[str]) -> None:
    run = trained
    if any("{run}" in a for a in argv):  # probes may not change the shared run: give each its own copy
        run = tmp_path / "run"
        shutil.copytree(trained, run)
    broken = tmp_path / "broken"
    if any("{broken}" in a for a in argv):
        shutil.copytree(trained, broken)
        nth = sum(1 for a, _ in PROBES[:index] if "{broken}" in " ".join(a))
        DAMAGES[nth](broken)
    argv = [a.format(tmp=tmp_path, places=places, run=run, broken=broken) for a in argv]
    new = tmp_path / "new-run"
    if argv[0] == "train" and "--out" not in argv:
        argv += ["--out", str(new)]
    before = json.loads((run / "run.json").read_text()) if "--out" in argv and str(run) in argv else None
    capsys.readouterr()
    assert main(argv) == 2
    assert expected in _one_line(capsys)
    assert not new.exists(), f"a refused train left {sorted(p.name for p in new.iterdir())}"
    if before is not None:  # a refused train into an existing run changes nothing of it
        assert json.loads((run / "run.json").read_text()) == before


def test_the_table_covers_at_least_30_probes() -> None:
    assert len(PROBES) >= 30
    assert sum(1 for a, _ in PROBES if "{broken}" in " ".join(a)) == len(DAMAGES)


def _refused_value(name: str, tp: typing.Any, metadata: typing.Mapping[str, typing.Any]) -> str | None:
    """A command-line value that the field's rule refuses, or None (no rule, or none of the candidates)."""
    rule = rule_of(name, tp, metadata)
    if rule is None:
        return None
    conv, choices = _field_parser(tp)
    if choices:
        return None
    for text in ("0", "-1", "nan", "1e9"):
        try:
            value = conv(text)
        except ValueError:
            continue
        if value is not None and not rule.ok(value):
            return text
    return None


@pytest.mark.parametrize("name", zoo.names())
def test_every_family_refuses_each_option_outside_its_rule(name: str, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    entry = zoo.get(name)
    hints = typing.get_type_hints(entry.config)
    checked = 0
    for f in dataclasses.fields(entry.config):
        text = _refused_value(f.name, hints[f.name], f.metadata)
        if text is None:
            continue
        flag = "--" + f.name.replace("_", "-")
        capsys.readouterr()
        assert main(["train", name, flag, text, "--out", str(tmp_path / "run")]) == 2, flag
        assert f"{flag} must be" in _one_line(capsys)
        checked += 1
    assert checked >= 2, f"{name}: only {checked} option(s) have a rule"
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("name", zoo.names())
def test_every_family_builder_refuses_a_bad_config(name: str) -> None:
    """The API holds too: the registry's builder checks the config before building."""
    entry = zoo.get(name)
    field = next(f for f in dataclasses.fields(entry.config) if typing.get_type_hints(entry.config)[f.name] is int)
    cfg = dataclasses.replace(entry.config(), **{field.name: -1})
    with pytest.raises(ConfigError, match=rf"{field.name} must be an integer of at least"):
        entry.build(cfg, zoo.DataInfo("digits", (64,), 10))


@pytest.mark.parametrize(
    ("config", "values", "expected"),
    [
        (TrainerConfig, {"batch_size": 0}, "batch_size must be an integer of at least 1"),
        (TrainerConfig, {"clip_grad_norm": -1.0}, "clip_grad_norm must be a positive finite number"),
        (TrainerConfig, {"clip_grad_norm": float("inf")}, "clip_grad_norm must be a positive finite number"),
        (TrainerConfig, {"log_every": 0}, "log_every must be an integer of at least 1"),
        (TrainerConfig, {"early_stopping_patience": 0}, "early_stopping_patience must be"),
        (TrainerConfig, {"device": "cuda:99"}, "device must be"),
        (DataConfig, {"dataset": "imagenet"}, "unknown dataset 'imagenet'"),
        (DataConfig, {"binarize": "maybe"}, "binarize must be 'auto', 'dynamic' or 'none'"),
    ],
)
def test_api_configs_refuse_values_outside_their_meaning(config: type, values: dict[str, typing.Any],
                                                         expected: str) -> None:
    with pytest.raises(ValueError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        config(**values)


def test_debug_shows_the_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "vae", "--z-dim", "0", "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "ConfigError" in err
    assert err.strip().splitlines()[-1] == "deepgm: error: --z-dim must be an integer of at least 1, got 0"


def _deepgm(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    src = str(Path(deepgm.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "deepgm.cli", *argv], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=120)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["train", "vae", "--clip-grad-norm", "-1"], "--clip-grad-norm must be a positive finite number"),
        (["sample", "nosuch-run", "-n", "0"], "argument -n: must be an integer of at least 1"),
    ],
)
def test_the_command_itself_prints_one_line_and_exits_2(argv: list[str], expected: str, tmp_path: Path) -> None:
    done = _deepgm(*argv, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("deepgm: error: ") and expected in lines[0], done.stderr
    assert not (tmp_path / "runs").exists()


def test_a_full_disk_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    import errno

    import deepgm.zoo.runs

    def full(path: typing.Any, _text: str) -> Path:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(deepgm.zoo.runs, "write_text_atomic", full)
    run = tmp_path / "run"
    assert main(["train", "vae", "--z-dim", "2", "--hidden", "8", "--max-steps", "1", "--out", str(run)]) == 2
    assert _one_line(capsys) == f"deepgm: error: {run / 'run.json'}: No space left on device (the disk is full)"


def test_eval_sample_inpaint_seeds_are_not_negative(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("eval", "sample", "inpaint"):
        assert main([command, "nosuch-run", "--seed", "-1"]) == 2
        assert "argument --seed: must be an integer of at least 0, got -1" in _one_line(capsys)
