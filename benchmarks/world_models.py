#!/usr/bin/env python
"""World Models' dream experiment on VizDoom Take Cover (Ha & Schmidhuber 2018, §5) at a CPU budget.

One command runs the whole pipeline of :mod:`deepgm.worldmodels.pipeline` in ``--workdir``:

1. collect ``--episodes`` random-policy episodes (``--workers`` processes; ``--policy held``: each uniform
   action held for 1..``--repeat`` steps, World Models' collection policy);
2. train V (the conv VAE, z = 64) for ``--v-epochs`` epochs; encode every frame;
3. train M, the MDN-RNN, for ``--m-epochs`` epochs (``--m-max-steps`` at most);
4. for each ``--temperatures`` τ, evolve C (linear in [z, h]) with CMA-ES **only in M's dream**
   (``--population`` candidates × ``--rollouts`` dreams, ``--generations`` generations), score the search's
   mean controller in the dream (``--dream-rollouts`` dreams) and over ``--eval-episodes`` real episodes
   (seeds 1,000,000 + i, none of them used in the collection);
5. with ``--rssm``, the same with the RSSM (PlaNet's belief-state model) as M on the same rollouts, V and
   latents: held-out next-latent score and open-loop error beside the MDN-RNN's, and C evolved in its
   dream at the first temperature;
6. with ``--real-generations G > 0``, C evolved for G generations in the real game instead (slow).

The random policies' scores: the collection policy's over the collected episodes, and a policy drawing a
new uniform action every step over ``--eval-episodes`` real episodes (the evaluation seeds). Every
stage's wall-clock time on this machine is recorded; the budget is their sum. Results:
``benchmarks/results/world_models.json`` and ``.md`` (or ``world_models_smoke.*`` with ``--smoke``),
recording the command, git commit, whether ``src/`` had uncommitted changes, the date and the machine's
load; figures ``world_models_*.png`` (V's reconstructions, a held-out real episode beside M's dream of it,
the CMA-ES curves).

A stage whose output in ``--workdir`` is complete is not run again (the pipeline's resumption): the JSON then
says ``"ran": false`` for it, with the time, command and date of the earlier run of this script that ran it
(``WORLD/benchmark_stages.json``), so that a run adding a temperature still states the whole budget.

    .venv/bin/python benchmarks/world_models.py --workdir /tmp/wm-bench        # about an hour on 2 cores
    .venv/bin/python benchmarks/world_models.py --smoke                        # the same code on Dodge, seconds
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import machine_info  # noqa: E402

from deepgm.io import write_text_atomic  # noqa: E402
from deepgm.training import TrainerConfig  # noqa: E402
from deepgm.worldmodels import pipeline  # noqa: E402
from deepgm.worldmodels.evolve import EvolveConfig  # noqa: E402
from deepgm.zoo.rssm import RSSMConfig  # noqa: E402
from deepgm.zoo.world_models import MemoryConfig, VisionConfig  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
PAPER = {"random": "210 ± 108", "dream_tau_1.15_real": "1092 ± 556", "dream_tau_1.15_dream": "918 ± 546",
         "leaderboard_best": "820 ± 58", "solved": "> 750 over 100 episodes"}


STAGES = "benchmark_stages.json"  # in the workdir: each stage's time, as measured by the run that ran it


def _earlier_stages(world: Path, stem: str) -> dict[str, Any]:
    """The stage times an earlier run of this command measured in ``world``: its ``benchmark_stages.json``,
    or else the stages of the results file that a run over the same workdir wrote (before the file
    existed)."""
    f = world / STAGES
    if f.exists():
        out: dict[str, Any] = json.loads(f.read_text())
        return out
    old = RESULTS / f"{stem}.json"
    if old.exists():
        res = json.loads(old.read_text())
        if res.get("workdir") == str(world):
            # before benchmark_stages.json, the RSSM's controller shared its stages' names with the MDN-RNN's
            shared = {f"{s} dream-tau{c['temperature']:g}" for c in res["controllers"].values()
                      if c["memory"] == "rssm" for s in ("evolve", "evaluate")}
            return {k: {**v, "command": res["machine"]["command"], "date": res["machine"]["date"]}
                    for k, v in res["stages"].items() if v.get("ran") and k not in shared}
    return {}


def _stage(name: str, done: Path, run: Callable[[], Any], log: dict[str, Any]) -> Any:
    """Run a stage, recording whether this run ran it (its output was not complete before) and its wall-clock
    time; a stage complete already keeps the time the earlier run measured (with that run's command)."""
    ran = not done.exists()
    start = time.perf_counter()
    out = run()
    if ran:
        log[name] = {"ran": True, "seconds": round(time.perf_counter() - start, 1),
                     "command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%dT%H:%M:%S")}
    else:
        earlier = log.get("_earlier", {}).get(name, {})
        log[name] = {"ran": False, "seconds": earlier.get("seconds"), "command": earlier.get("command"),
                     "date": earlier.get("date")}
    world = log.get("_world")
    if world is not None:
        write_text_atomic(world / STAGES, json.dumps({**log.get("_earlier", {}), **{
            k: v for k, v in log.items() if not k.startswith("_") and v["ran"]}}, indent=1))
    print(f"[{time.strftime('%H:%M:%S')}] {name}: {'ran' if ran else 'complete already'} "
          f"({log[name]['seconds']} s)", flush=True)
    return out


