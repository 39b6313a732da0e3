"""World models' memory: a model of a latent sequence under actions that can be stepped and can dream.

Ha & Schmidhuber's M (an MDN-RNN) and a recurrent state-space model (RSSM, PlaNet's) are both
:class:`LatentDynamics`: trained on V's latents ``z_t`` of rollouts and their actions ``a_t``, they are
stepped on an observed ``(z_t, a_t)`` (:meth:`~LatentDynamics.observe`) and predict the next latent and
whether the episode ends (:meth:`~LatentDynamics.imagine`). A controller sees ``[z_t, features(state)]``.
The dream loop, the held-out next-latent score and the open-loop prediction error are written once here,
for any such model.

Training batches (:func:`latent_sequences`, then :func:`draw_latents`) are ``{"z": (B, T, D), "a": (B, T, A),
"z_next": (B, T, D), "done": (B, T), "mask": (B, T)}``: ``z_next[:, t]`` is the latent after action
``a[:, t]``, ``done[:, t]`` is 1 where the episode ended (by death) after that action, and ``mask`` marks the
live steps.

>>> import torch
>>> lengths = [5, 3]  # two episodes; the first ended by death, the second was cut at its time limit
>>> loc, scale, a = torch.randn(8, 2), torch.ones(8, 2), torch.zeros(8, 1)
>>> windows = latent_sequences(loc, scale, a, lengths, torch.tensor([True, False]), seq_len=4)
>>> windows["mask"].tolist()  # windows: steps 0-3 and 4 of the first episode, 0-2 of the second
[[1.0, 1.0, 1.0, 1.0], [1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0]]
>>> windows["done"].tolist()
[[0.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]
>>> batch = draw_latents(windows)
>>> sorted(batch), batch["z"].shape
(['a', 'done', 'mask', 'z', 'z_next'], torch.Size([3, 4, 2]))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import torch

__all__ = ["LatentDynamics", "State", "latent_windows", "latent_sequences", "draw_latents", "dream", "open_loop_error"]

State = tuple[torch.Tensor, ...]


@runtime_checkable
class LatentDynamics(Protocol):
    """What the dream and the controller need of a memory model (sizes and four methods)."""

    z_dim: int
    action_dim: int
    feature_dim: int  # the size of features(state), what the controller sees beside z

    def initial_state(self, n: int) -> State:
        """The state of ``n`` sequences before their first step."""
        ...

    def observe(self, state: State, z: torch.Tensor, a: torch.Tensor) -> State:
        """The state after seeing the latent ``z`` (n, D) and taking the action ``a`` (n, A)."""
        ...

    def features(self, state: State) -> torch.Tensor:
        """``(n, feature_dim)``: the memory's summary the controller acts on (an LSTM's ``h``)."""
        ...

    def imagine(self, state: State, temperature: float = 1.0, mean: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """A draw of the next latent ``(n, D)`` at ``temperature`` (its mean with ``mean=True``) and the
        probability ``(n,)`` that the episode ends after the last observed action."""
        ...


def latent_windows(lengths: Sequence[int], seq_len: int) -> list[tuple[int, int, int]]:
    """``(episode, start, length)`` windows of at most ``seq_len`` transitions tiling every episode
    (an episode of L frames has L transitions: the last one leads to its end)."""
    out: list[tuple[int, int, int]] = []
    for e, n in enumerate(lengths):
        for s in range(0, int(n), seq_len):
            out.append((e, s, min(seq_len, int(n) - s)))
    return out


def latent_sequences(loc: torch.Tensor, scale: torch.Tensor, a: torch.Tensor, lengths: Sequence[int],
                     terminated: torch.Tensor, seq_len: int) -> dict[str, torch.Tensor]:
    """The episodes as padded windows of ``seq_len`` transitions: V's posterior ``loc``/``scale`` (N, D) of
    every frame and the actions ``a`` (N, A), concatenated in episode order (``lengths``; ``terminated[e]``:
    episode ``e`` ended by death), become ``{"z_loc", "z_scale", "z_next_loc", "z_next_scale": (W, T, D),
    "a": (W, T, A), "done", "mask": (W, T)}``; :func:`draw_latents` turns a batch of them into training data.

    The transition after an episode's last frame has no next frame: its next latent repeats the last one
    and it counts only through ``done`` (1 if the episode ended by death; a truncated episode's last step
    is masked out)."""
    if loc.shape != scale.shape or loc.dim() != 2 or a.shape[0] != loc.shape[0]:
        raise ValueError(f"latent_sequences: loc and scale must be (N, D) and a (N, A); got {tuple(loc.shape)}, "
                         f"{tuple(scale.shape)} and {tuple(a.shape)}")
    if sum(int(n) for n in lengths) != loc.shape[0]:
        raise ValueError(f"latent_sequences: the episode lengths sum to {sum(int(n) for n in lengths)}, "
                         f"but there are {loc.shape[0]} frames")
    starts = torch.tensor([0, *lengths]).cumsum(0)
    windows = latent_windows(lengths, seq_len)
    w, d, k = len(windows), loc.shape[1], a.shape[1]
    out = {"z_loc": loc.new_zeros(w, seq_len, d), "z_scale": loc.new_ones(w, seq_len, d),
           "z_next_loc": loc.new_zeros(w, seq_len, d), "z_next_scale": loc.new_ones(w, seq_len, d),
           "a": a.new_zeros(w, seq_len, k), "done": loc.new_zeros(w, seq_len), "mask": loc.new_zeros(w, seq_len)}
    for row, (e, s, n) in enumerate(windows):
        first, end = int(starts[e]) + s, int(starts[e + 1])
        out["z_loc"][row, :n], out["z_scale"][row, :n] = loc[first:first + n], scale[first:first + n]
        out["a"][row, :n] = a[first:first + n]
        last = min(first + n + 1, end)
        out["z_next_loc"][row, :last - first - 1] = loc[first + 1:last]
        out["z_next_scale"][row, :last - first - 1] = scale[first + 1:last]
        out["mask"][row, :n] = 1.0
        if first + n == end:  # this window holds the episode's last transition
            out["z_next_loc"][row, n - 1], out["z_next_scale"][row, n - 1] = loc[end - 1], scale[end - 1]
            if bool(terminated[e]):
                out["done"][row, n - 1] = 1.0
            else:
                out["mask"][row, n - 1] = 0.0
    return out


def draw_latents(batch: dict[str, torch.Tensor], generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """A training batch ``{"z", "a", "z_next", "done", "mask"}`` from windows of :func:`latent_sequences`:
    the latents drawn from V's posterior (a new draw every time, as Ha & Schmidhuber train M), a frame and
    its successor drawn independently. Draws use the global generator unless ``generator`` is given."""
    z = batch["z_loc"] + batch["z_scale"] * torch.randn(batch["z_loc"].shape, generator=generator)
    z_next = batch["z_next_loc"] + batch["z_next_scale"] * torch.randn(batch["z_loc"].shape, generator=generator)
    return {"z": z, "a": batch["a"], "z_next": z_next, "done": batch["done"], "mask": batch["mask"]}


Policy = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (z, features) -> action


@torch.no_grad()
def dream(memory: LatentDynamics, policy: Policy, z0: torch.Tensor, max_steps: int, temperature: float = 1.0,
          death: str = "sample", generator: torch.Generator | None = None,
          record: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Roll ``n = len(z0)`` dreams of ``policy`` inside ``memory`` at once, from the first latents ``z0``.

    A dream ends when the memory predicts the episode's end: with probability ``p(done)`` (``death=
    "sample"``) or when ``p(done) > 1/2`` (``"threshold"``), or after ``max_steps``. Returns the steps each
    dream survived ``(n,)`` and the latents of the first ``record`` dreams ``(T, record, D)`` (for a figure)."""
    if death not in ("sample", "threshold"):
        raise ValueError(f"dream: death must be 'sample' or 'threshold', got {death!r}")
    n = z0.shape[0]
    state, z = memory.initial_state(n), z0
    alive = torch.ones(n, dtype=torch.bool, device=z0.device)
    steps = torch.zeros(n, dtype=torch.long, device=z0.device)
    frames: list[torch.Tensor] = []
    for _ in range(max_steps):
        if record:
            frames.append(z[:record].clone())
        a = policy(z, memory.features(state))
        state = memory.observe(state, z, a)
        z, p_done = memory.imagine(state, temperature)
        steps += alive.long()
        if death == "sample":
            dead = torch.rand(n, generator=generator, device=z0.device) < p_done
        else:
            dead = p_done > 0.5
        alive &= ~dead
        if not bool(alive.any()):
            break
    return steps, (torch.stack(frames) if frames else z0.new_zeros(0, record, z0.shape[1]))


@torch.no_grad()
def open_loop_error(memory: LatentDynamics, batch: dict[str, torch.Tensor], context: int,
                    horizons: Sequence[int]) -> dict[int, float]:
    """The mean squared error per latent dimension of ``memory``'s mean predictions ``h`` steps ahead, for
    each ``h`` in ``horizons``, after observing the first ``context`` steps of each sequence and then only
    the true actions (its own predictions fed back). Sequences shorter than ``context + h`` are left out."""
    z, a, mask = batch["z"], batch["a"], batch["mask"]
    horizon = max(horizons)
    keep = mask.sum(1) >= context + horizon
    if not bool(keep.any()):
        raise ValueError(f"open_loop_error: no sequence has {context} + {horizon} steps")
    z, a = z[keep], a[keep]
    state = memory.initial_state(int(keep.sum()))
    for t in range(context):
        state = memory.observe(state, z[:, t], a[:, t])
    pred, _ = memory.imagine(state, mean=True)
    out: dict[int, float] = {}
    for h in range(1, horizon + 1):
        if h in horizons:
            out[h] = float(((pred - z[:, context + h - 1]) ** 2).mean())
        state = memory.observe(state, pred, a[:, context + h - 1])
        pred, _ = memory.imagine(state, mean=True)
    return out
