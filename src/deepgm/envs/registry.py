"""The envs by name: :func:`make_env`, :func:`env_names`, :func:`env_spec` and :func:`env_options`.

A name's class is imported only when it is asked for, so listing and checking names needs neither
gymnasium nor a game. Options are checked against the class's keyword arguments: an unknown name or
option raises :class:`~deepgm.errors.ConfigError` listing the valid ones.

>>> env_names()
('dodge', 'take-cover', 'car-racing')
>>> env_spec("dodge", size=32)
EnvSpec(obs_shape=(32, 32, 3), action_dim=1, max_steps=300)
>>> env_options("take-cover")["max_steps"]
2100
>>> try:
...     make_env("dodge", speed=2)
... except ConfigError as err:
...     print(err)
make_env('dodge'): option must be one of agent_speed, fall_speed, max_steps, radius, size,
spawn_prob, got 'speed'
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from deepgm.errors import ConfigError

from .base import EnvSpec, FrameEnv, check_positive_int, check_size

__all__ = ["make_env", "env_names", "env_spec", "env_options", "env_class"]

_ENVS: dict[str, tuple[str, str]] = {  # name -> (module under deepgm.envs, class)
    "dodge": ("dodge", "Dodge"),
    "take-cover": ("vizdoom", "TakeCover"),
    "car-racing": ("car_racing", "CarRacing"),
}


def env_names() -> tuple[str, ...]:
    """The names :func:`make_env` knows."""
    return tuple(_ENVS)


def env_class(name: str) -> type[FrameEnv]:
    """The class of the env ``name`` (imports its module, not its game)."""
    if name not in _ENVS:
        raise ConfigError("make_env", "name", f"one of {', '.join(_ENVS)}", name)
    module, cls = _ENVS[name]
    found: type[FrameEnv] = getattr(importlib.import_module(f"{__package__}.{module}"), cls)
    return found


def env_options(name: str, **options: Any) -> dict[str, Any]:
    """All the options of env ``name``: its defaults updated by ``options`` (unknown ones refused)."""
    params = {k: p.default for k, p in inspect.signature(env_class(name).__init__).parameters.items()
              if k != "self" and p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD}
    for key in options:
        if key not in params:
            raise ConfigError(f"make_env({name!r})", "option", f"one of {', '.join(sorted(params))}", key)
    return {**params, **options}


def env_spec(name: str, **options: Any) -> EnvSpec:
    """The :class:`EnvSpec` (frame shape, action size, step limit) of ``make_env(name, **options)``,
    without making it (no game starts; the options' names and size are checked)."""
    resolved = env_options(name, **options)
    size = check_size(env_class(name).__name__, resolved["size"])
    max_steps = check_positive_int(env_class(name).__name__, "max_steps", resolved["max_steps"])
    return EnvSpec((size, size, 3), env_class(name).action_dim, max_steps)


def make_env(name: str, **options: Any) -> FrameEnv:
    """Make the env ``name`` (one of :func:`env_names`) with ``options`` (its class's keywords:
    ``size``, ``max_steps`` and the game's own). A game whose package is missing raises ``ImportError``
    naming what to install; close the env when done."""
    return env_class(name)(**env_options(name, **options))
