"""Checkpoints that verify: a manifest of checksums, corruption detected on load, resume falling back to
the newest checkpoint that verifies (and naming the one it skipped), checkpoints without a manifest."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).parents[1] / "models"))
from tiny_models import binary_data, tiny_vae  # noqa: E402

from deepgm.errors import CheckpointCorruptError, CheckpointWarning, DeepGMError
from deepgm.io import file_digest
from deepgm.training import Trainer, TrainerConfig
from deepgm.training.checkpoint import MANIFEST_NAME, latest_checkpoint, load_checkpoint, verify_checkpoint


def _cfg(out: Path, **kw) -> TrainerConfig:
    return TrainerConfig(**{"epochs": 2, "batch_size": 10, "out_dir": out, "log_every": 1, "progress": False,
                            "checkpoint_every": 2, "keep_checkpoints": 3, **kw})


def flip_byte(file: Path, at: float = 0.6) -> None:
    """Flip every bit of one byte at the fraction ``at`` of the file (past safetensors' JSON header)."""
    data = bytearray(file.read_bytes())
    i = int(len(data) * at)
    data[i] ^= 0xFF
    file.write_bytes(bytes(data))


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """A short run: checkpoints at steps 2, 4, 6 (``keep_checkpoints=3``)."""
    Trainer(tiny_vae(), binary_data(), _cfg(tmp_path, max_steps=6)).fit()
    return tmp_path


def test_every_checkpoint_records_the_checksum_of_each_of_its_files(run: Path) -> None:
    ckpt = latest_checkpoint(run / "checkpoints")
    manifest = json.loads((ckpt / MANIFEST_NAME).read_text())
    assert set(manifest["files"]) == {"model.safetensors", "state.pt"}
    for name, entry in manifest["files"].items():
        assert entry["sha256"] == file_digest(ckpt / name)
        assert entry["bytes"] == (ckpt / name).stat().st_size
    assert verify_checkpoint(ckpt) is True


@pytest.mark.parametrize("name", ["model.safetensors", "state.pt"])
def test_a_flipped_byte_is_refused_naming_the_file_and_both_digests(run: Path, name: str) -> None:
    ckpt = latest_checkpoint(run / "checkpoints")
    expected = json.loads((ckpt / MANIFEST_NAME).read_text())["files"][name]["sha256"]
    flip_byte(ckpt / name)
    model = tiny_vae()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointCorruptError) as info:
        load_checkpoint(ckpt, model)
    msg = str(info.value)
    assert name in msg and expected in msg and file_digest(ckpt / name) in msg and "\n" not in msg
    assert isinstance(info.value, DeepGMError)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nothing loaded


def test_resume_falls_back_to_the_newest_checkpoint_that_verifies(run: Path, tmp_path_factory) -> None:
    ckpts = run / "checkpoints"
    assert latest_checkpoint(ckpts).name == "step-000000006"
    flip_byte(ckpts / "step-000000006" / "state.pt")
    flip_byte(ckpts / "step-000000004" / "model.safetensors")
    with pytest.warns(CheckpointWarning) as record:
        Trainer(tiny_vae(), binary_data(), _cfg(run)).fit(resume=True)
    (msg,) = [str(w.message) for w in record]
    assert "resuming from" in msg and "step-000000002" in msg and "\n" not in msg
    assert "step-000000006" in msg and "state.pt" in msg and "step-000000004" in msg and "model.safetensors" in msg
    # the run goes on from step 2 exactly as an uninterrupted one does
    ref = tmp_path_factory.mktemp("ref")
    Trainer(tiny_vae(), binary_data(), _cfg(ref)).fit()
    ours, theirs = latest_checkpoint(ckpts), latest_checkpoint(ref / "checkpoints")
    assert ours.name == theirs.name == "step-000000008"
    a, b = load_file(str(ours / "model.safetensors")), load_file(str(theirs / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_last_pointer_names_the_checkpoint_resumed_from(run: Path) -> None:
    from deepgm.training.checkpoint import resume_checkpoint

    ckpts = run / "checkpoints"
    flip_byte(ckpts / "step-000000006" / "model.safetensors")
    with pytest.warns(CheckpointWarning, match="step-000000006"):
        path, state = resume_checkpoint(ckpts, tiny_vae())
    assert path.name == "step-000000004" and state["step"] == 4
    assert latest_checkpoint(ckpts).name == "step-000000004"  # never again called the last good one


def test_resume_when_no_checkpoint_verifies_is_one_clear_error(run: Path) -> None:
    ckpts = run / "checkpoints"
    for d in ("step-000000002", "step-000000004", "step-000000006"):
        flip_byte(ckpts / d / "state.pt")
    with pytest.raises(CheckpointCorruptError, match=r"no checkpoint in .* verifies.*step-000000002"):
        Trainer(tiny_vae(), binary_data(), _cfg(run)).fit(resume=True)


def test_a_checkpoint_without_manifest_loads_with_a_warning(run: Path) -> None:
    """Checkpoints written before manifests existed: loaded unverified, saying so."""
    ckpt = latest_checkpoint(run / "checkpoints")
    (ckpt / MANIFEST_NAME).unlink()
    assert verify_checkpoint(ckpt) is False
    model = tiny_vae()
    with pytest.warns(CheckpointWarning, match="no manifest.json.*without verifying"):
        state = load_checkpoint(ckpt, model)
    assert state["step"] == 6


def test_a_verified_checkpoint_loads_without_warnings(run: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_checkpoint(latest_checkpoint(run / "checkpoints"), tiny_vae())


@pytest.mark.parametrize("pointer", [b"\xff\xfe\x00garbage", b"", b"../../elsewhere\n", b"step-000000099\n"])
def test_a_damaged_last_pointer_falls_back_to_the_newest_checkpoint(run: Path, pointer: bytes) -> None:
    from deepgm.training.checkpoint import resume_checkpoint

    ckpts = run / "checkpoints"
    (ckpts / "last").write_bytes(pointer)
    with pytest.warns(CheckpointWarning, match="resuming from .*step-000000006"):
        path, _ = resume_checkpoint(ckpts, tiny_vae())
    assert path.name == "step-000000006" and latest_checkpoint(ckpts) == path
