"""The World Models pipeline as stages over one folder, each resumable and each writing its figures.

    WORLD/world.json            the environment (name, options, frame side, action size, time limit)
    WORLD/rollouts/             random-policy episodes in compressed shards      (collect)
    WORLD/vision/               V: model.pt, config.json, scores.json, reconstructions.png  (train_vision)
    WORLD/latents.pt            V's posterior (loc, scale) of every frame         (encode)
    WORLD/memory/               M: model.pt, config.json, scores.json, dream.png  (train_memory)
    WORLD/controllers/NAME/     C: search.pkl, curve.json, curve.png, controller.pt,
                                evaluation.json, real.png                      (evolve, evaluate)

A stage whose output is complete is not run again (``overwrite=True`` redoes it); an interrupted training
stage continues from its last checkpoint, and an interrupted search from its last generation. A stage
asked to continue with other options than it started with is refused, naming the option. Episodes whose
index is ``19 mod 20`` are held out (5 %): V's and M's validation and scores use only those.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from deepgm.distributions import Normal
from deepgm.envs import Rollouts, collect_rollouts, env_spec, episode_returns, load_rollouts, make_env
from deepgm.errors import ConfigError, DeepGMError
from deepgm.io import save_atomic, write_text_atomic
from deepgm.models import VAE
from deepgm.models.world import LatentDynamics, draw_latents, latent_sequences, open_loop_error
from deepgm.training import Trainer, TrainerConfig
from deepgm.training.checkpoint import latest_checkpoint, load_checkpoint
from deepgm.worldmodels.agent import PlayResult, frames_to_tensor, play
from deepgm.worldmodels.controller import LinearController
from deepgm.worldmodels.evolve import Evolution, EvolveConfig, dream_fitness
from deepgm.zoo.rssm import RSSMConfig, build_rssm
from deepgm.zoo.world_models import MemoryConfig, VisionConfig, build_memory, build_vision

__all__ = ["collect", "train_vision", "encode", "train_memory", "evolve", "evaluate", "load_vision", "load_memory",
           "held_out", "StageError", "MEMORY_KINDS"]

HOLD_OUT = 20  # every 20th episode is held out
# M's kinds: the MDN-RNN of World Models, or the RSSM (PlaNet's belief-state model); (config, builder)
MEMORY_KINDS: dict[str, tuple[type[Any], Callable[[Any, int, int], Any]]] = {
    "mdn-rnn": (MemoryConfig, build_memory), "rssm": (RSSMConfig, build_rssm)}


class StageError(DeepGMError):
    """A stage cannot run: an earlier stage's output is missing."""


def held_out(n_episodes: int) -> tuple[list[int], list[int]]:
    """Training and held-out episode indices (episode ``i`` is held out when ``i % 20 == 19``)."""
    valid = [i for i in range(n_episodes) if i % HOLD_OUT == HOLD_OUT - 1]
    if not valid:
        raise StageError(f"the rollouts hold {n_episodes} episode(s): V and M hold out every {HOLD_OUT}th, so "
                         f"collect at least {HOLD_OUT} (deepgm world collect WORLD --episodes {HOLD_OUT})")
    return [i for i in range(n_episodes) if i % HOLD_OUT != HOLD_OUT - 1], valid


def _world(world: Path) -> dict[str, Any]:
    f = world / "world.json"
    if not f.exists():
        raise StageError(f"{world} holds no world (no world.json): run 'deepgm world collect {world}' first")
    out: dict[str, Any] = json.loads(f.read_text())
    return out


def _need(path: Path, stage: str, world: Path) -> Path:
    if not path.exists():
        raise StageError(f"{path} is missing: run 'deepgm world {stage} {world}' first")
    return path


def _same_config(folder: Path, kind: str, cfg: dict[str, Any], overwrite: bool) -> bool:
    """Prepare ``folder`` for a stage with options ``cfg``: True when its output is already complete."""
    saved = folder / "config.json"
    if overwrite and folder.exists():
        shutil.rmtree(folder)
    if saved.exists():
        old = json.loads(saved.read_text())
        for k, v in cfg.items():
            if k in old and old[k] != v and k not in ("epochs", "generations", "progress"):
                raise ConfigError(kind, k, f"{old[k]!r} as when {folder} was started (or pass --overwrite)", v)
        write_text_atomic(saved, json.dumps(cfg, indent=2, default=str))
        return (folder / "done").exists() and all(old.get(k) == cfg[k] for k in ("epochs", "generations") if k in cfg)
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(saved, json.dumps(cfg, indent=2, default=str))
    return False


