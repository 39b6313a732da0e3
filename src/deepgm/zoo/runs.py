"""A run folder of ``deepgm train``: ``run.json`` (the model's name and config, the data's config and
description, the objective), ``objective.tex`` and ``checkpoints/``; :func:`load_run` rebuilds the
trained model from it."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepgm.data import DataInfo
from deepgm.zoo.registry import ZooEntry, get

__all__ = ["Run", "RunNotFoundError", "load_run", "write_run"]


class RunNotFoundError(FileNotFoundError):
    """The folder is not a run (no ``run.json``) or holds no checkpoint."""


@dataclass
class Run:
    """A trained run: its model (eval mode, weights of the best checkpoint, else the last), the data's
    description and everything ``run.json`` records."""

    model: Any
    info: DataInfo
    meta: dict[str, Any]

    @property
    def data_config(self) -> dict[str, Any]:
        """The ``DataConfig`` fields the run was trained with (binarisation resolved)."""
        return dict(self.meta["data_config"])


def write_run(out: Path, entry: ZooEntry, model_config: Any, data_config: Any, info: DataInfo, model: Any) -> None:
    """``out/run.json`` (and ``out/objective.tex`` for models with an objective)."""
    loss = getattr(model, "loss", None)
    run = {"model": entry.name, "model_config": dataclasses.asdict(model_config),
           "data_config": dataclasses.asdict(data_config), "data_info": dataclasses.asdict(info),
           "objective": str(loss) if loss is not None else None}
    out.mkdir(parents=True, exist_ok=True)
    (out / "run.json").write_text(json.dumps(run, indent=2, default=str) + "\n")
    if loss is not None:
        (out / "objective.tex").write_text(loss.to_latex() + "\n")


def load_run(run: Path) -> Run:
    """The trained model of the run folder ``run``; :class:`RunNotFoundError` says what is missing."""
    from deepgm.training.checkpoint import CheckpointNotFoundError, latest_checkpoint, load_checkpoint

    meta_path = run / "run.json"
    if not meta_path.exists():
        raise RunNotFoundError(f"{run} is not a run folder (no run.json); train one with 'deepgm train'")
    meta = json.loads(meta_path.read_text())
    entry = get(meta["model"])
    cfg = entry.config(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta["model_config"].items()})
    info = DataInfo.from_dict(meta["data_info"])
    model = entry.build(cfg, info)
    ckpts = run / "checkpoints"
    try:
        ckpt = latest_checkpoint(ckpts, "best" if (ckpts / "best").exists() else "last")
    except CheckpointNotFoundError as err:
        raise RunNotFoundError(str(err)) from None
    load_checkpoint(ckpt, model)
    model.eval()
    return Run(model, info, meta)
