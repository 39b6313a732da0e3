"""Dodge: a tiny game like VizDoom's Take Cover, in numpy only, to test a world-model pipeline in seconds.

The agent is a green block on the floor of a dark field; orange fireballs appear at the top at random
places and fall at random speeds. The action's ``a[0]`` moves the block as in Take Cover (left below
-1/3, right above 1/3, else it stays). A fireball touching the block ends the episode (``terminated``);
every step survived earns 1, and the episode is truncated after ``max_steps`` (300) steps. The field is
filled before the first frame (the fireballs are already falling), so danger is the same from step 0
(but none is over the block in the lower half of the field: a block that stays is not hit at once).

A random policy mostly stays near where it starts and is soon hit (about 40 steps on average with the
default options); :func:`heuristic_action`, which reads only the frame and walks to the place least
threatened by the fireballs above it, survives far longer (about 270): the frames carry what a controller needs.

>>> env = Dodge(size=16)
>>> frame, info = env.reset(seed=0)
>>> frame.shape, frame.dtype, env.action_space.shape
((16, 16, 3), dtype('uint8'), (1,))
>>> frame2, reward, terminated, truncated, info = env.step(heuristic_action(frame))
>>> reward, info["steps"]
(1.0, 1)
"""

from __future__ import annotations

import numpy as np

from deepgm.errors import ConfigError, ShapeError

from .base import FrameEnv, lateral_move

__all__ = ["Dodge", "heuristic_action", "BACKGROUND", "AGENT_COLOR", "FIREBALL_COLOR"]

BACKGROUND = np.array([28, 30, 52], np.float32)
FLOOR = np.array([70, 60, 50], np.float32)
AGENT_COLOR = np.array([70, 210, 90], np.float32)
FIREBALL_COLOR = np.array([245, 110, 30], np.float32)

_AGENT_W, _AGENT_H = 0.16, 0.07  # the block, as fractions of the field
_FLOOR_Y = 0.94  # the floor's top; the block stands on it
_WARMUP = 60  # steps of falling simulated before the first frame


