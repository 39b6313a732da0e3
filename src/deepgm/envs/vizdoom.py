"""VizDoom's Take Cover, the game of World Models' second experiment, as a :class:`~deepgm.envs.FrameEnv`.

The agent stands at the far wall of a room whose monsters throw fireballs at it; it can only step left
or right. The ``vizdoom`` package (PyPI) ships the scenario (``take_cover.cfg``); the game runs headless
at 160x120 RGB and each frame is shrunk to ``size x size`` by area averaging (the whole frame, squashed,
as in the paper). The action's ``a[0]`` maps as in the paper: below -1/3 MOVE_LEFT, above 1/3
MOVE_RIGHT, else nothing. Every step survived earns 1 (an episode's score = its steps); death ends it
(``terminated``) and ``max_steps`` (2100, one minute of game time at 35 tics a second) truncates it.
``reset(seed=s)`` seeds the game (``DoomGame.set_seed``), so an episode replays exactly.

The engine writes its config file and an (empty) ``_vizdoom`` folder where it starts: a private
temporary folder here (the process's working directory is switched to it during ``init`` only),
removed by :meth:`TakeCover.close`.

>>> TakeCover.action_dim, TakeCover.name
(1, 'take-cover')
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from typing import Any

import numpy as np

from deepgm.errors import ConfigError

from .base import AreaResize, FrameEnv, check_positive_int, lateral_move, require

__all__ = ["TakeCover", "RESOLUTIONS"]

RESOLUTIONS = {"160x120": (160, 120), "320x240": (320, 240), "640x480": (640, 480)}
_INIT_LOCK = threading.Lock()  # the working directory is the process's: one game starts at a time


class TakeCover(FrameEnv):
    """Take Cover. Options: ``size`` (frame side, 64), ``max_steps`` (2100), ``frame_skip`` (game tics
    per step, 1: the action is repeated and the reward is still 1 a step), ``resolution`` (the game's
    screen, ``"160x120"``; larger is slower and only changes the frame before shrinking)."""

    name = "take-cover"
    action_dim = 1

    def __init__(self, size: int = 64, max_steps: int = 2100, frame_skip: int = 1, resolution: str = "160x120") -> None:
        vzd = require("vizdoom", "the environment 'take-cover' (VizDoom's Take Cover)")
        super().__init__(size, max_steps)
        self.frame_skip = check_positive_int("TakeCover", "frame_skip", frame_skip)
        if resolution not in RESOLUTIONS:
            raise ConfigError("TakeCover", "resolution", f"one of {sorted(RESOLUTIONS)}", resolution)
        width, height = RESOLUTIONS[resolution]
        self._resize = AreaResize(height, width, self.size)
        game = vzd.DoomGame()
        game.load_config(os.path.join(vzd.scenarios_path, "take_cover.cfg"))
        game.set_window_visible(False)
        game.set_sound_enabled(False)
        game.set_screen_resolution(getattr(vzd.ScreenResolution, f"RES_{width}X{height}"))
        game.set_screen_format(vzd.ScreenFormat.RGB24)
        game.set_mode(vzd.Mode.PLAYER)
        game.set_episode_timeout(0)  # the time limit is max_steps, counted here
        buttons = [getattr(b, "name", str(b)) for b in game.get_available_buttons()]
        if buttons != ["MOVE_LEFT", "MOVE_RIGHT"]:
            raise RuntimeError(f"take_cover.cfg: expected the buttons MOVE_LEFT, MOVE_RIGHT, got {buttons}")
        self._workdir = tempfile.mkdtemp(prefix="deepgm-vizdoom-")
        game.set_doom_config_path(os.path.join(self._workdir, "_vizdoom.ini"))
        try:
            with _INIT_LOCK:
                cwd = os.getcwd()
                os.chdir(self._workdir)
                try:
                    game.init()
                finally:
                    os.chdir(cwd)
        except BaseException:
            shutil.rmtree(self._workdir, ignore_errors=True)
            raise
        self._game: Any = game
        self._actions = {-1: [1.0, 0.0], 0: [0.0, 0.0], 1: [0.0, 1.0]}

    def _observe(self) -> np.ndarray:
        state = self._game.get_state()
        if state is None:  # the episode has ended: no new frame, the last one stays
            return self._frame if self._frame is not None else np.zeros((self.size, self.size, 3), np.uint8)
        return self._resize(state.screen_buffer)

    def _start(self, seed: int) -> np.ndarray:
        self._game.set_seed(seed)
        self._game.new_episode()
        self._frame = None
        return self._observe()

    def _advance(self, action: np.ndarray) -> tuple[np.ndarray, float, bool]:
        self._game.make_action(self._actions[lateral_move(float(action[0]))], self.frame_skip)
        dead = bool(self._game.is_episode_finished())
        return self._observe(), 1.0, dead

    def close(self) -> None:
        """Stop the game and remove its temporary folder (safe to call twice)."""
        game = getattr(self, "_game", None)
        if game is not None:
            game.close()
            self._game = None
        workdir = getattr(self, "_workdir", None)
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)
            self._workdir = ""
        super().close()

    def __del__(self) -> None:  # an env dropped without close() still stops its game and removes its folder
        try:
            self.close()
        except Exception:
            pass
