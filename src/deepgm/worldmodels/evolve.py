"""Evolving C with CMA-ES (Hansen's ``cma`` package), in M's dream or in the real environment.

A candidate's fitness is its mean score over ``rollouts`` episodes: steps survived in the dream (every
candidate's dreams batched into one tensor, :func:`~deepgm.models.world.dream`), or the real return
(:func:`~deepgm.worldmodels.agent.play`). Each generation draws its noise from generators seeded by
``(seed, generation)`` (numpy's global one for ``cma``'s sampling, torch ones for the dreams), and the
search's state is saved after every generation, so a resumed search continues as the uninterrupted one
would have.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from deepgm.errors import ConfigError
from deepgm.io import atomic_write, save_atomic, write_text_atomic
from deepgm.models.world import LatentDynamics, dream
from deepgm.worldmodels.controller import LinearController, population_policy

__all__ = ["EvolveConfig", "Evolution", "dream_fitness"]


@dataclass
class EvolveConfig:
    """Options of ``deepgm world evolve``."""

    where: Literal["dream", "real"] = "dream"
    population: int = 32
    rollouts: int = 8  # episodes per candidate and generation
    generations: int = 60
    sigma0: float = 0.1  # CMA-ES's initial step size
    temperature: float = 1.15  # of M's draws in the dream
    death: Literal["sample", "threshold"] = "sample"  # how a dream ends on M's p(done)
    max_steps: int = 0  # 0: the environment's time limit
    eval_every: int = 10  # every so many generations, score the search's mean over eval_rollouts episodes
    eval_rollouts: int = 64
    seed: int = 0

    def validate(self) -> None:
        """Refuse values outside an option's meaning, naming the option."""
        rules: dict[str, tuple[bool, str]] = {
            "where": (self.where in ("dream", "real"), "'dream' or 'real'"),
            "population": (self.population >= 2, "an integer of at least 2"),
            "rollouts": (self.rollouts >= 1, "an integer of at least 1"),
            "generations": (self.generations >= 1, "an integer of at least 1"),
            "sigma0": (self.sigma0 > 0, "a positive number"),
            "temperature": (self.temperature > 0, "a positive number"),
            "death": (self.death in ("sample", "threshold"), "'sample' or 'threshold'"),
            "max_steps": (self.max_steps >= 0, "an integer of at least 0"),
            "eval_every": (self.eval_every >= 1, "an integer of at least 1"),
            "eval_rollouts": (self.eval_rollouts >= 1, "an integer of at least 1"),
        }
        for name, (ok, expected) in rules.items():
            if not ok:
                raise ConfigError("EvolveConfig", name, expected, getattr(self, name))


Fitness = Callable[[torch.Tensor, int, int], np.ndarray]  # (population, rollouts, generation seed) -> scores (P,)


def dream_fitness(memory: LatentDynamics, controller: LinearController, z0_loc: torch.Tensor,
                  z0_scale: torch.Tensor, max_steps: int, temperature: float,
                  death: Literal["sample", "threshold"]) -> Fitness:
    """Fitness in the dream: each rollout starts from a first frame's latent drawn from V's posterior of a
    random training episode's first frame (``z0_loc``/``z0_scale``, (E, D))."""

    def fitness(population: torch.Tensor, rollouts: int, seed: int) -> np.ndarray:
        g = torch.Generator().manual_seed(seed)
        n = population.shape[0] * rollouts
        pick = torch.randint(len(z0_loc), (n,), generator=g)
        z0 = z0_loc[pick] + z0_scale[pick] * torch.randn(n, z0_loc.shape[1], generator=g)
        torch.manual_seed(seed)  # M's draws use the global generator
        steps, _ = dream(memory, population_policy(controller, population, rollouts), z0, max_steps, temperature,
                         death, generator=g)
        return steps.double().reshape(population.shape[0], rollouts).mean(1).numpy()

    return fitness