def _controller(world: Path, name: str, cfg: EvolveConfig, args: argparse.Namespace,
                log: dict[str, Any], label: str | None = None) -> dict[str, Any]:
    """Evolve and evaluate controller ``name`` of ``world``; its stages are logged as ``label`` (the name)."""
    folder, label = world / "controllers" / name, label or name
    _stage(f"evolve {label}", folder / "done", lambda: pipeline.evolve(world, name, cfg, slots=args.slots,
                                                                      progress=False), log)
    result = folder / "evaluation.json"

    ev = _stage(f"evaluate {label}", result,
                lambda: pipeline.evaluate(world, name, args.eval_episodes, slots=args.slots, progress=False), log)
    curve = json.loads((folder / "curve.json").read_text())
    out = {"where": cfg.where, "temperature": cfg.temperature, "death": cfg.death,
           "real": {k: ev[k] for k in ("episodes", "mean", "std", "min", "max")},
           "solved": ev["mean"] > 750 and ev["episodes"] >= 100,
           "curve_last": curve[-1], "search_mean_curve": [(c["generation"], c["search_mean"]) for c in curve
                                                          if "search_mean" in c]}
    if cfg.where == "dream":
        out["dream_mean"] = pipeline.dream_score(world, name, rollouts=args.dream_rollouts)
    return out


def _iid_random(world: Path, env: str, options: dict[str, Any], episodes: int) -> dict[str, Any]:
    """A new uniform action every step, over the evaluation seeds 1,000,000 + i (cached in the world)."""
    f = world / "random_iid.json"
    if f.exists():
        out: dict[str, Any] = json.loads(f.read_text())
        return out
    import numpy as np

    from deepgm.envs import RandomPolicy, make_env, run_episode

    game = make_env(env, **options)
    try:
        scores = [float(run_episode(game, RandomPolicy(game.action_dim, [1_000_000 + i, 2]), seed=1_000_000 + i)
                        .reward.sum()) for i in range(episodes)]
    finally:
        game.close()
    out = {"episodes": episodes, "mean": float(np.mean(scores)), "std": float(np.std(scores)), "scores": scores}
    write_text_atomic(f, json.dumps(out))
    return out


def _share(world: Path, other: Path) -> None:
    """A second world over the same rollouts, V and latents (links), for a second M."""
    other.mkdir(parents=True, exist_ok=True)
    for f in ("world.json", "latents.pt", "rollouts", "vision"):
        if not (other / f).exists():
            (other / f).symlink_to((world / f).resolve())


