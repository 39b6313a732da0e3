"""The memory protocol's shared pieces: latent windows, the batched dream, the open-loop error."""

from __future__ import annotations

import math

import pytest
import torch

from deepgm.models.world import (
    LatentDynamics,
    State,
    draw_latents,
    dream,
    latent_sequences,
    latent_windows,
    open_loop_error,
)


class LinearMemory:
    """z' = A z + B a exactly, a constant probability of the end: a memory whose answers are known."""

    def __init__(self, z_dim: int = 2, p_done: float = 0.1) -> None:
        self.z_dim, self.action_dim, self.feature_dim = z_dim, 1, 1
        self.A = 0.9 * torch.eye(z_dim)
        self.B = torch.ones(1, z_dim)
        self.p_done = p_done

    def initial_state(self, n: int) -> State:
        return (torch.zeros(n, self.z_dim), torch.zeros(n, 1))

    def observe(self, state: State, z: torch.Tensor, a: torch.Tensor) -> State:
        return (z @ self.A.T + a @ self.B, state[1] + 1)

    def features(self, state: State) -> torch.Tensor:
        return state[1]

    def imagine(self, state: State, temperature: float = 1.0, mean: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        return state[0], torch.full((state[0].shape[0],), self.p_done)


def test_a_linear_memory_is_latent_dynamics() -> None:
    assert isinstance(LinearMemory(), LatentDynamics)


def test_windows_tile_every_episode() -> None:
    assert latent_windows([5, 3, 8], 4) == [(0, 0, 4), (0, 4, 1), (1, 0, 3), (2, 0, 4), (2, 4, 4)]


def test_latent_sequences_place_each_transition_and_mark_deaths_and_truncations() -> None:
    lengths = [5, 3]
    loc = torch.arange(8.0)[:, None].repeat(1, 2)
    scale = loc / 10 + 1
    a = -torch.arange(8.0)[:, None]
    w = latent_sequences(loc, scale, a, lengths, torch.tensor([True, False]), seq_len=4)
    assert w["z_loc"][0, :, 0].tolist() == [0, 1, 2, 3] and w["z_next_loc"][0, :, 0].tolist() == [1, 2, 3, 4]
    assert w["z_loc"][1, 0, 0] == 4 and w["z_next_loc"][1, 0, 0] == 4  # the last frame: no successor
    assert w["done"][1].tolist() == [1, 0, 0, 0]  # episode 0 ended by death after its last action
    assert w["mask"][2].tolist() == [1, 1, 0, 0]  # episode 1 was truncated: its last step has no target
    assert w["a"][2, :3, 0].tolist() == [-5, -6, -7]
    torch.testing.assert_close(w["z_next_scale"][0, :, 0], torch.tensor([1.1, 1.2, 1.3, 1.4]))
    with pytest.raises(ValueError, match="lengths sum to 9"):
        latent_sequences(loc, scale, a, [6, 3], torch.tensor([True, False]), seq_len=4)


def test_draw_latents_draws_from_the_posterior_independently_per_frame() -> None:
    n = 20_000
    w = {"z_loc": torch.full((n, 1, 1), 3.0), "z_scale": torch.full((n, 1, 1), 0.5),
         "z_next_loc": torch.zeros(n, 1, 1), "z_next_scale": torch.ones(n, 1, 1), "a": torch.zeros(n, 1, 1),
         "done": torch.zeros(n, 1), "mask": torch.ones(n, 1)}
    b = draw_latents(w, generator=torch.Generator().manual_seed(0))
    assert abs(float(b["z"].mean()) - 3.0) < 0.02 and abs(float(b["z"].std()) - 0.5) < 0.01
    assert abs(float(torch.corrcoef(torch.stack([b["z"].flatten(), b["z_next"].flatten()]))[0, 1])) < 0.03


def test_dream_survival_is_geometric_under_a_constant_death_probability() -> None:
    mem = LinearMemory(p_done=0.1)
    steps, record = dream(mem, lambda z, h: torch.zeros(len(z), 1), torch.zeros(20_000, 2), max_steps=1000,
                          generator=torch.Generator().manual_seed(0), record=3)
    # survival T ~ Geometric(p) on {1, 2, ...}: mean 1/p
    assert float(steps.float().mean()) == pytest.approx(1 / 0.1, rel=0.03)
    assert record.shape[1:] == (3, 2)
    steps, _ = dream(mem, lambda z, h: torch.zeros(len(z), 1), torch.zeros(5, 2), max_steps=50, death="threshold")
    assert steps.tolist() == [50] * 5  # p = 0.1 never crosses 1/2: every dream lasts to the limit
    with pytest.raises(ValueError, match="death must be"):
        dream(mem, lambda z, h: z[:, :1], torch.zeros(2, 2), max_steps=3, death="never")


def test_dream_feeds_the_policy_the_memory_state_and_its_own_predictions() -> None:
    mem = LinearMemory(p_done=0.0)
    seen: list[torch.Tensor] = []

    def policy(z: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        seen.append(h.clone())
        return torch.ones(len(z), 1)

    _, record = dream(mem, policy, torch.zeros(1, 2), max_steps=3, record=1)
    assert [float(h) for h in seen] == [0.0, 1.0, 2.0]
    z1 = 0.9 * 0 + 1
    assert record[:, 0, 0].tolist() == pytest.approx([0.0, z1, 0.9 * z1 + 1])


def test_open_loop_error_is_zero_for_the_true_dynamics_and_grows_for_a_wrong_one() -> None:
    torch.manual_seed(0)
    mem = LinearMemory()
    t, n = 50, 8
    a = torch.randn(n, t, 1)
    z = torch.zeros(n, t, 2)
    z[:, 0] = torch.randn(n, 2)
    for i in range(1, t):
        z[:, i] = z[:, i - 1] @ mem.A.T + a[:, i - 1] @ mem.B
    batch = {"z": z, "a": a, "mask": torch.ones(n, t)}
    assert max(open_loop_error(mem, batch, 5, [10, 30]).values()) < 1e-10
    wrong = LinearMemory()
    wrong.A = 0.5 * torch.eye(2)
    err = open_loop_error(wrong, batch, 5, [1, 10])
    assert 0 < err[1] < err[10] and math.isfinite(err[10])
    with pytest.raises(ValueError, match="no sequence has 5 \\+ 60 steps"):
        open_loop_error(mem, batch, 5, [60])