def _finish(folder: Path, scores: dict[str, Any]) -> None:
    write_text_atomic(folder / "scores.json", json.dumps(scores, indent=2))
    write_text_atomic(folder / "done", "")


# -- collect -----------------------------------------------------------------------------------------------
def collect(world: Path, env: str, episodes: int, workers: int = 1, seed: int = 0,
            env_options: dict[str, Any] | None = None, progress: bool = True, policy: str = "held",
            repeat: int = 10) -> Path:
    """Random-policy rollouts into ``world/rollouts`` (more episodes extend them); records ``world.json``.
    The default policy holds each uniform action for 1..10 steps, as World Models collected Take Cover
    (``policy="random", repeat=1``: a new action every step); see :mod:`deepgm.envs.rollouts`."""
    options = dict(env_options or {})
    spec = env_spec(env, **options)
    side, action_dim, max_steps = spec.obs_shape[0], spec.action_dim, spec.max_steps
    meta = {"env": env, "env_options": options, "side": side, "action_dim": action_dim, "max_steps": max_steps}
    f = world / "world.json"
    if f.exists():
        old = json.loads(f.read_text())
        for k in ("env", "env_options"):
            if old[k] != meta[k]:
                raise ConfigError("collect", k, f"{old[k]!r} as recorded in {f}", meta[k])
    world.mkdir(parents=True, exist_ok=True)
    write_text_atomic(f, json.dumps(meta, indent=2))
    return collect_rollouts(env, world / "rollouts", episodes, workers=workers, seed=seed, env_options=options,
                            policy=policy, repeat=repeat, progress=progress)


# -- V -----------------------------------------------------------------------------------------------------
def _frames(data: Rollouts, episodes: list[int]) -> torch.Tensor:
    starts = data.starts
    parts = [data.obs[int(starts[e]):int(starts[e]) + int(data.lengths[e])] for e in episodes]
    return torch.from_numpy(np.concatenate(parts))


