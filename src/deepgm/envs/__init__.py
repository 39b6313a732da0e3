"""Environments for world models, and random-policy rollouts of them.

Every env is a ``gymnasium.Env`` (:class:`FrameEnv`) seeing RGB frames ``uint8`` ``(S, S, 3)`` (S = 64 by
default, the ``size`` option) and acting with ``float32`` ``(A,)`` in ``[-1, 1]``, a reward per step,
``terminated`` (the game ended: death) apart from ``truncated`` (``max_steps`` reached), and episodes that
replay under ``reset(seed=...)``:

* ``"dodge"`` - :class:`~deepgm.envs.dodge.Dodge`, a tiny numpy game like Take Cover (A = 1), shipped so a
  pipeline can be tested in seconds; :func:`~deepgm.envs.dodge.heuristic_action` plays it well.
* ``"take-cover"`` - :class:`~deepgm.envs.vizdoom.TakeCover`, VizDoom's Take Cover (A = 1; needs ``vizdoom``).
* ``"car-racing"`` - :class:`~deepgm.envs.car_racing.CarRacing`, gymnasium's CarRacing-v3 (A = 3; needs
  ``box2d``).

:func:`make_env` makes one by name; :func:`collect_rollouts` fills a folder with random-policy episodes in
shards, resumably and in parallel; :func:`load_rollouts` reads them back (:class:`Rollouts`). gymnasium
and the games are optional (``pip install "deepgm[worldmodels]"``): this package imports without them.

>>> env_names()
('dodge', 'take-cover', 'car-racing')
>>> env = make_env("dodge", size=16)
>>> frame, _ = env.reset(seed=1)
>>> frame.shape, env.action_space.shape, env.max_steps
((16, 16, 3), (1,), 300)
"""

from .base import EXTRA, AreaResize, EnvSpec, FrameEnv, lateral_move
from .registry import env_class, env_names, env_options, env_spec, make_env
from .rollouts import POLICIES, RandomPolicy, collect_rollouts, run_episode
from .shards import Episode, RolloutFormatError, Rollouts, episode_returns, iter_rollout_shards, load_rollouts

__all__ = [
    "EXTRA",
    "POLICIES",
    "AreaResize",
    "EnvSpec",
    "Episode",
    "FrameEnv",
    "RandomPolicy",
    "RolloutFormatError",
    "Rollouts",
    "collect_rollouts",
    "env_class",
    "env_names",
    "env_options",
    "env_spec",
    "episode_returns",
    "iter_rollout_shards",
    "lateral_move",
    "load_rollouts",
    "make_env",
    "run_episode",
]
