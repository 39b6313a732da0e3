"""IterativeLoss and SMCBound (ELBO, sequence IWAE, FIVO) checked against a Kalman filter's exact log p(x_{1:T}).

Monte Carlo checks evaluate one sequence repeated over the batch (every copy an independent estimate) and
compare means with a tolerance of a few standard errors; every evaluation is seeded.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from kalman import (  # noqa: E402
    DX,
    brute_force_log_likelihood,
    deepgm_parts,
    kalman_log_likelihood,
    sample,
)

from deepgm.distributions import Deterministic, Normal  # noqa: E402
from deepgm.distributions.env import Env  # noqa: E402
from deepgm.errors import ObjectiveError, ParticleWeightError, ShapeError  # noqa: E402
from deepgm.losses import E, IterativeLoss, LogProb, Loss  # noqa: E402
from deepgm.losses.smc import SMCBound, systematic_resample  # noqa: E402

T = 6
PARTS = deepgm_parts()


def _log_weight(proposal: Normal = PARTS.proposal, transition: Normal = PARTS.transition) -> Loss:
    return E(proposal, LogProb(PARTS.emission) + LogProb(transition) - LogProb(proposal))


def _scan(**extra: Any) -> dict[str, Any]:
    options: dict[str, Any] = {"series_var": ["x"], "update_value": {"z": "z_prev"}, "initial": {"z_prev": PARTS.z0}}
    options.update(extra)
    return options


def _elbo(**extra: Any) -> IterativeLoss:
    return IterativeLoss(_log_weight(), **_scan(**extra))


def _smc(k: int, resample: str = "systematic", ess: float = 0.5, **extra: Any) -> SMCBound:
    return SMCBound(_log_weight(), k, resample=resample, ess_threshold=ess, **_scan(**extra))  # type: ignore[arg-type]


def _copies(x: torch.Tensor, n: int) -> torch.Tensor:
    """One sequence ``(T, 1, DX)`` repeated ``n`` times over the batch."""
    return x.expand(x.shape[0], n, x.shape[2]).contiguous()


def _mean_se(loss: Loss, x: torch.Tensor, seed: int, **inputs: Any) -> tuple[float, float]:
    torch.manual_seed(seed)
    with torch.no_grad():
        v = loss(x=x, **inputs)
    return float(v.mean()), float(v.std()) / math.sqrt(v.numel())


@pytest.fixture(scope="module")
def one_sequence() -> tuple[torch.Tensor, float]:
    x = sample(T, 1, generator=torch.Generator().manual_seed(3))
    return x, float(kalman_log_likelihood(x)[0])


# -- 1. the reference --------------------------------------------------------------------------------------
@pytest.mark.parametrize("length", [1, 2, 6])
def test_kalman_filter_equals_joint_gaussian_log_density(length: int) -> None:
    x = sample(length, 5, generator=torch.Generator().manual_seed(length))
    torch.testing.assert_close(kalman_log_likelihood(x), brute_force_log_likelihood(x), rtol=1e-10, atol=1e-10)


# -- 2. ELBO <= IWAE(k) <= log p, increasing in k -------------------------------------------------------------
def test_elbo_below_sequence_iwae_below_log_p_and_iwae_increases_with_k(one_sequence: tuple[torch.Tensor, float]
                                                                         ) -> None:
    x, log_p = one_sequence
    elbo, elbo_se = _mean_se(_elbo(), _copies(x, 2000), seed=1)
    iwae = {k: _mean_se(_smc(k, "never"), _copies(x, n), seed=k) for k, n in [(1, 2000), (10, 500), (100, 200)]}
    assert elbo <= iwae[1][0] + 4 * math.hypot(elbo_se, iwae[1][1])
    for k, (mean, se) in iwae.items():
        assert mean <= log_p + 4 * se, (k, mean, log_p)
    for small, large in [(1, 10), (10, 100)]:
        assert iwae[large][0] - 4 * math.hypot(iwae[large][1], iwae[small][1]) > iwae[small][0], iwae
    assert elbo < log_p - 1.0  # the proposal is imperfect enough for the bounds to be distinguishable


# -- 3. FIVO converges to log p; K = 1 without resampling is the ELBO ------------------------------------------
@pytest.mark.parametrize("ess", [0.5, 1.0])
def test_fivo_error_shrinks_with_particles_and_is_small_at_512(one_sequence: tuple[torch.Tensor, float],
                                                               ess: float) -> None:
    x, log_p = one_sequence
    runs = {k: _mean_se(_smc(k, ess=ess), _copies(x, n), seed=k) for k, n in [(4, 1000), (64, 2000), (512, 1000)]}
    err = {k: abs(mean - log_p) for k, (mean, _) in runs.items()}
    for small, large in [(4, 64), (64, 512)]:
        assert err[large] + 3 * math.hypot(runs[small][1], runs[large][1]) < err[small], runs
    assert err[512] < 0.05, runs
    for mean, se in runs.values():
        assert mean <= log_p + 4 * se


def test_smc_k1_without_resampling_has_the_elbo_mean(one_sequence: tuple[torch.Tensor, float]) -> None:
    x, _ = one_sequence
    elbo, elbo_se = _mean_se(_elbo(), _copies(x, 3000), seed=5)
    smc, smc_se = _mean_se(_smc(1, "never"), _copies(x, 3000), seed=6)
    assert abs(elbo - smc) < 4 * math.hypot(elbo_se, smc_se)


def test_smc_k1_without_resampling_equals_the_elbo_draw_for_draw(one_sequence: tuple[torch.Tensor, float]) -> None:
    x = _copies(one_sequence[0], 50)
    torch.manual_seed(7)
    elbo = _elbo()(x=x)
    torch.manual_seed(7)
    torch.testing.assert_close(_smc(1, "never")(x=x), elbo)


# -- 4. masks -----------------------------------------------------------------------------------------------
def _walk_step() -> Loss:
    p = Normal(var=["x"], cond_var=["h"], loc="h", scale=1.0)
    carry = Deterministic(var=["h_new"], cond_var=["x"], loc="x")
    return E(carry, LogProb(p))


LENGTHS = [5, 2, 3]


def _padded(x: torch.Tensor, lengths: list[int], fill: float | None = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` (T, B, D) with the steps after each length replaced (``fill``, or seeded garbage) and its mask."""
    mask = (torch.arange(x.shape[0]).unsqueeze(1) < torch.tensor(lengths).unsqueeze(0)).to(x.dtype)  # (T, B)
    junk = (torch.full_like(x, fill) if fill is not None
            else 1e3 * torch.randn(x.shape, generator=torch.Generator().manual_seed(9), dtype=x.dtype))
    return torch.where(mask.unsqueeze(-1) > 0, x, junk), mask


