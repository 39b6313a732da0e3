"""Atomic files and folders (deepgm.io), the checkpoint folder's lock, and stale temporaries."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "models"))
from tiny_models import binary_data, tiny_vae  # noqa: E402

from deepgm.io import atomic_folder, atomic_write, remove_stale_temporaries, save_atomic, write_text_atomic
from deepgm.training import Trainer, TrainerConfig
from deepgm.training.checkpoint import CheckpointFolderBusyError, hold_folder, latest_checkpoint


def _cfg(out: Path, **kw) -> TrainerConfig:
    return TrainerConfig(**{"epochs": 2, "batch_size": 10, "out_dir": out, "log_every": 1, "progress": False,
                            "checkpoint_every": 3, **kw})


def test_a_failed_write_leaves_the_old_content_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "last"
    write_text_atomic(target, "step-1\n")

    def broken(fh) -> None:
        fh.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, broken)
    assert target.read_text() == "step-1\n"
    save_atomic({"a": torch.ones(2)}, tmp_path / "w.pt")
    assert torch.equal(torch.load(tmp_path / "w.pt", weights_only=True)["a"], torch.ones(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last", "w.pt"]


def test_atomic_folder_replaces_whole_or_not_at_all(tmp_path: Path) -> None:
    with atomic_folder(tmp_path / "step-1") as d:
        (d / "a").write_text("old")
    with pytest.raises(RuntimeError), atomic_folder(tmp_path / "step-1") as d:
        (d / "a").write_text("half")
        raise RuntimeError("killed")
    assert (tmp_path / "step-1" / "a").read_text() == "old"
    with atomic_folder(tmp_path / "step-1") as d:
        (d / "b").write_text("new")
    assert sorted(p.name for p in (tmp_path / "step-1").iterdir()) == ["b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-1"]


def test_resume_removes_what_a_killed_checkpoint_write_left(tmp_path: Path) -> None:
    Trainer(tiny_vae(), binary_data(), _cfg(tmp_path, max_steps=4)).fit()
    ckpt = tmp_path / "checkpoints"
    # what SIGKILL in the middle of save_checkpoint / a pointer write leaves behind
    (ckpt / ".tmp-k1ll3d").mkdir()
    (ckpt / ".tmp-k1ll3d" / "model.safetensors").write_bytes(b"\0" * 10)
    (ckpt / ".last.x8d2.tmp").write_text("step-0000")
    (ckpt / "notes.txt").write_text("kept")  # not a temporary
    Trainer(tiny_vae(), binary_data(), _cfg(tmp_path)).fit(resume=True)
    left = sorted(p.name for p in ckpt.iterdir())
    assert not [n for n in left if n.startswith(".tmp-") or n.endswith(".tmp")], left
    assert "notes.txt" in left
    assert latest_checkpoint(ckpt).name == "step-000000008"  # the end of training is checkpointed too


def test_a_second_run_on_a_held_checkpoint_folder_is_refused(tmp_path: Path) -> None:
    ckpt = tmp_path / "checkpoints"
    ckpt.mkdir()
    (ckpt / ".tmp-writing").mkdir()
    with hold_folder(ckpt) as removed:  # a live run owns the folder
        assert [p.name for p in removed] == [".tmp-writing"]
        (ckpt / ".tmp-live").mkdir()  # its write in progress
        with pytest.raises(CheckpointFolderBusyError, match="in use by another run"):
            Trainer(tiny_vae(), binary_data(), _cfg(tmp_path)).fit()
        assert (ckpt / ".tmp-live").exists()  # not taken from under the live writer
    assert remove_stale_temporaries(ckpt) == [ckpt / ".tmp-live"]
