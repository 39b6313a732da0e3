"""Langevin and MALA reproduce known targets' moments; the replay buffer keeps and renews chains as told;
bad options and non-finite energies raise deepgm's errors naming what was wrong."""

from __future__ import annotations

import math

import pytest
import torch

from deepgm.distributions import MALA, Langevin, ReplayBuffer
from deepgm.distributions.mcmc import energy_and_grad
from deepgm.errors import ConfigError, NonFiniteLossError, ShapeError

MEAN = torch.tensor([1.0, -2.0])
COV = torch.tensor([[1.0, 0.6], [0.6, 0.5]])
PREC = torch.linalg.inv(COV)


def gaussian_energy(x: torch.Tensor) -> torch.Tensor:
    d = x - MEAN
    return 0.5 * ((d @ PREC) * d).sum(-1)


def _moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x.mean(0), torch.cov(x.T)


def test_langevin_with_a_small_step_reproduces_a_correlated_gaussian() -> None:
    torch.manual_seed(0)
    x = Langevin(step_size=0.01, steps=1200).run(gaussian_energy, torch.zeros(4000, 2))
    mean, cov = _moments(x)
    # from 0 the slowest direction (precision eigenvalue 0.72) contracts by exp(-ε·0.72·1200/2) ≈ 0.013; the
    # O(ε) bias and the sampling error are well below the tolerances
    assert torch.allclose(mean, MEAN, atol=0.06), mean
    assert torch.allclose(cov, COV, atol=0.07), cov


def test_mala_reproduces_a_gaussian_and_reports_a_high_acceptance_at_a_small_step() -> None:
    torch.manual_seed(1)
    sampler = MALA(step_size=0.05, steps=400)
    x = sampler.run(gaussian_energy, torch.zeros(3000, 2))
    mean, cov = _moments(x)
    assert torch.allclose(mean, MEAN, atol=0.06) and torch.allclose(cov, COV, atol=0.07), (mean, cov)
    assert 0.9 < sampler.last_acceptance <= 1.0


def test_mala_acceptance_falls_as_the_step_grows_and_adaptation_reaches_its_target() -> None:
    torch.manual_seed(2)
    small, large = MALA(step_size=0.01, steps=50), MALA(step_size=5.0, steps=50)
    small.run(gaussian_energy, torch.randn(500, 2))
    large.run(gaussian_energy, torch.randn(500, 2))
    assert large.last_acceptance < 0.3 < 0.95 < small.last_acceptance
    tuned = MALA(step_size=5.0, steps=200, adapt=300)
    tuned.run(gaussian_energy, torch.randn(500, 2))
    assert abs(tuned.last_acceptance - 0.574) < 0.1 and tuned.last_step_size < 5.0


def test_mala_leaves_a_two_mode_mixture_invariant() -> None:
    """Started at exact draws of a well-separated 2-D mixture, MALA's chains keep its moments."""
    torch.manual_seed(3)
    centres, std, n = torch.tensor([[-2.0, 0.0], [2.0, 0.0]]), 0.5, 4000

    def energy(x: torch.Tensor) -> torch.Tensor:
        d2 = ((x[:, None, :] - centres) ** 2).sum(-1) / (2 * std ** 2)
        return -torch.logsumexp(-d2, dim=1)

    start = centres[torch.randint(0, 2, (n,))] + std * torch.randn(n, 2)
    sampler = MALA(step_size=0.1, steps=200)
    x = sampler.run(energy, start)
    mean, cov = _moments(x)
    true_cov = torch.diag(torch.tensor([4.0 + std ** 2, std ** 2]))  # between-mode spread plus within
    assert torch.allclose(mean, torch.zeros(2), atol=0.12), mean
    assert torch.allclose(cov, true_cov, atol=0.25), cov
    assert 0.5 < sampler.last_acceptance < 1.0


def test_langevin_keeps_its_states_inside_the_bounds_and_clips_gradients() -> None:
    torch.manual_seed(4)
    x = Langevin(step_size=1.0, steps=5, bounds=(0.0, 1.0)).run(lambda x: -10 * x.sum(-1), torch.rand(100, 3))
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    # one step with no noise and gradient entries clipped to 0.5: each coordinate moves by exactly ε/2 · 0.5
    y = Langevin(step_size=2.0, steps=1, noise_scale=0.0, clip_grad=0.5).run(lambda x: 100 * x.sum(-1),
                                                                                torch.zeros(4, 2))
    assert torch.allclose(y, torch.full((4, 2), -0.5))


@pytest.mark.parametrize(("make", "option"), [
    (lambda: Langevin(step_size=-1.0), "step_size"),
    (lambda: Langevin(step_size=math.nan), "step_size"),
    (lambda: Langevin(steps=0), "steps"),
    (lambda: Langevin(noise_scale=-0.1), "noise_scale"),
    (lambda: Langevin(bounds=(1.0, 0.0)), "bounds"),
    (lambda: MALA(step_size=0.0), "step_size"),
    (lambda: MALA(target_acceptance=1.5), "target_acceptance"),
    (lambda: MALA(bounds=(0.0, 1.0)), "bounds"),
    (lambda: ReplayBuffer(0, (2,)), "capacity"),
    (lambda: ReplayBuffer(10, (2,), reinit_prob=1.5), "reinit_prob"),
])
def test_bad_sampler_options_name_the_option(make, option: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as err:
        make()
    assert err.value.option == option and option in str(err.value)


@pytest.mark.parametrize("sampler", [Langevin(step_size=0.1, steps=3), MALA(step_size=0.1, steps=3)],
                         ids=["langevin", "mala"])
def test_a_nan_energy_stops_the_chain_with_a_named_error(sampler: Langevin | MALA) -> None:
    with pytest.raises(NonFiniteLossError, match=f"{type(sampler).__name__}: the energy"):
        sampler.run(lambda x: (x ** 2).sum(-1) * math.nan, torch.zeros(5, 2))


def test_an_energy_of_the_wrong_shape_is_a_shape_error() -> None:
    with pytest.raises(ShapeError, match=r"one value per row, shape \(5,\)"):
        energy_and_grad(lambda x: x ** 2, torch.zeros(5, 2), "Langevin")


def test_replay_buffer_reuses_stored_states_and_renews_a_share_of_them() -> None:
    torch.manual_seed(5)
    keep = ReplayBuffer(50, (3,), reinit_prob=0.0)
    keep.draw(10, lambda n: torch.zeros(n, 3))
    keep.states.fill_(7.0)
    x, _ = keep.draw(20, lambda n: torch.zeros(n, 3))
    assert bool((x == 7.0).all())  # nothing renewed at reinit_prob 0
    renew = ReplayBuffer(50, (3,), reinit_prob=0.3)
    renew.draw(1, lambda n: torch.zeros(n, 3))
    renew.states.fill_(7.0)
    x, slots = renew.draw(4000, lambda n: torch.zeros(n, 3))
    share = float((x[:, 0] == 0).float().mean())
    assert abs(share - 0.3) < 0.03  # fresh starts with probability reinit_prob
    renew.update(slots[:5], torch.full((5, 3), -1.0))
    assert bool((renew.states[slots[:5]] == -1.0).all())
    assert set(renew.state_dict()) == {"states", "filled"}  # saved with a model's weights