@pytest.mark.parametrize("make", [
    lambda: IterativeLoss(_walk_step(), series_var=["x"], update_value={"h_new": "h"}, mask_var="mask",
                          initial={"h": torch.zeros(1, dtype=torch.float64)}),
    lambda: SMCBound(_walk_step(), 8, series_var=["x"], update_value={"h_new": "h"}, mask_var="mask",
                     initial={"h": torch.zeros(1, dtype=torch.float64)}),
], ids=["iterative", "smc"])
def test_deterministic_step_padded_batch_equals_each_sequence_alone(make: Any) -> None:
    loss = make()
    x, mask = _padded(torch.randn(5, 3, 1, dtype=torch.float64), LENGTHS)
    batch = loss(x=x, mask=mask)
    for b, n in enumerate(LENGTHS):
        alone = loss(x=x[:n, b:b + 1], mask=torch.ones(n, 1, dtype=torch.float64))
        torch.testing.assert_close(batch[b:b + 1], alone, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", ["elbo", "fivo"])
def test_padded_batch_has_the_mean_of_each_sequence_alone(kind: str) -> None:
    loss = _elbo(mask_var="mask") if kind == "elbo" else _smc(16, mask_var="mask")
    n = 600 if kind == "elbo" else 200
    seqs = sample(5, 3, generator=torch.Generator().manual_seed(4))
    x, mask = _padded(seqs.repeat_interleave(n, dim=1), [m for m in LENGTHS for _ in range(n)])
    torch.manual_seed(0)
    with torch.no_grad():
        batch = loss(x=x, mask=mask).reshape(3, n)
    for b, length in enumerate(LENGTHS):
        alone, alone_se = _mean_se(loss, _copies(seqs[:length, b:b + 1], n), seed=b + 1,
                                   mask=torch.ones(length, n, dtype=torch.float64))
        mean, se = float(batch[b].mean()), float(batch[b].std()) / math.sqrt(n)
        assert abs(mean - alone) < 4 * math.hypot(se, alone_se), (b, mean, alone)
        if kind == "fivo":  # and a lower bound near the exact value (16 particles: a bias of tenths of a nat)
            exact = float(kalman_log_likelihood(seqs[:length, b:b + 1])[0])
            assert alone < exact + 4 * alone_se and exact - alone < 0.6


@pytest.mark.parametrize("kind", ["elbo", "fivo", "iwae"])
def test_padding_values_do_not_change_the_result(kind: str) -> None:
    loss = {"elbo": lambda: _elbo(mask_var="mask"), "fivo": lambda: _smc(8, mask_var="mask", ess=1.0),
            "iwae": lambda: _smc(8, "never", mask_var="mask")}[kind]()
    seqs = sample(5, 3, generator=torch.Generator().manual_seed(2))
    zeros, mask = _padded(seqs, LENGTHS)
    garbage, _ = _padded(seqs, LENGTHS, fill=None)
    assert not torch.equal(zeros, garbage)
    torch.manual_seed(3)
    clean = loss(x=zeros, mask=mask)
    torch.manual_seed(3)
    assert torch.equal(loss(x=garbage, mask=mask), clean)


@pytest.mark.parametrize("kind", ["elbo", "fivo"])
def test_nan_padding_does_not_change_the_result(kind: str) -> None:
    """Padding whose log-density is not finite (NaN here; also -inf, e.g. 0 outside a Gamma's support)."""
    loss = _elbo(mask_var="mask") if kind == "elbo" else _smc(8, mask_var="mask")
    seqs = sample(5, 3, generator=torch.Generator().manual_seed(2))
    zeros, mask = _padded(seqs, LENGTHS)
    nans, _ = _padded(seqs, LENGTHS, fill=math.nan)
    torch.manual_seed(3)
    clean = loss(x=zeros, mask=mask)
    torch.manual_seed(3)
    torch.testing.assert_close(loss(x=nans, mask=mask), clean, rtol=0.0, atol=0.0)


# -- 5. time-first and batch-first ------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["elbo", "fivo"])
def test_time_first_and_batch_first_give_identical_values(kind: str) -> None:
    def make(time_dim: int) -> Loss:
        return (_elbo(mask_var="mask", time_dim=time_dim) if kind == "elbo"
                else _smc(8, ess=1.0, mask_var="mask", time_dim=time_dim))

    x, mask = _padded(sample(5, 3, generator=torch.Generator().manual_seed(6)), LENGTHS)
    torch.manual_seed(11)
    first = make(0)(x=x, mask=mask)
    torch.manual_seed(11)
    second = make(1)(x=x.transpose(0, 1).contiguous(), mask=mask.T.contiguous())
    torch.testing.assert_close(second, first, rtol=1e-12, atol=1e-12)


# -- 6. update_value with two targets; a learnable initial state ----------------------------------------------------
def test_update_value_with_two_targets_carries_the_value_into_both() -> None:
    p_h = Normal(var=["x"], cond_var=["h"], loc="h", scale=1.0)
    p_g = Normal(var=["x"], cond_var=["g"], loc="g", scale=1.0)
    carry = Deterministic(var=["h_new"], cond_var=["x"], loc="x")
    loss = IterativeLoss(E(carry, LogProb(p_h) + LogProb(p_g)), series_var=["x"],
                         update_value={"h_new": ("h", "g")}, initial={"h": torch.zeros(1), "g": torch.full((1,), 5.0)})
    x = torch.tensor([1.0, 2.0, 4.0]).reshape(3, 1, 1)
    std = torch.distributions.Normal(0.0, 1.0)
    expected = std.log_prob(torch.tensor(1.0)) + std.log_prob(torch.tensor(-4.0)) + 2 * (
        std.log_prob(torch.tensor(1.0)) + std.log_prob(torch.tensor(2.0)))
    torch.testing.assert_close(loss(x=x), expected.reshape(1))


@pytest.mark.parametrize("kind", ["elbo", "fivo"])
def test_two_targets_with_equal_initial_values_equal_one_target(kind: str) -> None:
    q2 = PARTS.proposal.replace_var(z_prev="zq_prev")
    two = {"update_value": {"z": ("z_prev", "zq_prev")}, "initial": {"z_prev": PARTS.z0, "zq_prev": PARTS.z0}}
    step = E(q2, LogProb(PARTS.emission) + LogProb(PARTS.transition) - LogProb(q2))
    if kind == "elbo":
        one_loss: Loss = _elbo()
        two_loss: Loss = IterativeLoss(step, **_scan(**two))
    else:
        one_loss, two_loss = _smc(8, ess=1.0), SMCBound(step, 8, ess_threshold=1.0, **_scan(**two))
    x = sample(4, 3, generator=torch.Generator().manual_seed(8))
    torch.manual_seed(2)
    one = one_loss(x=x)
    torch.manual_seed(2)
    torch.testing.assert_close(two_loss(x=x), one, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", ["elbo", "fivo", "iwae"])
def test_learnable_initial_state_receives_a_gradient(kind: str) -> None:
    z0 = nn.Parameter(PARTS.z0.clone())
    loss = {"elbo": lambda: _elbo(initial={"z_prev": z0}), "fivo": lambda: _smc(8, ess=1.0, initial={"z_prev": z0}),
            "iwae": lambda: _smc(8, "never", initial={"z_prev": z0})}[kind]()
    assert any(p is z0 for m in loss.walk() for mod in m.own_modules() for p in mod.parameters())
    loss(x=sample(4, 3, generator=torch.Generator().manual_seed(1))).sum().backward()
    assert z0.grad is not None and bool(torch.isfinite(z0.grad).all()) and float(z0.grad.abs().sum()) > 0


# -- 7. no live particle -------------------------------------------------------------------------------------------
class _DeadAt(Loss):
    """Log-weight 0 everywhere except ``-inf`` for particles ``particles`` of sequence ``seq`` at ``step``."""

    def __init__(self, step: int, seq: int, batch: int, particles: slice = slice(None)) -> None:
        self.step, self.seq, self.batch, self.particles = step, seq, batch, particles

    def _eval(self, env: Env) -> torch.Tensor:
        x = env.get("x", self)
        w = torch.zeros(x.shape[0], dtype=x.dtype).reshape(-1, self.batch)  # (K, B), particle-major rows
        if int(env.get("t", self)) == self.step:
            w[self.particles, self.seq] = -math.inf
        return w.reshape(-1)

    def own_inputs(self) -> tuple[str, ...]:
        return ("x", "t")

    def _render(self, latex: bool) -> str:
        return "dead"


@pytest.mark.parametrize("resample", ["systematic", "never"])
def test_no_live_particle_raises_naming_step_and_sequence(resample: str) -> None:
    smc = SMCBound(_DeadAt(step=2, seq=1, batch=3), 4, series_var=["x"], timestep_var="t",
                   resample=resample)  # type: ignore[arg-type]
    with pytest.raises(ParticleWeightError, match="at step 2 every particle of sequence 1"):
        smc(x=torch.zeros(5, 3, 1))


def test_one_dead_particle_out_of_four_does_not_raise() -> None:
    smc = SMCBound(_DeadAt(step=2, seq=1, batch=3, particles=slice(0, 1)), 4, series_var=["x"], timestep_var="t")
    value = smc(x=torch.zeros(5, 3, 1))
    torch.testing.assert_close(value, torch.tensor([0.0, math.log(0.75), 0.0]))


# -- 8. systematic resampling ------------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 5, 64])
def test_systematic_resample_counts_are_within_one_of_k_times_weight(k: int) -> None:
    g = torch.Generator().manual_seed(k)
    log_w = 3 * torch.randn(k, 200, generator=g, dtype=torch.float64)
    ancestors = systematic_resample(log_w, generator=g)
    assert ancestors.shape == (k, 200) and not ancestors.is_floating_point()
    assert int(ancestors.min()) >= 0 and int(ancestors.max()) < k
    counts = torch.nn.functional.one_hot(ancestors, k).sum(0).T.to(torch.float64)  # (K, B)
    expected = k * torch.softmax(log_w, 0)
    assert bool(((counts - expected).abs() < 1 + 1e-9).all())
    assert bool((counts.sum(0) == k).all())


# -- 9. bad options ------------------------------------------------------------------------------------------------
def test_time_dim_2_is_refused_by_name() -> None:
    with pytest.raises(ObjectiveError, match="time_dim"):
        _elbo(time_dim=2)
    with pytest.raises(ObjectiveError, match="time_dim"):
        _smc(4, time_dim=2)


@pytest.mark.parametrize("make", [lambda: _elbo(mask_var="mask"), lambda: _smc(4, mask_var="mask")],
                         ids=["iterative", "smc"])
def test_mask_not_2d_or_of_the_wrong_length_is_refused_by_name(make: Any) -> None:
    x = sample(4, 3, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ShapeError, match="mask 'mask' must be a 2-D tensor"):
        make()(x=x, mask=torch.ones(4))
    with pytest.raises(ShapeError, match="'x' has 4 steps but the mask 'mask' has 5"):
        make()(x=x, mask=torch.ones(5, 3))


@pytest.mark.parametrize("make", [lambda: _elbo(mask_var="mask"), lambda: _smc(4, mask_var="mask")],
                         ids=["iterative", "smc"])
def test_mask_with_the_wrong_batch_size_is_refused_by_name(make: Any) -> None:
    x = sample(4, 3, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ShapeError, match="mask 'mask'"):
        make()(x=x, mask=torch.ones(4, 2))  # 2 sequences in the mask, 3 in x


def test_series_of_different_lengths_are_refused() -> None:
    loss = IterativeLoss(LogProb(Normal(var=["x"], cond_var=["y"], loc="y", scale=1.0)), series_var=["x", "y"])
    with pytest.raises(ObjectiveError, match="differ in length"):
        loss(x=torch.zeros(4, 2, DX), y=torch.zeros(3, 2, DX))


@pytest.mark.parametrize(("options", "name"), [({"particles": 0}, "particles"),
                                               ({"ess_threshold": 1.5}, "ess_threshold"),
                                               ({"resample": "bogus"}, "resample")])
def test_bad_smc_options_are_refused_by_name(options: dict[str, Any], name: str) -> None:
    kwargs: dict[str, Any] = {"particles": 4, **options}
    with pytest.raises(ObjectiveError, match=name):
        SMCBound(_log_weight(), **kwargs, **_scan())


def test_a_gap_in_the_mask_holds_the_state_over_it() -> None:
    # x_t ~ N(h, 1) with h the previous real x: a masked step in the middle neither scores nor moves the state
    from deepgm.distributions import Deterministic, Normal
    from deepgm.losses import E, IterativeLoss, LogProb

    p = Normal(var=["x"], cond_var=["h"], loc="h", scale=1.0)
    carry = Deterministic(var=["h_new"], cond_var=["x"], loc="x")
    walk = IterativeLoss(E(carry, LogProb(p)), series_var=["x"], update_value={"h_new": "h"}, mask_var="mask",
                         time_dim=1, initial={"h": torch.zeros(1)})
    x = torch.tensor([[0.0, 5.0, 3.0], [0.0, 5.0, 3.0]]).unsqueeze(-1)
    got = walk(x=x, mask=torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 1.0]]))
    normal = torch.distributions.Normal(0.0, 1.0)
    gap = normal.log_prob(torch.tensor(0.0)) + normal.log_prob(torch.tensor(3.0))  # h stays 0 over the gap
    full = normal.log_prob(torch.tensor(0.0)) + normal.log_prob(torch.tensor(5.0)) + normal.log_prob(torch.tensor(-2.0))
    torch.testing.assert_close(got, torch.stack([gap, full]))


def test_an_unconditioned_distribution_is_drawn_afresh_at_every_step() -> None:
    from deepgm.distributions import Normal
    from deepgm.losses import E, IterativeLoss, LogProb

    noise = Normal(var=["eps"], loc=0.0, scale=1.0, features_shape=[1])
    seen: list[torch.Tensor] = []

    class _Record(LogProb):
        def _eval(self, env):  # type: ignore[no-untyped-def]
            seen.append(env.get("eps", "test").clone())
            return super()._eval(env)

    step = E(noise, _Record(noise) - _Record(noise))  # within a step: one draw, shared
    IterativeLoss(step, max_iter=4)()
    assert len(seen) == 8 and all(torch.equal(seen[2 * i], seen[2 * i + 1]) for i in range(4))
    assert len({float(v) for v in seen[::2]}) == 4  # across steps: four different draws
