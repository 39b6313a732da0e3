"""The trainer: exact resume, the NaN guard keeping the last good checkpoint, atomic checkpoints, DDP."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import ddp_worker  # noqa: E402

from deepgm.training import Trainer, TrainerConfig, TrainingStopped
from deepgm.training.checkpoint import CheckpointNotFoundError, latest_checkpoint
from deepgm.zoo import DataInfo, get
from deepgm.zoo.vae import VAEConfig


def _data(n: int = 60, d: int = 16) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"x": torch.rand(n, d, generator=g), "y": torch.randint(0, 3, (n,), generator=g)}


def _model():
    torch.manual_seed(123)
    return get("vae").build(VAEConfig(z_dim=2, hidden=(8,)), DataInfo("toy", (16,)))


def _binarize(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {**batch, "x": torch.bernoulli(batch["x"])}  # dynamic: uses the global RNG


def _cfg(out: Path, **kw) -> TrainerConfig:
    base = {"epochs": 3, "batch_size": 10, "out_dir": out, "log_every": 1, "progress": False, "seed": 5}
    return TrainerConfig(**{**base, **kw})


def test_resumed_run_equals_uninterrupted_run(tmp_path: Path) -> None:
    train, val = _data(), _data(20)
    full = Trainer(_model(), train, _cfg(tmp_path / "a"), val=val, transform=_binarize).fit()
    assert len(full["loss"]) == 18
    first = Trainer(_model(), train, _cfg(tmp_path / "b", max_steps=8), val=val, transform=_binarize)
    first.fit()
    torch.manual_seed(999)  # whatever the RNG now holds, resuming restores the saved state
    rest = Trainer(_model(), train, _cfg(tmp_path / "b"), val=val, transform=_binarize).fit(resume=True)
    assert rest["loss"] == full["loss"]
    assert rest["val_loss"] == full["val_loss"]
    rows = (tmp_path / "b" / "metrics.csv").read_text().strip().splitlines()
    assert len([r for r in rows[1:] if r.split(",")[2]]) == 18  # one CSV row per step across both runs


def test_checkpoint_every_steps_and_resume_mid_epoch(tmp_path: Path) -> None:
    train = _data()
    full = Trainer(_model(), train, _cfg(tmp_path / "a", epochs=2), transform=_binarize).fit()
    Trainer(_model(), train, _cfg(tmp_path / "b", epochs=2, checkpoint_every=4, max_steps=9),
            transform=_binarize).fit()
    assert latest_checkpoint(tmp_path / "b" / "checkpoints").name == "step-000000009"
    rest = Trainer(_model(), train, _cfg(tmp_path / "b", epochs=2, checkpoint_every=4),
                   transform=_binarize).fit(resume=True)
    assert rest["loss"] == full["loss"]
    kept = sorted(d.name for d in (tmp_path / "b" / "checkpoints").iterdir() if d.is_dir())
    assert len(kept) <= 2 and not [d for d in kept if d.startswith(".tmp")]


def test_nan_stops_with_message_and_keeps_last_good_checkpoint(tmp_path: Path) -> None:
    from deepgm.losses import KL, E, LogProb, Parameter
    from deepgm.models import VAE

    base = _model()
    q, p, prior = base.encoder, base.decoder, base.prior
    model = VAE(q, p, prior, loss=(Parameter("beta") * KL(q, prior) - E(q, LogProb(p))).mean())

    def schedule(step: int) -> dict[str, float]:
        return {"beta": float("nan") if step == 7 else 1.0}

    trainer = Trainer(model, _data(), _cfg(tmp_path, checkpoint_every=3), transform=_binarize, params=schedule)
    with pytest.raises(TrainingStopped, match=r"step 7: .*nan.*Last good checkpoint: .*step-000000006"):
        trainer.fit()
    ckpt = latest_checkpoint(tmp_path / "checkpoints")
    assert ckpt.name == "step-000000006"
    assert (ckpt / "model.safetensors").exists() and (ckpt / "state.pt").exists()


def test_resume_without_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointNotFoundError, match="no checkpoint to resume from"):
        Trainer(_model(), _data(), _cfg(tmp_path)).fit(resume=True)


def test_best_checkpoint_and_early_stopping(tmp_path: Path) -> None:
    trainer = Trainer(_model(), _data(), _cfg(tmp_path, epochs=30, early_stopping_patience=1), val=_data(20),
                      transform=_binarize)
    hist = trainer.fit()
    assert len(hist["val_loss"]) < 30  # stopped early
    best = latest_checkpoint(tmp_path / "checkpoints", "best")
    assert best.exists()


def test_bad_batch_size(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="batch_size must be in"):
        Trainer(_model(), _data(), _cfg(tmp_path, batch_size=1000))


def test_data_parallel_matches_one_process_on_the_combined_batch(tmp_path: Path) -> None:
    import torch.multiprocessing as mp

    out = tmp_path / "ddp.pt"
    mp.spawn(ddp_worker.run, args=(2, str(tmp_path / "init"), str(out)), nprocs=2, join=True)
    got = torch.load(out, weights_only=True)
    model = ddp_worker.make_model(seed=0)
    x, y = ddp_worker.data()
    for i in range(3):
        loss = model.train_step({"x": x, "y": y})
        grad = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
        assert loss == pytest.approx(got["losses"][i], rel=1e-5)
        assert torch.allclose(grad, got["grads"][i], atol=1e-6)
    for a, b in zip(model.parameters(), got["params"]):
        assert torch.allclose(a, b, atol=1e-6)


def test_data_parallel_gan_keeps_generator_and_discriminator_replicas_equal(tmp_path: Path) -> None:
    """Both objectives' gradients are averaged: after a few generator and discriminator steps on
    two processes, every parameter is the same on both and equals one process on the combined batch."""
    import torch.multiprocessing as mp

    prefix = str(tmp_path / "gan.pt")
    mp.spawn(ddp_worker.run_gan, args=(2, str(tmp_path / "init"), prefix), nprocs=2, join=True)
    got = [torch.load(f"{prefix}.{r}", weights_only=True) for r in range(2)]
    model = ddp_worker.make_gan(seed=0)
    losses = [model.train_step(ddp_worker.gan_data()) for _ in range(ddp_worker.GAN_STEPS)]
    want = ddp_worker.gan_params(model)
    names = set(want)
    assert any(n.startswith("auxiliary_modules") for n in names) and any(n.startswith("distributions") for n in names)
    assert set(got[0]["params"]) == set(got[1]["params"]) == names
    drifted = [n for n in names if not torch.equal(got[0]["params"][n], got[1]["params"][n])]
    assert not drifted, f"the replicas drifted apart in {drifted}"
    for n in names:
        assert torch.allclose(got[0]["params"][n], want[n], atol=1e-6), n
    for a, b in zip(got[0]["losses"], losses):
        assert a.keys() == b.keys() and all(a[k] == pytest.approx(b[k], rel=1e-5) for k in a)
