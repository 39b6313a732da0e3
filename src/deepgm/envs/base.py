"""The convention every world-model environment follows, and the pieces they share.

A :class:`FrameEnv` is a ``gymnasium.Env`` whose observation is an RGB frame, ``uint8`` ``(S, S, 3)``
(``S = size``, 64 by default), and whose action is ``float32`` ``(A,)`` in ``[-1, 1]`` (a controller's
tanh outputs; each env maps them to its game's controls). ``step`` returns a reward per step and tells
``terminated`` (the episode ended in the game: death) from ``truncated`` (``max_steps`` steps were taken).
``reset(seed=s)`` makes the episode reproducible: the same seed and actions give the same frames.

A subclass writes ``_start(seed) -> frame`` and ``_advance(action) -> (frame, reward, terminated)``; the
step count, truncation, action checks and ``render()`` are done here. gymnasium is optional: this module
imports without it, and constructing an env without it raises ``ImportError`` naming the pip extra.

:class:`AreaResize` shrinks frames by exact area averaging (each output pixel is the mean of the input
area it covers), in numpy only and bit-identical from run to run:

>>> import numpy as np
>>> frame = np.zeros((4, 6, 3), np.uint8); frame[:, :3] = 255  # left half white
>>> AreaResize(4, 6, 2)(frame)[..., 0].tolist()
[[255, 0], [255, 0]]
>>> AreaResize(4, 6, 3)(frame)[0, :, 0].tolist()  # the middle column covers both halves equally
[255, 128, 0]
>>> [lateral_move(a) for a in (-0.9, -0.2, 0.0, 0.5)]
[-1, 0, 0, 1]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from deepgm.errors import ConfigError, ShapeError

if TYPE_CHECKING:
    from gymnasium import Env as _EnvBase
else:  # gymnasium is optional: the base is a plain object without it, and FrameEnv() refuses to start
    try:
        from gymnasium import Env as _EnvBase
    except ImportError:
        _EnvBase = object

__all__ = ["EXTRA", "EnvSpec", "FrameEnv", "AreaResize", "lateral_move", "require", "MOVE_THRESHOLD"]

EXTRA = 'pip install "deepgm[worldmodels]"'
MOVE_THRESHOLD = 1.0 / 3.0  # |a| above it moves (left below -1/3, right above 1/3), as in World Models


def require(module: str, what: str, install: str = EXTRA) -> Any:
    """Import ``module`` or raise ``ImportError`` saying that ``what`` needs it and how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"{what} needs the package '{module}', which is not installed: {install}") from err


def lateral_move(a: float) -> int:
    """The move of a left/right game for the action value ``a`` in [-1, 1]: -1 (left) below -1/3,
    +1 (right) above 1/3, else 0."""
    return -1 if a < -MOVE_THRESHOLD else (1 if a > MOVE_THRESHOLD else 0)


@dataclass(frozen=True)
class EnvSpec:
    """What a pipeline needs to know of an env before running it: the observation's shape ``(S, S, 3)``,
    the action's size ``A`` and the step limit."""

    obs_shape: tuple[int, int, int]
    action_dim: int
    max_steps: int


def _area_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(n_out, K)`` and weights ``(n_out, K)`` of the input cells each output cell averages
    (weights: the fraction of the output cell each input cell covers; a row sums to 1)."""
    scale = n_in / n_out
    rows: list[list[tuple[int, float]]] = []
    for i in range(n_out):
        lo, hi = i * scale, (i + 1) * scale
        cells = [(j, min(hi, j + 1) - max(lo, j)) for j in range(int(np.floor(lo)), int(np.ceil(hi)))]
        rows.append([(j, w / scale) for j, w in cells if w > 1e-9])
    k = max(len(r) for r in rows)
    idx = np.zeros((n_out, k), np.intp)
    wts = np.zeros((n_out, k), np.float32)
    for i, r in enumerate(rows):
        for t, (j, w) in enumerate(r):
            idx[i, t], wts[i, t] = j, w
    return idx, wts


class AreaResize:
    """Resize ``uint8`` frames ``(H, W, C)`` to ``(size, size, C)`` by area averaging (antialiased when
    shrinking; rounded to the nearest integer). Separable: rows, then columns, a few taps each."""

    def __init__(self, height: int, width: int, size: int) -> None:
        self.in_shape = (height, width)
        self.size = size
        self._rows = _area_taps(height, size)
        self._cols = _area_taps(width, size)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        if frame.shape[:2] != self.in_shape or frame.ndim != 3:
            raise ShapeError(f"AreaResize: expected a frame of shape {self.in_shape} + (C,), got {frame.shape}")
        if self.in_shape == (self.size, self.size):
            return np.ascontiguousarray(frame, dtype=np.uint8)
        (ri, rw), (ci, cw) = self._rows, self._cols
        t = frame[ri[:, 0]] * rw[:, 0, None, None]
        for k in range(1, ri.shape[1]):
            t += frame[ri[:, k]] * rw[:, k, None, None]
        out = t[:, ci[:, 0]] * cw[None, :, 0, None]
        for k in range(1, ci.shape[1]):
            out += t[:, ci[:, k]] * cw[None, :, k, None]
        out += 0.5
        return np.clip(out, 0, 255).astype(np.uint8)


def check_size(owner: str, size: int) -> int:
    """``size`` as an int, or ``ConfigError`` unless it is an integer >= 8."""
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 8:
        raise ConfigError(owner, "size", "an integer >= 8 (the frame's side in pixels)", size)
    return int(size)


def check_positive_int(owner: str, option: str, value: int) -> int:
    """``value`` as an int, or ``ConfigError`` unless it is an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ConfigError(owner, option, "an integer >= 1", value)
    return int(value)


