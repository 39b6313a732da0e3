"""World Models (Ha & Schmidhuber 2018) as a pipeline: collect rollouts, train V and M, evolve C in M's dream
or in the real environment, evaluate it (``deepgm world ...``, :mod:`deepgm.worldmodels.cli`).

V and M are zoo models (:mod:`deepgm.zoo.world_models`), the memory protocol and the dream are the core's
(:mod:`deepgm.models.world`); this package holds the controller (:mod:`~deepgm.worldmodels.controller`),
CMA-ES (:mod:`~deepgm.worldmodels.evolve`), the agent in the real environment
(:mod:`~deepgm.worldmodels.agent`) and the stages (:mod:`~deepgm.worldmodels.pipeline`).
"""

from deepgm.worldmodels.controller import LinearController, population_policy
from deepgm.worldmodels.evolve import Evolution, EvolveConfig, dream_fitness

__all__ = ["LinearController", "population_policy", "EvolveConfig", "Evolution", "dream_fitness"]