def _to_float(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {"x": frames_to_tensor(batch["x"])}


def train_vision(world: Path, cfg: VisionConfig, trainer: TrainerConfig, overwrite: bool = False) -> VAE:
    """Train V on the training episodes' frames (validated on the held-out ones); figures and scores."""
    info = _world(world)
    folder = world / "vision"
    if _same_config(folder, "VisionConfig", {**asdict(cfg), "epochs": trainer.epochs,
                                             "batch_size": trainer.batch_size, "seed": trainer.seed}, overwrite):
        print(f"{folder}: V is trained (pass --overwrite to train it again)")
        return load_vision(world)
    data = load_rollouts(_need(world / "rollouts", "collect", world))
    train_eps, valid_eps = held_out(data.n_episodes)
    train, valid = _frames(data, train_eps), _frames(data, valid_eps)
    del data
    model = build_vision(cfg, info["side"])
    trainer.out_dir = folder
    resume = (folder / "checkpoints" / "last").exists()
    Trainer(model, {"x": train}, trainer, val={"x": valid[:2000]}, transform=_to_float).fit(resume=resume)
    save_atomic(model.state_dict(), folder / "model.pt")
    with model.evaluating(), torch.no_grad():
        x = frames_to_tensor(valid[:2000])
        recon = torch.cat([model.reconstruct(x[i:i + 500]) for i in range(0, len(x), 500)])
        mse = float(((recon - x) ** 2).mean())
        neg_elbo = float(model.loss.eval({"x": x[:500]}))
    from deepgm.viz import save_frame_strips

    pick = torch.linspace(0, len(x) - 1, 12).long()
    save_frame_strips(torch.stack([x[pick], recon[pick]]), folder / "reconstructions.png")
    _finish(folder, {"held_out_frames": len(valid), "held_out_mse_per_pixel": mse, "held_out_loss": neg_elbo})
    return model


def load_vision(world: Path) -> VAE:
    """The trained V of ``world``."""
    folder = world / "vision"
    cfg = json.loads(_need(folder / "model.pt", "train-v", world).with_name("config.json").read_text())
    fields = {k: cfg[k] for k in asdict(VisionConfig())}
    model = build_vision(VisionConfig(**fields), _world(world)["side"])
    model.load_state_dict(torch.load(folder / "model.pt", map_location="cpu", weights_only=True))
    return model.eval()


# -- encode --------------------------------------------------------------------------------------------------
def encode(world: Path, batch_size: int = 1000, overwrite: bool = False) -> Path:
    """V's posterior of every frame, with the episodes' actions, lengths and ends, into ``world/latents.pt``."""
    out = world / "latents.pt"
    vision_done = world / "vision" / "model.pt"
    if out.exists() and not overwrite and out.stat().st_mtime >= _need(vision_done, "train-v", world).stat().st_mtime:
        print(f"{out}: the frames are encoded (pass --overwrite to encode them again)")
        return out
    model = load_vision(world)
    data = load_rollouts(_need(world / "rollouts", "collect", world))
    locs, scales = [], []
    with torch.no_grad():
        for i in range(0, len(data.obs), batch_size):
            params = cast(Normal, model.encoder).params({"x": frames_to_tensor(data.obs[i:i + batch_size])})
            locs.append(params["loc"])
            scales.append(params["scale"])
    save_atomic({"loc": torch.cat(locs), "scale": torch.cat(scales), "action": torch.from_numpy(data.action),
                 "lengths": torch.from_numpy(data.lengths), "terminated": torch.from_numpy(data.terminated)}, out)
    return out


def _latents(world: Path) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = torch.load(_need(world / "latents.pt", "encode", world), weights_only=True)
    return out


def _bounds(lat: dict[str, torch.Tensor]) -> torch.Tensor:
    """``(E + 1,)``: episode ``e``'s frames are rows ``bounds[e]`` to ``bounds[e + 1]`` of the latents."""
    return torch.cat([torch.zeros(1, dtype=torch.long), lat["lengths"].cumsum(0)])


def _windows(lat: dict[str, torch.Tensor], episodes: list[int], seq_len: int) -> dict[str, torch.Tensor]:
    starts = _bounds(lat)
    rows = torch.cat([torch.arange(int(starts[e]), int(starts[e + 1])) for e in episodes])
    return latent_sequences(lat["loc"][rows], lat["scale"][rows], lat["action"][rows].float(),
                            [int(lat["lengths"][e]) for e in episodes], lat["terminated"][episodes], seq_len)


# -- M -------------------------------------------------------------------------------------------------------
def _memory_kind(cfg: MemoryConfig | RSSMConfig) -> str:
    for kind, (config, _) in MEMORY_KINDS.items():
        if type(cfg) is config:
            return kind
    raise ConfigError("train_memory", "cfg", "a MemoryConfig (MDN-RNN) or an RSSMConfig", type(cfg).__name__)


def train_memory(world: Path, cfg: MemoryConfig | RSSMConfig, trainer: TrainerConfig,
                 overwrite: bool = False) -> LatentDynamics:
    """Train M, the MDN-RNN (``cfg`` a :class:`MemoryConfig`) or the RSSM (an :class:`RSSMConfig`), on the
    training episodes' latents (a new draw from V's posterior every batch), keeping the weights of the epoch
    with the best held-out loss (``best_step`` in the scores); held-out scores (next-latent
    log-likelihood, or ELBO for the RSSM, and open-loop error 10 and 30 steps ahead) and the dream figure."""
    kind = _memory_kind(cfg)
    info, lat = _world(world), _latents(world)
    folder = world / "memory"
    if _same_config(folder, type(cfg).__name__, {"kind": kind, **asdict(cfg), "epochs": trainer.epochs,
                                                 "batch_size": trainer.batch_size, "seed": trainer.seed}, overwrite):
        print(f"{folder}: M is trained (pass --overwrite to train it again)")
        return load_memory(world)
    train_eps, valid_eps = held_out(len(lat["lengths"]))
    train = _windows(lat, train_eps, cfg.seq_len)
    valid = draw_latents(_windows(lat, valid_eps, cfg.seq_len), generator=torch.Generator().manual_seed(0))
    model = MEMORY_KINDS[kind][1](cfg, lat["loc"].shape[1], info["action_dim"])
    trainer.out_dir = folder
    trainer.batch_size = min(trainer.batch_size, len(train["mask"]))
    resume = (folder / "checkpoints" / "last").exists()
    Trainer(model, train, trainer, val=valid, transform=draw_latents).fit(resume=resume)
    best_step = None  # M keeps the weights of its best held-out epoch (the last ones when none was validated)
    if (folder / "checkpoints" / "best").exists():
        best_step = int(load_checkpoint(latest_checkpoint(folder / "checkpoints", "best"), model)["step"])
    save_atomic(model.state_dict(), folder / "model.pt")
    long = draw_latents(_windows(lat, valid_eps, 200), generator=torch.Generator().manual_seed(1))
    scores: dict[str, Any] = {**model.next_latent_scores(valid), "held_out_windows": len(valid["mask"]),
                              "best_step": best_step}
    try:
        scores["open_loop_mse"] = {str(k): v for k, v in open_loop_error(model, long, 10, [10, 30]).items()}
    except ValueError as err:
        scores["open_loop_mse"] = str(err)
    dream_figure(world, model, folder / "dream.png")
    _finish(folder, scores)
    return model


def load_memory(world: Path) -> LatentDynamics:
    """The trained M of ``world`` (the kind its ``memory/config.json`` records)."""
    folder = world / "memory"
    cfg = json.loads(_need(folder / "model.pt", "train-m", world).with_name("config.json").read_text())
    lat = _latents(world)
    config, build = MEMORY_KINDS[cfg.get("kind", "mdn-rnn")]
    model = build(config(**{k: cfg[k] for k in asdict(config())}), lat["loc"].shape[1], _world(world)["action_dim"])
    model.load_state_dict(torch.load(folder / "model.pt", map_location="cpu", weights_only=True))
    model.eval()
    return model


@torch.no_grad()
def dream_figure(world: Path, memory: LatentDynamics, path: Path, steps: int = 48, every: int = 4,
                 temperature: float = 1.0) -> Path:
    """A held-out real episode (top), V's reconstruction of it, and M's dream from its first frame under the
    same actions (bottom), every ``every``-th frame of the first ``steps``."""
    from deepgm.viz import save_frame_strips

    vision, lat, data = load_vision(world), _latents(world), load_rollouts(world / "rollouts")
    _, valid_eps = held_out(len(data.lengths))
    e = max(valid_eps or [0], key=lambda i: int(data.lengths[i]))
    s, n = int(data.starts[e]), min(steps, int(data.lengths[e]))
    real = frames_to_tensor(data.obs[s:s + n])
    actions = torch.from_numpy(data.action[s:s + n]).float()
    state, z = memory.initial_state(1), lat["loc"][s:s + 1]
    zs = []
    for t in range(n):
        zs.append(z)
        state = memory.observe(state, z, actions[t:t + 1])
        z, _ = memory.imagine(state, temperature)
    pick = torch.arange(0, n, every)
    rows = [real[pick], vision.decode(lat["loc"][s:s + n][pick]), vision.decode(torch.cat(zs)[pick])]
    return save_frame_strips(torch.stack(rows), path)


# -- C -------------------------------------------------------------------------------------------------------
def _controller(world: Path, memory: LatentDynamics) -> LinearController:
    return LinearController(memory.z_dim + memory.feature_dim, memory.action_dim)


def evolve(world: Path, name: str, cfg: EvolveConfig, overwrite: bool = False, slots: int = 8,
           progress: bool = True) -> Path:
    """Evolve C in the dream or in the real environment into ``world/controllers/NAME``; the CMA-ES curve."""
    cfg.validate()
    info, memory = _world(world), load_memory(world)
    folder = world / "controllers" / name
    if _same_config(folder, "EvolveConfig", asdict(cfg), overwrite):
        print(f"{folder}: the search is complete (pass --overwrite to search again)")
        return folder
    controller = _controller(world, memory)
    max_steps = cfg.max_steps or info["max_steps"] or 1000
    if cfg.where == "dream":
        lat = _latents(world)
        train_eps, _ = held_out(len(lat["lengths"]))
        first = _bounds(lat)[:-1][train_eps]
        fitness = dream_fitness(memory, controller, lat["loc"][first], lat["scale"][first], max_steps,
                                cfg.temperature, cfg.death)
    else:
        vision = load_vision(world)

        def fitness(population: torch.Tensor, rollouts: int, seed: int) -> Any:
            params = population.repeat_interleave(rollouts, 0)
            result = play(lambda: make_env(info["env"], **info["env_options"]), vision, memory, controller, params,
                          seed=seed, slots=slots)
            return result.scores.reshape(population.shape[0], rollouts).mean(1)

    search = Evolution(folder, controller, cfg, fitness)
    bar = _bar(cfg.generations, progress, "generations")

    def report(line: dict[str, float]) -> None:
        bar.update(1)
        bar.set_postfix({k: round(v, 1) for k, v in line.items() if k != "generation"})

    search.start(resume=True)
    bar.update(search.generation)
    while search.generation < cfg.generations:
        report(search.step())
    bar.close()
    _curve_figure(search.curve, folder / "curve.png", cfg.where)
    write_text_atomic(folder / "done", "")
    return folder


def _bar(total: int, enabled: bool, unit: str) -> Any:
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is optional
        enabled = False
    if not enabled:
        class _Quiet:
            def update(self, n: int) -> None: ...
            def set_postfix(self, d: dict[str, Any]) -> None: ...
            def close(self) -> None: ...
        return _Quiet()
    return tqdm(total=total, unit=unit, dynamic_ncols=True)


def _curve_figure(curve: list[dict[str, float]], path: Path, where: str) -> Path:
    from deepgm.viz import save_loss_curve

    gens = [c["generation"] for c in curve]
    curves = {"candidates' mean": [c["mean"] for c in curve], "best candidate": [c["best"] for c in curve]}
    x: dict[str, Any] = {k: gens for k in curves}
    evals = [c for c in curve if "search_mean" in c]
    if evals:
        curves["search mean"] = [c["search_mean"] for c in evals]
        x["search mean"] = [c["generation"] for c in evals]
    return save_loss_curve(curves, path, xlabel="generation", ylabel=f"fitness (score in the {where})", x=x)


def evaluate(world: Path, name: str, episodes: int = 100, seed: int = 1_000_000, slots: int = 8,
             progress: bool = True, overwrite: bool = False) -> dict[str, Any]:
    """C's score over ``episodes`` real episodes (seeds ``seed + i``, none used in collection by default);
    ``evaluation.json`` and a strip of its first episode's frames (``real.png``). An evaluation of the same
    episodes written after the controller is returned without playing again (unless ``overwrite``)."""
    info = _world(world)
    folder = world / "controllers" / name
    weights = _need(folder / "controller.pt", "evolve", world)
    done = folder / "evaluation.json"
    if done.exists() and not overwrite and done.stat().st_mtime >= weights.stat().st_mtime:
        old: dict[str, Any] = json.loads(done.read_text())
        if (old.get("episodes"), old.get("seed")) == (episodes, seed):
            print(f"{done}: C is evaluated on these episodes (pass --overwrite to play them again)")
            return old
    saved = torch.load(weights, weights_only=True)
    vision, memory = load_vision(world), load_memory(world)
    controller = _controller(world, memory)
    params = saved["params"][None].repeat(episodes, 1)
    bar = _bar(episodes, progress, "episodes")
    result: PlayResult = play(lambda: make_env(info["env"], **info["env_options"]), vision, memory, controller,
                              params, seed=seed, slots=slots, record=200, progress=bar.update)
    bar.close()
    scores = result.scores
    out = {"controller": name, "episodes": episodes, "seed": seed, "mean": float(scores.mean()),
           "std": float(scores.std()), "min": float(scores.min()), "max": float(scores.max()),
           "scores": scores.tolist()}
    write_text_atomic(folder / "evaluation.json", json.dumps(out, indent=2))
    if len(result.frames):
        from deepgm.viz import save_frame_strips

        frames = frames_to_tensor(result.frames)[::max(1, len(result.frames) // 16)][:16]
        save_frame_strips(frames[None], folder / "real.png")
    return out


def random_policy_scores(world: Path) -> dict[str, float]:
    """The random policy's returns over the collected episodes: mean, std and count."""
    returns = episode_returns(_need(world / "rollouts", "collect", world))  # reads no frames
    return {"episodes": len(returns), "mean": float(returns.mean()), "std": float(returns.std())}


def dream_score(world: Path, name: str, rollouts: int = 256, seed: int = 1) -> float:
    """The mean steps survived in the dream by controller ``name`` at its search's temperature, the dreams
    starting from the held-out episodes' first frames (the search started from the training episodes')."""
    folder = world / "controllers" / name
    saved = json.loads(_need(folder / "config.json", "evolve", world).read_text())
    cfg = EvolveConfig(**{k: v for k, v in saved.items() if k in asdict(EvolveConfig())})
    memory, info, lat = load_memory(world), _world(world), _latents(world)
    controller = _controller(world, memory)
    _, valid_eps = held_out(len(lat["lengths"]))
    first = _bounds(lat)[:-1][valid_eps]
    fitness = dream_fitness(memory, controller, lat["loc"][first], lat["scale"][first],
                            cfg.max_steps or info["max_steps"] or 1000, cfg.temperature, cfg.death)
    params = torch.load(folder / "controller.pt", weights_only=True)["params"]
    return float(fitness(params[None], rollouts, seed)[0])

