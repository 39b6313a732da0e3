"""The agent in the real environment: V encodes each frame, M steps on ``(z, a)``, C acts on ``[z, h]``.

:func:`play` runs a list of episodes, each with its own controller parameters (a CMA-ES population's
candidates, or one controller repeated), ``slots`` environments at a time in lockstep so that V, M and C
run batched; episode ``i`` resets its environment with seed ``seed + i``, so scores do not depend on
``slots``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from deepgm.models import VAE
from deepgm.models.world import LatentDynamics
from deepgm.worldmodels.controller import LinearController

__all__ = ["PlayResult", "play", "frames_to_tensor"]


def frames_to_tensor(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """``uint8 (..., S, S, 3)`` frames → float ``(..., 3, S, S)`` in [0, 1] (what V reads)."""
    t = torch.as_tensor(frames)
    if t.dtype != torch.uint8 or t.dim() < 3 or t.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 (..., S, S, 3) RGB, got {t.dtype} {tuple(t.shape)}")
    return t.movedim(-1, -3).to(torch.get_default_dtype()) / 255.0


@dataclass
class PlayResult:
    """Scores (the return of each episode, in episode order), their lengths, and the frames of the first
    ``record`` steps of episode 0 (``uint8 (T, S, S, 3)``) with their actions."""

    scores: np.ndarray
    lengths: np.ndarray
    frames: np.ndarray
    actions: np.ndarray


@torch.no_grad()
def play(make_env: Callable[[], Any], vision: VAE, memory: LatentDynamics, controller: LinearController,
         params: torch.Tensor, seed: int = 0, slots: int = 8, record: int = 0,
         progress: Callable[[int], None] | None = None) -> PlayResult:
    """Play ``len(params)`` episodes, episode ``i`` driven by ``params[i]`` (``(E, n_params)``)."""
    n_episodes = params.shape[0]
    slots = max(1, min(slots, n_episodes))
    envs = [make_env() for _ in range(slots)]
    w, b = controller.unpack(params.to(torch.get_default_dtype()))
    scores, lengths = np.zeros(n_episodes), np.zeros(n_episodes, dtype=np.int64)
    frames: list[np.ndarray] = []
    actions: list[np.ndarray] = []
    episode = [-1] * slots  # the episode each slot plays (-1: none left)
    obs: list[np.ndarray | None] = [None] * slots
    next_episode = 0
    state = memory.initial_state(slots)
    fresh = memory.initial_state(1)

    def start(s: int) -> None:
        nonlocal next_episode, state
        if next_episode >= n_episodes:
            episode[s] = -1
            return
        episode[s], next_episode = next_episode, next_episode + 1
        obs[s], _ = envs[s].reset(seed=seed + episode[s])
        state = tuple(torch.cat([x[:s], f, x[s + 1:]]) for x, f in zip(state, fresh))

    try:
        for s in range(slots):
            start(s)
        while any(e >= 0 for e in episode):
            live = [s for s in range(slots) if episode[s] >= 0]
            x = frames_to_tensor(np.stack([obs[s] for s in live]))  # type: ignore[misc]
            z = vision.encode(x)
            rows = torch.tensor(live)
            live_state = tuple(t[rows] for t in state)
            h = memory.features(live_state)
            idx = torch.tensor([episode[s] for s in live])
            a = torch.tanh(torch.bmm(torch.cat([z, h], -1).unsqueeze(1), w[idx]).squeeze(1) + b[idx])
            new = memory.observe(live_state, z, a)
            state = tuple(t.index_copy(0, rows, u) for t, u in zip(state, new))
            for j, s in enumerate(live):
                e = episode[s]
                act = a[j].numpy()
                if e == 0 and len(frames) < record:
                    frames.append(np.asarray(obs[s]))
                    actions.append(act.copy())
                obs[s], reward, terminated, truncated, _ = envs[s].step(act)
                scores[e] += float(reward)
                lengths[e] += 1
                if terminated or truncated:
                    if progress is not None:
                        progress(1)
                    start(s)
    finally:
        for env in envs:
            env.close()
    empty = np.zeros((0, *envs[0].observation_space.shape), np.uint8)
    return PlayResult(scores, lengths, np.stack(frames) if frames else empty,
                      np.stack(actions) if actions else np.zeros((0, controller.action_dim), np.float32))