class FrameEnv(_EnvBase):  # type: ignore[misc]
    """Base of the world-model envs: RGB ``uint8`` frames ``(S, S, 3)``, actions ``float32`` ``(A,)`` in
    [-1, 1] (values outside are clipped), ``max_steps`` truncation, ``render()`` = the current frame."""

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"]}
    action_dim: int = 1
    name: str = "env"

    def __init__(self, size: int, max_steps: int) -> None:
        spaces = require("gymnasium.spaces", f"the environment '{self.name}'")
        self.size = check_size(type(self).__name__, size)
        self.max_steps = check_positive_int(type(self).__name__, "max_steps", max_steps)
        self.observation_space = spaces.Box(0, 255, (self.size, self.size, 3), np.uint8)
        self.action_space = spaces.Box(-1.0, 1.0, (self.action_dim,), np.float32)
        self.render_mode = "rgb_array"
        self._steps = 0
        self._frame: np.ndarray | None = None
        self._done = True

    @property
    def spec_info(self) -> EnvSpec:
        """This env's :class:`EnvSpec`."""
        return EnvSpec((self.size, self.size, 3), self.action_dim, self.max_steps)

    # the two methods a game writes -------------------------------------------------------------------
    def _start(self, seed: int) -> np.ndarray:
        """Start an episode seeded by ``seed``; return its first frame ``(S, S, 3)`` uint8."""
        raise NotImplementedError

    def _advance(self, action: np.ndarray) -> tuple[np.ndarray, float, bool]:
        """Apply ``action`` ``(A,)``; return the next frame, the step's reward and whether the game ended."""
        raise NotImplementedError

    # gymnasium's API ---------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode. ``seed`` reseeds the env (same seed, same episode); without it the next
        episode's seed is drawn from the env's generator (itself seeded by the last seed given)."""
        super().reset(seed=seed)
        game_seed = int(self.np_random.integers(0, 2**31 - 1))
        self._frame = self._start(game_seed)
        self._steps = 0
        self._done = False
        return self._frame, {"steps": 0}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Take ``action`` (``(A,)`` in [-1, 1]); returns ``(frame, reward, terminated, truncated, info)``."""
        if self._done:
            raise RuntimeError(f"{type(self).__name__}.step() called before reset() or after the episode ended")
        a = np.asarray(action, dtype=np.float32)
        if a.shape != (self.action_dim,):
            a = a.reshape(-1) if a.size == self.action_dim else a
            if a.shape != (self.action_dim,):
                raise ShapeError(f"{type(self).__name__}.step: expected an action of shape ({self.action_dim},), "
                                 f"got {np.shape(action)}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{type(self).__name__}.step: the action must be finite, got {a.tolist()}")
        frame, reward, terminated = self._advance(np.clip(a, -1.0, 1.0))
        self._frame = frame
        self._steps += 1
        truncated = not terminated and self._steps >= self.max_steps
        self._done = terminated or truncated
        return frame, float(reward), bool(terminated), bool(truncated), {"steps": self._steps}

    def render(self) -> np.ndarray | None:  # type: ignore[override]
        """The current frame ``(S, S, 3)`` uint8 (None before the first reset)."""
        return None if self._frame is None else self._frame.copy()
