"""gymnasium's CarRacing-v3, World Models' first experiment, as a :class:`~deepgm.envs.FrameEnv`.

The car drives a random track seen from above (96x96 frames, shrunk here to ``size x size`` by area
averaging). The action ``(3,)`` in [-1, 1] maps to the game's controls: steering ``a[0]`` (right is
positive), gas ``(a[1] + 1) / 2`` and brake ``(a[2] + 1) / 2`` in [0, 1]. The reward is the game's
(+1000/N per new tile of the N, -0.1 a step, -100 for leaving the playfield); ``terminated`` is the
game's (the lap is done or the car left the playfield), and ``max_steps`` (1000, as gymnasium's
registration) truncates. It needs ``box2d`` and ``pygame`` (``pip install "deepgm[carracing]"``).

>>> CarRacing.action_dim, CarRacing.name
(3, 'car-racing')
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import AreaResize, FrameEnv, require

__all__ = ["CarRacing", "car_controls"]

BOX2D_INSTALL = 'pip install "deepgm[carracing]" (the box2d and pygame-ce wheels)'


def car_controls(action: np.ndarray) -> np.ndarray:
    """The game's ``(steer, gas, brake)`` ``(3,)`` for an action ``(3,)`` in [-1, 1]:
    ``(a[0], (a[1] + 1) / 2, (a[2] + 1) / 2)``.

    >>> car_controls(np.array([-1.0, 1.0, -1.0], np.float32)).tolist()
    [-1.0, 1.0, 0.0]
    """
    return np.array([action[0], (action[1] + 1.0) / 2.0, (action[2] + 1.0) / 2.0], np.float32)


class CarRacing(FrameEnv):
    """CarRacing-v3. Options: ``size`` (frame side, 64), ``max_steps`` (1000), ``domain_randomize``
    (False: the game's random colours of grass and road, drawn at each reset)."""

    name = "car-racing"
    action_dim = 3

    def __init__(self, size: int = 64, max_steps: int = 1000, domain_randomize: bool = False) -> None:
        super().__init__(size, max_steps)
        what = "the environment 'car-racing' (gymnasium's CarRacing-v3)"
        require("Box2D", what, BOX2D_INSTALL)
        require("pygame", what, BOX2D_INSTALL)
        module = require("gymnasium.envs.box2d.car_racing", what, BOX2D_INSTALL)
        self._car: Any = module.CarRacing(render_mode=None, domain_randomize=bool(domain_randomize), continuous=True)
        self.domain_randomize = bool(domain_randomize)
        self._resize = AreaResize(module.STATE_H, module.STATE_W, self.size)

    def _start(self, seed: int) -> np.ndarray:
        frame, _ = self._car.reset(seed=seed)
        return self._resize(frame)

    def _advance(self, action: np.ndarray) -> tuple[np.ndarray, float, bool]:
        frame, reward, terminated, _, _ = self._car.step(car_controls(action))
        return self._resize(frame), float(reward), bool(terminated)

    def close(self) -> None:
        """Close the game (safe to call twice)."""
        car = getattr(self, "_car", None)
        if car is not None:
            car.close()
            self._car = None
        super().close()
