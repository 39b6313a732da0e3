"""The RSSM memory (deepgm.zoo.rssm): its objective is the documented negative ELBO (checked against a loop
written here from the model's own networks, with and without latent overshooting); on latents of a known
linear-Gaussian system with termination it trains to a held-out next-latent ELBO well above its value at
initialisation and to 10-step open-loop predictions better than predicting zero; it is a LatentDynamics whose
methods give the documented shapes, dreams, and draws with the documented temperature; padding is ignored;
bad options and batches are refused by name."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from deepgm.errors import ConfigError, ShapeError
from deepgm.models.world import LatentDynamics, draw_latents, dream, latent_sequences, open_loop_error
from deepgm.zoo.rssm import RSSM, RSSMConfig, build_rssm

Z, A = 4, 1
SMALL = {"deterministic": 32, "stochastic": 8, "hidden": 32}


def _system(episodes: int, seed: int, max_len: int = 40, threshold: float = 2.5
            ) -> tuple[torch.Tensor, torch.Tensor, list[int], torch.Tensor]:
    """Latents of ``z' = A z + B a + 0.1 ε`` (a damped rotation in the first two coordinates, decay in the
    others; actions ±1), concatenated over episodes that end by death when ``z[0]`` crosses ``threshold``
    (else cut at ``max_len``): ``(z (N, 4), a (N, 1), lengths, terminated)``."""
    g = torch.Generator().manual_seed(seed)
    mat = 0.9 * torch.eye(Z)
    c, s = 0.95 * math.cos(0.3), 0.95 * math.sin(0.3)
    mat[:2, :2] = torch.tensor([[c, -s], [s, c]])
    push = torch.tensor([[0.0], [0.5], [0.3], [-0.4]])
    zs, acts, lengths, ended = [], [], [], []
    for _ in range(episodes):
        z, n, died = 0.3 * torch.randn(Z, generator=g), 0, False
        while n < max_len and not died:
            a = 2 * torch.randint(0, 2, (1,), generator=g).float() - 1
            zs.append(z)
            acts.append(a)
            z = mat @ z + push @ a + 0.1 * torch.randn(Z, generator=g)
            n, died = n + 1, bool(z[0] > threshold)
        lengths.append(n)
        ended.append(died)
    return torch.stack(zs), torch.stack(acts), lengths, torch.tensor(ended)


def _windows(episodes: int, seed: int, seq_len: int) -> dict[str, torch.Tensor]:
    z, a, lengths, ended = _system(episodes, seed)
    return latent_sequences(z, torch.full_like(z, 0.02), a, lengths, ended, seq_len)


@pytest.fixture(scope="module")
def train_windows() -> dict[str, torch.Tensor]:
    return _windows(48, seed=0, seq_len=20)


@pytest.fixture(scope="module")
def test_batch() -> dict[str, torch.Tensor]:
    windows = _windows(32, seed=1, seq_len=40)
    assert 0 < float(windows["done"].sum()) < len(windows["done"])  # some episodes end by death, not all
    return draw_latents(windows, torch.Generator().manual_seed(2))


def _model(**options: object) -> RSSM:
    torch.manual_seed(0)
    return build_rssm(RSSMConfig(**{**SMALL, **options}), Z, A)  # type: ignore[arg-type]


def _train(model: RSSM, windows: dict[str, torch.Tensor], epochs: int) -> None:
    g = torch.Generator().manual_seed(3)
    for _ in range(epochs):
        order = torch.randperm(len(windows["mask"]), generator=g)
        for i in range(0, len(order), 16):
            rows = order[i:i + 16]
            loss = model.train_step(draw_latents({k: v[rows] for k, v in windows.items()}, g))
            assert math.isfinite(loss)  # type: ignore[arg-type]
    assert model.skipped_steps == 0


def _scores(model: RSSM, batch: dict[str, torch.Tensor]) -> dict[str, float]:
    torch.manual_seed(4)
    return model.evaluate(batch, k=2)


# -- the objective ----------------------------------------------------------------------------------------
def _small_batch() -> dict[str, torch.Tensor]:
    """Three padded sequences: full, ended by death at step 3 (of 5), cut (truncated) after 2 steps."""
    g = torch.Generator().manual_seed(5)
    mask = torch.tensor([[1.0] * 6, [1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0]])
    done = torch.zeros(3, 6)
    done[1, 3] = 1.0
    return {"z": torch.randn(3, 6, Z, generator=g) * mask[..., None], "a": torch.randn(3, 6, A, generator=g),
            "z_next": torch.randn(3, 6, Z, generator=g) * mask[..., None], "done": done, "mask": mask}


def _normal(params: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    return params["loc"], params["scale"]


def _log_normal(x: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return torch.distributions.Normal(loc, scale).log_prob(x).sum(-1)


def _kl(q: tuple[torch.Tensor, torch.Tensor], p: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    return torch.distributions.kl_divergence(torch.distributions.Normal(*q), torch.distributions.Normal(*p)).sum(-1)


def _reference_loss(model: RSSM, batch: dict[str, torch.Tensor], seed: int) -> tuple[float, float]:
    """The module docstring's L (and its overshooting part), by a plain loop over the model's networks,
    drawing the same noise in the same order as the model (the filter's first, then each distance's)."""
    cfg = model.config
    torch.manual_seed(seed)
    z, a, zn, done, mask = (batch[k] for k in ("z", "a", "z_next", "done", "mask"))
    b, steps = mask.shape
    o = torch.cat([z[:, :1], zn], 1)
    noise = torch.randn(b, steps + 1, cfg.stochastic)
    h, hs, qs, ss = model.rnn.h0.expand(b, -1), [], [], []
    for t in range(steps + 1):
        q = _normal(model.posterior(h, o[:, t]))
        s = q[0] + q[1] * noise[:, t]
        hs.append(h)
        qs.append(q)
        ss.append(s)
        if t < steps:
            h = model.transition(h, s, a[:, t])
    n = float(mask.sum())
    w = [mask[:, 0]] + [mask[:, t] * (1 - done[:, t]) for t in range(steps)]
    total = torch.zeros(())
    for t in range(steps + 1):
        kl = _kl(qs[t], _normal(model.prior_net(hs[t])))
        lp = _log_normal(o[:, t], *_normal(model.obs_net(hs[t], ss[t])))
        total = total + (w[t] * (lp - kl.clamp(min=cfg.free_nats))).sum()
    for t in range(steps):
        logits = model.done_net.head(hs[t + 1])["logits"]  # the head as trained, before calibration
        weight = mask[:, t] * (1 + (cfg.done_weight - 1) * done[:, t])
        total = total - (weight * F.binary_cross_entropy_with_logits(logits, done[:, t], reduction="none")).sum()
    overshoot = torch.zeros(())
    g = torch.stack(hs, 1)  # g^0 = h; g^k_t after k open-loop steps from the filtered state at t - k - 1
    for k in range(1, cfg.overshooting + 1):
        prior = _normal(model.prior_net(g))
        drawn = prior[0] + prior[1] * torch.randn_like(prior[0])
        g = torch.cat([g[:, :1], model.transition(g[:, :-1], drawn[:, :-1], a)], 1)
        for t in range(k + 1, steps + 1):
            kl = _kl(tuple(x.detach() for x in qs[t]), _normal(model.prior_net(g[:, t])))  # type: ignore[arg-type]
            weight = cfg.overshooting_weight / cfg.overshooting * w[t]
            overshoot = overshoot + (weight * kl.clamp(min=cfg.free_nats)).sum()
    return float(-(total - overshoot).detach() / n), float(overshoot.detach() / n)


@pytest.mark.parametrize("overshooting", [0, 2])
def test_objective_is_the_documented_negative_elbo_with_free_nats(overshooting: int) -> None:
    model = _model(overshooting=overshooting, free_nats=0.5, done_weight=3.0)
    batch = _small_batch()
    torch.manual_seed(7)
    value = model.eval_step(batch)
    expected, overshoot = _reference_loss(model, batch, seed=7)
    assert value == pytest.approx(expected, rel=1e-5, abs=1e-5)
    assert (overshoot > 0) == (overshooting > 0)


def test_overshooting_adds_its_terms_and_still_trains(train_windows: dict[str, torch.Tensor],
                                                      test_batch: dict[str, torch.Tensor]) -> None:
    options = {"lr": 3e-3, "free_nats": 0.0}
    plain, over = _model(**options), _model(**options, overshooting=3, overshooting_weight=0.5)
    assert "sg[q](s|h,o)||p(s|g)" in str(over.loss) and "p(s|g)" not in str(plain.loss)
    batch = _small_batch()
    torch.manual_seed(8)
    without = plain.eval_step(batch)
    torch.manual_seed(8)
    with_terms = over.eval_step(batch)  # same weights, same filter draws: the difference is the added terms
    assert with_terms - without == pytest.approx(_reference_loss(over, batch, seed=8)[1], rel=1e-4)
    before = _scores(over, test_batch)["next_latent_elbo_per_dim"]
    _train(over, train_windows, epochs=25)
    after = _scores(over, test_batch)["next_latent_elbo_per_dim"]
    assert after > before + 2.0, (before, after)


# -- training on a known system -----------------------------------------------------------------------------
def test_training_raises_the_held_out_elbo_and_open_loop_predictions_beat_zero(
        train_windows: dict[str, torch.Tensor], test_batch: dict[str, torch.Tensor]) -> None:
    model = _model(lr=3e-3, free_nats=0.0)
    before = _scores(model, test_batch)
    _train(model, train_windows, epochs=25)
    after = _scores(model, test_batch)
    # the noise's own log-density is 0.88 nats per dimension: the best a model of this system can reach
    assert after["next_latent_elbo_per_dim"] > before["next_latent_elbo_per_dim"] + 2.0, (before, after)
    assert after["next_latent_elbo_per_dim"] < 0.9
    assert after["done_cross_entropy"] < 0.5 * before["done_cross_entropy"], (before, after)
    torch.manual_seed(9)
    error = open_loop_error(model, test_batch, context=5, horizons=[1, 10])
    keep = test_batch["mask"].sum(1) >= 15
    predict_zero = float((test_batch["z"][keep][:, 14] ** 2).mean())
    assert error[10] < 0.5 * predict_zero, (error, predict_zero)
    assert error[1] < error[10]


# -- the LatentDynamics protocol ------------------------------------------------------------------------------
def test_protocol_methods_give_the_documented_shapes() -> None:
    model = _model()
    assert isinstance(model, LatentDynamics)
    assert (model.z_dim, model.action_dim, model.feature_dim) == (Z, A, SMALL["deterministic"])
    state = model.initial_state(5)
    assert len(state) == 1 and state[0].shape == (5, SMALL["deterministic"])
    assert bool(torch.equal(model.features(state), state[0]))
    state = model.observe(state, torch.randn(5, Z), torch.randn(5, A))
    assert model.features(state).shape == (5, model.feature_dim)
    z, p_done = model.imagine(state, temperature=1.0)
    assert z.shape == (5, Z) and p_done.shape == (5,) and bool(((p_done > 0) & (p_done < 1)).all())
    weighted = _model(done_weight=4.0)
    head = weighted.done_net.head(state[0])["logits"]
    p_end = weighted.imagine(state)[1]
    assert bool(torch.allclose(p_end / (1 - p_end), torch.exp(head) / 4))  # odds of a head trained 4:1, undone
    with pytest.raises(ShapeError, match="observe"):
        model.observe(state, torch.randn(5, Z + 1), torch.randn(5, A))
    with pytest.raises(ValueError, match="temperature"):
        model.imagine(state, temperature=-1.0)


def test_dream_runs_inside_the_rssm() -> None:
    model = _model()
    torch.manual_seed(10)
    steps, frames = dream(model, lambda z, h: torch.tanh(h[:, :A]), torch.randn(6, Z), max_steps=12, record=2)
    assert steps.shape == (6,) and bool(((steps >= 1) & (steps <= 12)).all())
    assert frames.shape == (int(steps.max()), 2, Z)
    steps, _ = dream(model, lambda z, h: torch.zeros(len(z), A), torch.randn(3, Z), max_steps=7, death="threshold")
    assert steps.shape == (3,)


def test_temperature_scales_the_variance_of_imagined_latents() -> None:
    model = _model()
    state = model.observe(model.initial_state(1), torch.randn(1, Z), torch.randn(1, A))
    many = (state[0].expand(4000, -1),)
    torch.manual_seed(11)
    with torch.no_grad():
        cold, _ = model.imagine(many, temperature=0.0)
        cold_mean, _ = model.imagine(many, temperature=0.0, mean=True)
        warm = [model.imagine(many, temperature=t)[0].var(0).sum() for t in (0.25, 1.0)]
        warm_mean = model.imagine(many, temperature=1.0, mean=True)[0].var(0).sum()
    assert float(cold.var(0).sum()) == 0.0 and bool(torch.equal(cold, cold_mean))  # τ = 0: the means' path
    assert 0 < float(warm[0]) < float(warm[1])  # variances grow with τ
    assert 0 < float(warm_mean) < float(warm[1])  # mean=True: only the state s' is drawn


# -- masks, checkpoints, bad input ------------------------------------------------------------------------------
def test_padding_and_the_ends_repeated_latent_change_nothing() -> None:
    model = _model()
    batch = _small_batch()
    noisy = {k: v.clone() for k, v in batch.items()}
    pad = noisy["mask"] == 0
    noisy["z"][pad] = 50.0
    noisy["z_next"][pad] = -50.0
    noisy["a"][pad] = 9.0
    noisy["z_next"][1, 3] = 7.0  # the death step's next latent is no observation
    torch.manual_seed(12)
    first = model.eval_step(batch)
    torch.manual_seed(12)
    assert model.eval_step(noisy) == pytest.approx(first, rel=1e-6)


def test_a_saved_rssm_loads_into_a_new_one(tmp_path: Path) -> None:
    model = _model()
    model.train_step(_small_batch())
    model.save(tmp_path / "m.pt")
    other = build_rssm(model.config, Z, A)
    other.load(tmp_path / "m.pt")
    torch.manual_seed(13)
    first = model.eval_step(_small_batch())
    torch.manual_seed(13)
    assert other.eval_step(_small_batch()) == first


@pytest.mark.parametrize("name, value", [
    ("deterministic", 0), ("stochastic", 0), ("hidden", 0), ("overshooting", -1), ("overshooting", 1.5),
    ("overshooting_weight", -0.5), ("free_nats", -1.0), ("free_nats", math.inf), ("min_std", 0.0),
    ("min_obs_std", -1.0), ("done_weight", 0.5), ("lr", 0.0), ("grad_clip", 0.0), ("seq_len", 1)])
def test_bad_options_are_refused_by_name(name: str, value: Any) -> None:
    cfg = dataclasses.replace(RSSMConfig(), **{name: value})
    with pytest.raises(ConfigError, match=name) as err:
        build_rssm(cfg, Z, A)
    assert err.value.option == name


@pytest.mark.parametrize("name, value", [("z_dim", 0), ("action_dim", -1)])
def test_bad_sizes_are_refused_by_name(name: str, value: int) -> None:
    sizes = {"z_dim": Z, "action_dim": A, name: value}
    with pytest.raises(ConfigError, match=name):
        build_rssm(RSSMConfig(**SMALL), **sizes)  # type: ignore[arg-type]


def test_bad_batches_are_refused_naming_the_variable() -> None:
    model = _model()
    batch = _small_batch()
    with pytest.raises(ShapeError, match="done"):
        model.train_step({k: v for k, v in batch.items() if k != "done"})
    with pytest.raises(ShapeError, match="'z_next'"):
        model.train_step({**batch, "z_next": batch["z_next"][..., :2]})
    with pytest.raises(ShapeError, match="no live step"):
        model.train_step({**batch, "mask": torch.zeros_like(batch["mask"])})
