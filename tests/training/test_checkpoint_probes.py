"""Probes: damaged checkpoints → one deepgm error in one line, naming the file and what was expected.

A table of what a disk, a copy or a hand can do to a checkpoint folder, each with the error it must give
(never a raw safetensors, zip or pickle exception, never a silent load). Every family's checkpoints are
written by the same ``save_checkpoint``, so one small model stands for all of them; the CLI probes at
the end check that the same damage reaches the user as one line and exit status 2.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from deepgm.errors import CheckpointCorruptError, CheckpointMismatchError, DeepGMError
from deepgm.training import Trainer, TrainerConfig
from deepgm.training.checkpoint import MANIFEST_NAME, CheckpointNotFoundError, latest_checkpoint, load_checkpoint
from deepgm.zoo import DataInfo, get
from deepgm.zoo.vae import VAEConfig


def _model(hidden: tuple[int, ...] = (8,)):
    torch.manual_seed(123)
    return get("vae").build(VAEConfig(z_dim=2, hidden=hidden), DataInfo("toy", (16,)))


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    data = {"x": torch.bernoulli(torch.rand(40, 16, generator=torch.Generator().manual_seed(0)))}
    cfg = TrainerConfig(epochs=1, batch_size=10, out_dir=out, log_every=1, progress=False)
    Trainer(_model(), data, cfg).fit()
    return latest_checkpoint(out / "checkpoints")


class _Evil:
    def __reduce__(self) -> tuple[Callable[..., object], tuple[str]]:
        return (os.system, ("echo this must never run",))


def _flip(f: Path) -> None:
    b = bytearray(f.read_bytes())
    b[len(b) * 3 // 5] ^= 0xFF
    f.write_bytes(bytes(b))


def _truncate(f: Path) -> None:
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


def _unverified(damage: Callable[[Path], None]) -> Callable[[Path], None]:
    """Damage a checkpoint that has no manifest (written before manifests existed)."""
    def apply(ckpt: Path) -> None:
        (ckpt / MANIFEST_NAME).unlink()
        damage(ckpt)
    return apply


def _foreign(ckpt: Path) -> None:
    from safetensors.torch import save_model

    (ckpt / MANIFEST_NAME).unlink()
    save_model(_model(hidden=(5,)), str(ckpt / "model.safetensors"))


PROBES: list[tuple[str, Callable[[Path], None], type[Exception], str]] = [
    ("flipped byte in the weights", lambda c: _flip(c / "model.safetensors"), CheckpointCorruptError,
     r"model\.safetensors is corrupt: SHA-256 [0-9a-f]{64}, the manifest recorded [0-9a-f]{64}"),
    ("flipped byte in the state", lambda c: _flip(c / "state.pt"), CheckpointCorruptError,
     r"state\.pt is corrupt: SHA-256 [0-9a-f]{64}, the manifest recorded [0-9a-f]{64}"),
    ("truncated weights", lambda c: _truncate(c / "model.safetensors"), CheckpointCorruptError,
     r"model\.safetensors is corrupt: \d+ bytes, the manifest recorded \d+"),
    ("truncated state", lambda c: _truncate(c / "state.pt"), CheckpointCorruptError,
     r"state\.pt is corrupt: \d+ bytes, the manifest recorded \d+"),
    ("weights deleted", lambda c: (c / "model.safetensors").unlink(), CheckpointCorruptError,
     r"model\.safetensors is missing \(the manifest lists it"),
    ("manifest not JSON", lambda c: (c / MANIFEST_NAME).write_bytes(b"\x00\xff garbage"), CheckpointCorruptError,
     r"manifest\.json is corrupt \(expected JSON listing the SHA-256"),
    ("manifest without the state", lambda c: (c / MANIFEST_NAME).write_text('{"files": {"model.safetensors": {}}}'),
     CheckpointCorruptError, r"manifest\.json is corrupt"),
    ("unverified, truncated weights", _unverified(lambda c: _truncate(c / "model.safetensors")),
     CheckpointCorruptError, r"model\.safetensors is not a readable safetensors file"),
    ("unverified, text for weights", _unverified(lambda c: (c / "model.safetensors").write_text("hello")),
     CheckpointCorruptError, r"model\.safetensors is not a readable safetensors file"),
    ("unverified, truncated state", _unverified(lambda c: _truncate(c / "state.pt")), CheckpointCorruptError,
     r"state\.pt is not a readable torch\.save file \(\w+Error"),
    ("unverified, text for state", _unverified(lambda c: (c / "state.pt").write_text("hello world")),
     CheckpointCorruptError, r"state\.pt is not a readable torch\.save file"),
    ("unverified, empty state", _unverified(lambda c: (c / "state.pt").write_bytes(b"")), CheckpointCorruptError,
     r"state\.pt is not a readable torch\.save file \(EOFError"),
    ("unverified, code in the state", _unverified(lambda c: torch.save({"step": _Evil()}, c / "state.pt")),
     CheckpointCorruptError, r"state\.pt holds more than plain tensors and numbers and was refused \(never executed\)"),
    ("unverified, a list for state", _unverified(lambda c: torch.save([1, 2], c / "state.pt")),
     CheckpointCorruptError, r"state\.pt holds a list, expected the dict of a training state"),
    ("weights of another model", _foreign, CheckpointMismatchError, r"does not fit this model: .*size mismatch"),
]


@pytest.mark.parametrize(("damage", "error", "pattern"), [p[1:] for p in PROBES], ids=[p[0] for p in PROBES])
def test_a_damaged_checkpoint_is_one_named_error(pristine: Path, tmp_path: Path, damage: Callable[[Path], None],
                                                 error: type[Exception], pattern: str) -> None:
    ckpt = tmp_path / pristine.name
    shutil.copytree(pristine, ckpt)
    damage(ckpt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the unverified probes warn that they are unverified
        with pytest.raises(error, match=pattern) as info:
            load_checkpoint(ckpt, _model())
    msg = str(info.value)
    assert isinstance(info.value, DeepGMError) and "\n" not in msg, msg
    assert str(ckpt) in msg  # names the checkpoint


def test_a_pointer_to_a_missing_folder_is_a_checkpoint_not_found_error(pristine: Path, tmp_path: Path) -> None:
    (tmp_path / "last").write_text("step-000000099\n")
    with pytest.raises(CheckpointNotFoundError, match="step-000000099 is incomplete") as info:
        latest_checkpoint(tmp_path)
    assert isinstance(info.value, DeepGMError)


# -- through the CLI: the same damage as one line, exit status 2 ------------------------------------------
@pytest.fixture(scope="module")
def cli_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from deepgm.cli import main

    out = tmp_path_factory.mktemp("cli") / "run"
    argv = ["train", "vae", "--dataset", "digits", "--epochs", "1", "--max-steps", "4", "--checkpoint-every", "2",
            "--log-every", "1", "--batch-size", "50", "--hidden", "16", "--z-dim", "2", "--eval-k", "2",
            "--keep-checkpoints", "3", "--progress", "false", "--out", str(out)]
    assert main(argv) == 0
    return out


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = [ln for ln in capsys.readouterr().err.strip().splitlines() if ln.strip()]
    assert len(err) == 1, err
    return err[0]


def test_cli_eval_of_a_corrupt_checkpoint_is_one_line_and_exit_2(cli_run: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from deepgm.cli import main

    run = tmp_path / "run"
    shutil.copytree(cli_run, run)
    _flip(latest_checkpoint(run / "checkpoints") / "model.safetensors")
    capsys.readouterr()
    assert main(["eval", str(run), "--k", "2", "--n-test", "10"]) == 2
    line = _one_error_line(capsys)
    assert "model.safetensors is corrupt" in line and "SHA-256" in line


def test_cli_resume_names_the_checkpoint_it_skipped(cli_run: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from deepgm.cli import main

    run = tmp_path / "run"
    shutil.copytree(cli_run, run)
    meta = json.loads((run / "run.json").read_text())
    assert meta["model"] == "vae"
    _flip(run / "checkpoints" / "step-000000004" / "state.pt")
    argv = ["train", "vae", "--dataset", "digits", "--epochs", "1", "--max-steps", "4", "--checkpoint-every", "2",
            "--log-every", "1", "--batch-size", "50", "--hidden", "16", "--z-dim", "2", "--eval-k", "2",
            "--keep-checkpoints", "3", "--progress", "false", "--out", str(run), "--resume"]
    capsys.readouterr()
    with pytest.warns(Warning) as record:
        assert main(argv) == 0
    said = capsys.readouterr().err + "\n".join(str(w.message) for w in record)
    assert "step-000000004" in said and "state.pt is corrupt" in said and "resuming from" in said
    assert "step-000000002" in said