class Dodge(FrameEnv):
    """Dodge the falling fireballs. Options: ``size`` (frame side, 64), ``max_steps`` (300),
    ``spawn_prob`` (chance of a new fireball per step, 0.08), ``fall_speed`` (fraction of the field a
    fireball falls per step, drawn uniformly in ``[fall_speed / 2, fall_speed]``, 0.05), ``agent_speed``
    (fraction of the field the block moves per step, 0.06), ``radius`` (a fireball's, 0.05)."""

    name = "dodge"
    action_dim = 1

    def __init__(self, size: int = 64, max_steps: int = 300, spawn_prob: float = 0.08, fall_speed: float = 0.05,
                 agent_speed: float = 0.06, radius: float = 0.05) -> None:
        super().__init__(size, max_steps)
        for option, value, lo, hi in (("spawn_prob", spawn_prob, 0.0, 1.0), ("fall_speed", fall_speed, 1e-3, 1.0),
                                      ("agent_speed", agent_speed, 0.0, 1.0), ("radius", radius, 1e-3, 0.25)):
            if not isinstance(value, int | float) or isinstance(value, bool) or not lo <= value <= hi:
                raise ConfigError("Dodge", option, f"a number in [{lo}, {hi}]", value)
        self.spawn_prob, self.fall_speed = float(spawn_prob), float(fall_speed)
        self.agent_speed, self.radius = float(agent_speed), float(radius)
        c = (np.arange(self.size, dtype=np.float32) + 0.5) / self.size  # pixel centres in field units
        self._py, self._px = np.meshgrid(c, c, indexing="ij")
        self._rng = np.random.default_rng(0)
        self._agent_x = 0.5
        self._balls = np.zeros((0, 3))  # rows (x, y, speed); y grows downwards, 0 = top

    @property
    def agent_x(self) -> float:
        """The block's centre, in [0, 1] from the left."""
        return self._agent_x

    @property
    def fireballs(self) -> np.ndarray:
        """A copy of the fireballs, ``(K, 3)``: columns x, y (0 = top), speed per step."""
        return self._balls.copy()

    def _spawn_and_fall(self) -> None:
        balls = self._balls
        balls[:, 1] += balls[:, 2]
        balls = balls[balls[:, 1] - self.radius < _FLOOR_Y]
        if self._rng.random() < self.spawn_prob:
            x = self._rng.uniform(self.radius, 1 - self.radius)
            v = self._rng.uniform(self.fall_speed / 2, self.fall_speed)
            balls = np.concatenate([balls, [[x, -self.radius, v]]])
        self._balls = balls

    def _hit(self) -> bool:
        if len(self._balls) == 0:
            return False
        x0, x1 = self._agent_x - _AGENT_W / 2, self._agent_x + _AGENT_W / 2
        y0, y1 = _FLOOR_Y - _AGENT_H, _FLOOR_Y
        bx, by = self._balls[:, 0], self._balls[:, 1]
        dx = bx - np.clip(bx, x0, x1)
        dy = by - np.clip(by, y0, y1)
        return bool(np.any(dx * dx + dy * dy < self.radius**2))

    def _render(self) -> np.ndarray:
        px, py, s = self._px, self._py, self.size
        img: np.ndarray = np.broadcast_to(BACKGROUND, (s, s, 3)).copy()
        img[py >= _FLOOR_Y] = FLOOR
        # coverage of a pixel by a shape, approximated by the signed distance to its edge (soft, antialiased)
        ax = np.clip(0.5 + (_AGENT_W / 2 - np.abs(px - self._agent_x)) * s, 0, 1)
        ay = np.clip(0.5 + (_AGENT_H / 2 - np.abs(py - (_FLOOR_Y - _AGENT_H / 2))) * s, 0, 1)
        a = (ax * ay)[..., None]
        img = img * (1 - a) + AGENT_COLOR * a
        if len(self._balls):
            bx, by = self._balls[:, 0, None, None], self._balls[:, 1, None, None]
            d = np.sqrt((px[None] - bx) ** 2 + (py[None] - by) ** 2)
            b = np.clip(0.5 + (self.radius - d) * s, 0, 1).max(axis=0)[..., None]
            img = img * (1 - b) + FIREBALL_COLOR * b
        return (img + 0.5).astype(np.uint8)

    def _start(self, seed: int) -> np.ndarray:
        self._rng = np.random.default_rng(seed)
        half = _AGENT_W / 2
        self._agent_x = float(self._rng.uniform(half, 1 - half))
        self._balls = np.zeros((0, 3))
        for _ in range(_WARMUP):
            self._spawn_and_fall()
        # a fair start: no fireball in the lower half of the field above the block (none lands in its first steps)
        b = self._balls
        above = np.abs(b[:, 0] - self._agent_x) < _AGENT_W / 2 + self.radius
        self._balls = b[~(above & (b[:, 1] > 0.5))]
        return self._render()

    def _advance(self, action: np.ndarray) -> tuple[np.ndarray, float, bool]:
        half = _AGENT_W / 2
        x = self._agent_x + lateral_move(float(action[0])) * self.agent_speed
        self._agent_x = float(np.clip(x, half, 1 - half))
        self._spawn_and_fall()
        return self._render(), 1.0, self._hit()


def heuristic_action(frame: np.ndarray) -> np.ndarray:
    """A hand-written Dodge controller that reads only the frame ``(S, S, 3)`` uint8: it finds the block
    (green) and the fireballs (orange) in the lower 70% of the field, scores every place the block could
    stand by the fireballs above it (the lower, the worse), the fireballs about to land on the way there
    and the distance, and steps towards the best; returns the action ``(1,)`` float32 (-1, 0 or 1)."""
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ShapeError(f"heuristic_action: expected a frame (S, S, 3), got {frame.shape}")
    s = frame.shape[0]
    f = frame.astype(np.int16)
    green = (f[..., 1] > 120) & (f[..., 0] < 150)
    orange = (f[..., 0] > 120) & (f[..., 2] < 90) & ~green
    cols = np.nonzero(green)[1]
    if len(cols) == 0:
        return np.zeros(1, np.float32)
    x = (cols.mean() + 0.5) / s
    by, bx = np.nonzero(orange)
    keep = by >= 0.3 * s
    by, bx = (by[keep] + 0.5) / s, (bx[keep] + 0.5) / s
    half, margin = _AGENT_W / 2, 0.12
    places = np.linspace(half, 1 - half, 41)
    over = np.clip(1 - np.abs(bx[None] - places[:, None]) / (half + margin), 0, None)
    stand = (over * by[None] ** 3).sum(1)
    lo, hi = np.minimum(places, x)[:, None] - half - 0.06, np.maximum(places, x)[:, None] + half + 0.06
    on_way = ((bx[None] > lo) & (bx[None] < hi) & (by[None] > 0.7)).sum(1)
    target = places[np.argmin(stand + 2.0 * on_way + 0.3 * np.abs(places - x))]
    if abs(target - x) < 0.025:
        return np.zeros(1, np.float32)
    return np.array([1.0 if target > x else -1.0], np.float32)
