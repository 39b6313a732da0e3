"""``deepgm world STAGE WORLD ...``: the World Models pipeline's stages from the command line.

    deepgm world collect  runs/doom --env take-cover --episodes 200 --workers 2
    deepgm world train-v  runs/doom --epochs 5
    deepgm world encode   runs/doom
    deepgm world train-m  runs/doom --epochs 20
    deepgm world train-m  runs/doom --memory rssm --overshooting 3   # the RSSM as M instead
    deepgm world evolve   runs/doom --name dream --where dream --temperature 1.15 --generations 60
    deepgm world evaluate runs/doom --name dream --episodes 100
    deepgm world status   runs/doom

Every stage resumes what an interrupted run of it left and skips what is complete (``--overwrite`` redoes
it); see :mod:`deepgm.worldmodels.pipeline` for the folder's layout.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deepgm.training import TrainerConfig
from deepgm.worldmodels import pipeline
from deepgm.worldmodels.evolve import EvolveConfig
from deepgm.zoo.options import add_config_options, config_from, count_arg
from deepgm.zoo.world_models import VisionConfig

__all__ = ["main", "parser"]


def _env_option(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"an environment option is KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        parsed: Any = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    return key.replace("-", "_"), parsed


def _trainer_options(p: argparse.ArgumentParser, epochs: int, batch_size: int) -> None:
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=count_arg(1), default=epochs, help=f"(default: {epochs})")
    g.add_argument("--batch-size", type=count_arg(1), default=batch_size, help=f"(default: {batch_size})")
    g.add_argument("--max-steps", type=count_arg(1), default=None, help="stop after these many steps")
    g.add_argument("--seed", type=count_arg(0), default=0)


def _memory_kind(argv: Sequence[str]) -> str:
    """The ``--memory`` of a ``train-m`` command line (its options depend on it)."""
    for i, a in enumerate(argv):
        if a == "--memory" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--memory="):
            return a.split("=", 1)[1]
    return "mdn-rnn"


def parser(memory: str = "mdn-rnn") -> argparse.ArgumentParser:
    """The ``deepgm world`` argument parser (``train-m`` with the options of the ``memory`` kind)."""
    p = argparse.ArgumentParser(prog="deepgm world", description="World Models: V (VAE), M (MDN-RNN), C (CMA-ES), "
                                "trained in the dream or in the real environment.", allow_abbrev=False)
    sub = p.add_subparsers(dest="stage", required=True)

    def stage(name: str, text: str) -> argparse.ArgumentParser:
        s = sub.add_parser(name, help=text, description=text, allow_abbrev=False)
        s.add_argument("world", type=Path, help="the pipeline's folder")
        s.add_argument("--no-progress", action="store_true", help="no progress bars")
        return s

    c = stage("collect", "random-policy rollouts into WORLD/rollouts (more --episodes extend them)")
    c.add_argument("--env", default="take-cover", help="take-cover (VizDoom), dodge (shipped), car-racing")
    c.add_argument("--episodes", type=count_arg(1), default=200)
    c.add_argument("--workers", type=count_arg(1), default=1)
    c.add_argument("--seed", type=count_arg(0), default=0)
    c.add_argument("--policy", choices=["held", "random"], default="held",
                   help="held: each uniform action held for 1..REPEAT steps (World Models'); random: a new "
                   "action every REPEAT steps (default: held)")
    c.add_argument("--repeat", type=count_arg(1), default=10, help="(default: 10)")
    c.add_argument("--env-option", type=_env_option, action="append", default=[], metavar="KEY=VALUE",
                   help="an option of the environment (e.g. size=64), repeatable")
    v = stage("train-v", "train V, the VAE of frames")
    add_config_options(v, VisionConfig, "V")
    _trainer_options(v, epochs=10, batch_size=100)
    v.add_argument("--overwrite", action="store_true")
    e = stage("encode", "V's posterior of every frame into WORLD/latents.pt")
    e.add_argument("--overwrite", action="store_true")
    m = stage("train-m", "train M, the MDN-RNN (or the RSSM) over V's latents")
    m.add_argument("--memory", choices=sorted(pipeline.MEMORY_KINDS), default="mdn-rnn",
                   help="M's kind; the options below are this kind's (see --memory rssm --help)")
    config = pipeline.MEMORY_KINDS.get(memory, pipeline.MEMORY_KINDS["mdn-rnn"])[0]
    add_config_options(m, config, "M" if memory != "rssm" else "M (RSSM)")
    _trainer_options(m, epochs=20, batch_size=32)
    m.add_argument("--overwrite", action="store_true")
    ev = stage("evolve", "evolve C with CMA-ES, in M's dream or in the real environment")
    ev.add_argument("--name", required=True, help="the controller's name (folder WORLD/controllers/NAME)")
    add_config_options(ev, EvolveConfig, "CMA-ES")
    ev.add_argument("--slots", type=count_arg(1), default=8, help="real environments stepped together")
    ev.add_argument("--overwrite", action="store_true")
    a = stage("evaluate", "C's score over real episodes")
    a.add_argument("--name", required=True)
    a.add_argument("--episodes", type=count_arg(1), default=100)
    a.add_argument("--seed", type=count_arg(0), default=1_000_000, help="episode i plays seed SEED + i")
    a.add_argument("--slots", type=count_arg(1), default=8)
    a.add_argument("--overwrite", action="store_true", help="play the episodes again")
    stage("status", "what each stage has done, with its scores")
    return p


def _trainer(args: argparse.Namespace) -> TrainerConfig:
    return TrainerConfig(epochs=args.epochs, batch_size=args.batch_size, max_steps=args.max_steps, seed=args.seed,
                         progress=not args.no_progress)


def status(world: Path) -> dict[str, Any]:
    """What is in ``world``: the environment, the stages done and their scores."""
    out: dict[str, Any] = {"world": str(world)}
    if (world / "world.json").exists():
        out.update(json.loads((world / "world.json").read_text()))
        out["random_policy"] = pipeline.random_policy_scores(world)
    for name in ("vision", "memory"):
        f = world / name / "scores.json"
        out[name] = json.loads(f.read_text()) if f.exists() else "not trained"
    out["encoded"] = (world / "latents.pt").exists()
    controllers = {}
    for folder in sorted((world / "controllers").glob("*")):
        ev = folder / "evaluation.json"
        curve = folder / "curve.json"
        entry: dict[str, Any] = {"generations": len(json.loads(curve.read_text())) if curve.exists() else 0}
        if ev.exists():
            e = json.loads(ev.read_text())
            entry["real"] = {k: e[k] for k in ("episodes", "mean", "std")}
        controllers[folder.name] = entry
    out["controllers"] = controllers
    return out


def main(argv: Sequence[str]) -> int:
    """Run one stage; returns the exit status."""
    args = parser(_memory_kind(argv)).parse_args(list(argv))
    world: Path = args.world
    progress = not args.no_progress
    if args.stage == "collect":
        pipeline.collect(world, args.env, args.episodes, args.workers, args.seed, dict(args.env_option), progress,
                         args.policy, args.repeat)
        print(json.dumps(pipeline.random_policy_scores(world)))
    elif args.stage == "train-v":
        cfg = config_from(VisionConfig, args, {}, "deepgm world train-v", "V")
        pipeline.train_vision(world, cfg, _trainer(args), args.overwrite)
        print((world / "vision" / "scores.json").read_text())
    elif args.stage == "encode":
        print(pipeline.encode(world, overwrite=args.overwrite))
    elif args.stage == "train-m":
        config = pipeline.MEMORY_KINDS[args.memory][0]
        mcfg = config_from(config, args, {}, "deepgm world train-m", "M")
        pipeline.train_memory(world, mcfg, _trainer(args), args.overwrite)
        print((world / "memory" / "scores.json").read_text())
    elif args.stage == "evolve":
        ecfg = config_from(EvolveConfig, args, {}, "deepgm world evolve", "CMA-ES")
        folder = pipeline.evolve(world, args.name, ecfg, args.overwrite, args.slots, progress)
        print(json.dumps(json.loads((folder / "curve.json").read_text())[-1]))
    elif args.stage == "evaluate":
        result = pipeline.evaluate(world, args.name, args.episodes, args.seed, args.slots, progress,
                                   args.overwrite)
        print(json.dumps({k: v for k, v in result.items() if k != "scores"}))
    elif args.stage == "status":
        print(json.dumps(status(world), indent=2))
    return 0