def _global_randn(es: Any) -> Any:
    """A search unpickled draws from a copy of numpy's global generator (pickling copies the bound method
    ``np.random.randn`` that ``cma`` keeps, with its generator): point it back at the global one, which each
    generation seeds, so that a resumed search draws what the uninterrupted one would have."""
    es.opts["randn"] = np.random.randn
    for part in vars(es).values():
        if hasattr(part, "randn") and not isinstance(part, np.random.RandomState):
            part.randn = np.random.randn
    return es


class Evolution:
    """A resumable CMA-ES search over C's parameters (:meth:`start`, then :meth:`step` per generation), its
    state in ``folder/search.pkl`` and its curve in ``folder/curve.json`` (per generation: the candidates'
    mean, best and worst fitness; every ``eval_every`` generations the search mean's fitness over
    ``eval_rollouts`` episodes)."""

    def __init__(self, folder: Path, controller: LinearController, cfg: EvolveConfig, fitness: Fitness) -> None:
        import cma  # optional: pip install "deepgm[worldmodels]"

        cfg.validate()
        self.folder, self.controller, self.cfg, self.fitness = Path(folder), controller, cfg, fitness
        self.folder.mkdir(parents=True, exist_ok=True)
        self._cma = cma
        self.es: Any = None
        self.generation = 0
        self.curve: list[dict[str, float]] = []

    @property
    def _state_file(self) -> Path:
        return self.folder / "search.pkl"

    def start(self, resume: bool) -> None:
        """A new search, or (``resume``) the saved one; a saved search with other options is refused."""
        if resume and self._state_file.exists():
            state = pickle.loads(self._state_file.read_bytes())
            if state["config"] != asdict(self.cfg) | {"generations": state["config"]["generations"]}:
                changed = [k for k, v in asdict(self.cfg).items() if k != "generations" and state["config"][k] != v]
                raise ConfigError("EvolveConfig", changed[0], f"{state['config'][changed[0]]!r} as in the saved search "
                                  f"({self._state_file}) to resume it", getattr(self.cfg, changed[0]))
            self.es, self.generation, self.curve = _global_randn(state["es"]), state["generation"], state["curve"]
            return
        opts = {"popsize": self.cfg.population, "seed": self.cfg.seed + 1, "verbose": -9}
        self.es = self._cma.CMAEvolutionStrategy(np.zeros(self.controller.n_params), self.cfg.sigma0, opts)
        self.generation, self.curve = 0, []

    def _save(self) -> None:
        state = {"es": self.es, "generation": self.generation, "curve": self.curve, "config": asdict(self.cfg)}
        blob = pickle.dumps(state)
        atomic_write(self._state_file, lambda fh: fh.write(blob))
        write_text_atomic(self.folder / "curve.json", json.dumps(self.curve, indent=1))
        saved = {"params": self.mean_params(), "controller": asdict(self.controller)}
        save_atomic(saved, self.folder / "controller.pt")

    def mean_params(self) -> torch.Tensor:
        """The search distribution's mean (the controller the search recommends)."""
        return torch.as_tensor(np.asarray(self.es.mean), dtype=torch.get_default_dtype())

    def step(self) -> dict[str, float]:
        """One generation: ask, score, tell, save. Returns its line of the curve."""
        g, seed = self.generation, self.cfg.seed * 1_000_003 + self.generation
        np.random.seed(seed % 2**32)
        solutions = self.es.ask()
        population = torch.as_tensor(np.stack(solutions), dtype=torch.get_default_dtype())
        scores = self.fitness(population, self.cfg.rollouts, seed)
        self.es.tell(solutions, (-scores).tolist())
        line = {"generation": g + 1, "mean": float(scores.mean()), "best": float(scores.max()),
                "worst": float(scores.min())}
        if (g + 1) % self.cfg.eval_every == 0 or g + 1 == self.cfg.generations:
            line["search_mean"] = float(self.fitness(self.mean_params()[None], self.cfg.eval_rollouts, seed + 7)[0])
        self.generation += 1
        self.curve.append(line)
        self._save()
        return line