def _table(res: dict[str, Any]) -> str:
    rows = ["| policy | M | τ | score in the dream | steps survived, real (mean ± std) | episodes |",
            "|---|---|---|---|---|---|"]
    r, q = res["random_policy"], res["random_policy_iid"]
    rows.append(f"| random, a new action every step | – | – | – | {q['mean']:.0f} ± {q['std']:.0f} | {q['episodes']} |")
    rows.append(f"| random, each action held 1–{r['repeat']} steps (the collection's; `{r['policy']}`) | – | – | – | "
                f"{r['mean']:.0f} ± {r['std']:.0f} | {r['episodes']} |")
    for name, c in res["controllers"].items():
        dream = f"{c['dream_mean']:.0f}" if "dream_mean" in c else "–"
        tau = f"{c['temperature']}" if c["where"] == "dream" else "–"
        rows.append(f"| C trained in the {c['where']} (`{name}`) | {c['memory']} | {tau} | {dream} | "
                    f"{c['real']['mean']:.0f} ± {c['real']['std']:.0f} | {c['real']['episodes']} |")
    mem = ["| M | held-out next-latent score (nats/dim) | open-loop MSE 10 steps | 30 steps | train time (s) |",
           "|---|---|---|---|---|"]
    for kind, s in res["memory"].items():
        key = "next_latent_loglik_per_dim" if "next_latent_loglik_per_dim" in s else "next_latent_elbo_per_dim"
        ol = s.get("open_loop_mse", {})
        ol10 = f"{ol['10']:.3f}" if isinstance(ol, dict) else "–"
        ol30 = f"{ol['30']:.3f}" if isinstance(ol, dict) else "–"
        mem.append(f"| {kind} | {s[key]:.3f} ({'log-lik.' if 'loglik' in key else 'ELBO'}) | {ol10} | {ol30} | "
                   f"{s.get('seconds')} |")
    b = res["budget"]
    return "\n".join([
        f"World Models on `{res['env']}`: {b['episodes']} random episodes, V {b['v_epochs']} epochs "
        f"({b.get('v_steps')} steps), "
        f"M {b['m_steps']} steps (the best held-out epoch's weights: step {b.get('m_best_step')}), "
        f"CMA-ES {b['population']}×{b['rollouts']} for {b['generations']} generations; "
        f"{b['total_seconds'] / 3600:.2f} h wall-clock on {res['machine']['cpu_count']} cores "
        f"(every stage, as timed by the run that ran it). Paper: random {PAPER['random']}, dream-trained at τ = 1.15 "
        f"{PAPER['dream_tau_1.15_real']} real ({PAPER['dream_tau_1.15_dream']} in the dream).", "",
        *rows, "", *mem, "", f"`{res['machine']['command']}`, commit {res['machine']['deepgm_git_commit']}",
    ]) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], allow_abbrev=False)
    p.add_argument("--workdir", type=Path, default=None, help="the pipeline's folder (default: a new temporary one)")
    p.add_argument("--env", default="take-cover")
    p.add_argument("--episodes", type=int, default=400)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--policy", choices=["held", "random"], default="held")
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--v-epochs", type=int, default=1)
    p.add_argument("--v-max-steps", type=int, default=None, help="stop V's training after these many steps")
    p.add_argument("--m-epochs", type=int, default=200)
    p.add_argument("--m-max-steps", type=int, default=2000)
    p.add_argument("--temperatures", type=float, nargs="+", default=[1.0, 1.15])
    p.add_argument("--death", choices=["sample", "threshold"], default="sample")
    p.add_argument("--population", type=int, default=32)
    p.add_argument("--rollouts", type=int, default=8)
    p.add_argument("--generations", type=int, default=40)
    p.add_argument("--dream-rollouts", type=int, default=256)
    p.add_argument("--eval-episodes", type=int, default=100)
    p.add_argument("--slots", type=int, default=8)
    p.add_argument("--rssm", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--real-generations", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--smoke", action="store_true", help="Dodge at 16×16 and tiny budgets: checks the code, "
                   "writes world_models_smoke.*")
    args = p.parse_args()
    torch_threads(args.threads)
    env_options: dict[str, Any] = {}
    v_cfg, m_cfg, r_cfg = VisionConfig(), MemoryConfig(), RSSMConfig()
    v_batch, m_batch = 100, 32
    if args.smoke:
        args.env, env_options = "dodge", {"size": 16}
        args.episodes, args.v_epochs, args.m_epochs, args.m_max_steps = 40, 1, 2, 20
        args.population, args.rollouts, args.generations, args.dream_rollouts = 6, 2, 2, 8
        args.eval_episodes, args.temperatures = 4, args.temperatures[:2]
        v_cfg, m_cfg = VisionConfig(z_dim=8), MemoryConfig(hidden=16, seq_len=40)
        r_cfg = RSSMConfig(deterministic=16, stochastic=4, hidden=16, seq_len=20)
        v_batch, m_batch = 64, 8
    world = args.workdir or Path(tempfile.mkdtemp(prefix="deepgm-world-models-"))
    stem = "world_models_smoke" if args.smoke else "world_models"
    info = machine_info(args.threads, REPO)
    log: dict[str, Any] = {"_world": world, "_earlier": _earlier_stages(world, stem)}
    print(f"world: {world}", flush=True)

    _stage("collect", world / "rollouts" / "manifest.json",
           lambda: pipeline.collect(world, args.env, args.episodes, args.workers, 0, env_options, progress=False,
                                    policy=args.policy, repeat=args.repeat), log)
    iid = _stage("random policy", world / "random_iid.json", lambda: _iid_random(world, args.env, env_options,
                                                                                args.eval_episodes), log)
    _stage("train-v", world / "vision" / "done", lambda: pipeline.train_vision(
        world, v_cfg, TrainerConfig(epochs=args.v_epochs, batch_size=v_batch, max_steps=args.v_max_steps, seed=0,
                                   progress=False)), log)
    _stage("encode", world / "latents.pt", lambda: pipeline.encode(world), log)

    def train_m(w: Path, cfg: MemoryConfig | RSSMConfig) -> Callable[[], Any]:
        return lambda: pipeline.train_memory(w, cfg, TrainerConfig(epochs=args.m_epochs, batch_size=m_batch,
                                                                   max_steps=args.m_max_steps, seed=0,
                                                                   progress=False))

    _stage("train-m mdn-rnn", world / "memory" / "done", train_m(world, m_cfg), log)
    memories: dict[str, Any] = {"mdn-rnn": {**json.loads((world / "memory/scores.json").read_text()),
                                            "seconds": log["train-m mdn-rnn"]["seconds"]}}
    base = EvolveConfig(population=args.population, rollouts=args.rollouts, generations=args.generations,
                        death=args.death, eval_every=max(1, args.generations // 4))
    controllers: dict[str, Any] = {}
    for tau in args.temperatures:
        name = f"dream-tau{tau:g}"
        cfg = EvolveConfig(**{**base.__dict__, "temperature": tau})
        controllers[name] = {"memory": "mdn-rnn", **_controller(world, name, cfg, args, log)}
    if args.rssm:
        rworld = world / "rssm"
        _share(world, rworld)
        _stage("train-m rssm", rworld / "memory" / "done", train_m(rworld, r_cfg), log)
        memories["rssm"] = {**json.loads((rworld / "memory/scores.json").read_text()),
                            "seconds": log["train-m rssm"]["seconds"]}
        tau = args.temperatures[min(1, len(args.temperatures) - 1)]
        cfg = EvolveConfig(**{**base.__dict__, "temperature": tau})
        controllers[f"rssm-dream-tau{tau:g}"] = {"memory": "rssm", **_controller(
            rworld, f"dream-tau{tau:g}", cfg, args, log, label=f"rssm-dream-tau{tau:g}")}
    if args.real_generations > 0:
        cfg = EvolveConfig(**{**base.__dict__, "where": "real", "generations": args.real_generations})
        controllers["real"] = {"memory": "mdn-rnn", **_controller(world, "real", cfg, args, log)}

    del log["_world"], log["_earlier"]
    total = sum(s["seconds"] or 0.0 for s in log.values())
    res = {
        "benchmark": "world_models", "env": args.env, "env_options": env_options, "workdir": str(world),
        "machine": info, "loadavg_at_end": list(os.getloadavg()), "paper": PAPER,
        "budget": {"episodes": args.episodes, "v_epochs": args.v_epochs, "v_steps": _steps(world / "vision"),
                   "m_steps": _steps(world / "memory"), "m_best_step": memories["mdn-rnn"].get("best_step"),
                   "m_epochs_max": args.m_epochs, "m_max_steps": args.m_max_steps,
                   "population": args.population, "rollouts": args.rollouts, "generations": args.generations,
                   "total_seconds": round(total, 1), "every_stage_ran": all(s["ran"] for s in log.values()),
                   "every_stage_timed": all(s["seconds"] is not None for s in log.values())},
        "configs": {"vision": v_cfg.__dict__, "mdn-rnn": m_cfg.__dict__, "rssm": r_cfg.__dict__,
                    "evolve": base.__dict__},
        "stages": log,
        "random_policy": {**pipeline.random_policy_scores(world), "policy": args.policy, "repeat": args.repeat},
        "random_policy_iid": iid,
        "vision": json.loads((world / "vision/scores.json").read_text()),
        "memory": memories, "controllers": controllers,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_text_atomic(RESULTS / f"{stem}.json", json.dumps(res, indent=2, default=str))
    write_text_atomic(RESULTS / f"{stem}.md", _table(res))
    figures = {"vision/reconstructions.png": "reconstructions", "memory/dream.png": "dream"}
    figures.update({f"controllers/{n}/curve.png": f"curve_{n}" for n in controllers if not n.startswith("rssm-")})
    for src, dst in figures.items():
        if (world / src).exists():
            shutil.copy(world / src, RESULTS / f"{stem}_{dst}.png")
    print(_table(res))


def _steps(folder: Path) -> int | None:
    """The optimiser steps a stage's training took (the last line of its metrics)."""
    f = folder / "metrics.csv"
    if not f.exists():
        return None
    lines = f.read_text().strip().splitlines()
    return int(lines[-1].split(",")[0]) if len(lines) > 1 else 0


def torch_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


if __name__ == "__main__":
    main()
