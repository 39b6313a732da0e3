"""World Models' V (conv VAE with KL tolerance) and M (MDN-RNN): objectives, steps, and learning."""

from __future__ import annotations

import math

import pytest
import torch
import torch.distributions as td

from deepgm.errors import ConfigError
from deepgm.models.world import LatentDynamics, draw_latents, latent_sequences, open_loop_error
from deepgm.zoo.options import check_config
from deepgm.zoo.world_models import MemoryConfig, VisionConfig, build_memory, build_vision


def test_v_reconstruction_term_is_the_negative_sum_of_squared_errors_up_to_a_constant() -> None:
    torch.manual_seed(0)
    v = build_vision(VisionConfig(z_dim=4), side=16)
    x, z = torch.rand(3, 3, 16, 16), torch.randn(3, 4)
    mu = v.decode(z)
    lp = v.decoder.log_prob({"x": x, "z": z})
    n = 3 * 16 * 16
    expected = -((x - mu) ** 2).sum((1, 2, 3)) - n * 0.5 * math.log(math.pi)  # σ² = ½
    torch.testing.assert_close(lp, expected, rtol=1e-5, atol=1e-3)


def test_v_kl_tolerance_floors_the_batch_mean_kl() -> None:
    torch.manual_seed(0)
    v = build_vision(VisionConfig(z_dim=4, kl_tolerance=100.0), side=16)  # a floor of 400 nats, never reached
    x = torch.rand(5, 3, 16, 16)
    torch.manual_seed(1)
    loss = float(v.loss({"x": x}).detach())
    torch.manual_seed(1)
    z = v.encoder.sample({"x": x})["z"]
    recon = float(v.decoder.log_prob({"x": x, "z": z}).mean().detach())
    assert loss == pytest.approx(400.0 - recon, rel=1e-5)
    v.train_step({"x": x})
    enc = v.encoder.net.heads  # type: ignore[union-attr]
    assert enc.weight.grad is not None


def test_v_learns_a_few_frames() -> None:
    torch.manual_seed(0)
    v = build_vision(VisionConfig(z_dim=8), side=16)
    x = torch.rand(1, 3, 16, 16).repeat(32, 1, 1, 1) * torch.linspace(0.2, 1, 32)[:, None, None, None]
    first = v.train_step({"x": x})
    for _ in range(60):
        last = v.train_step({"x": x})
    assert last < first - 50


def test_config_rules_refuse_bad_values_by_name() -> None:
    with pytest.raises(ConfigError, match="components"):
        check_config(MemoryConfig(components=0))
    with pytest.raises(ConfigError, match="kl_tolerance"):
        check_config(VisionConfig(kl_tolerance=-1.0))
    with pytest.raises(ValueError, match="side 8, 16, 32 or 64"):
        build_vision(VisionConfig(), side=20)


def test_m_steps_agree_with_the_sequence_lstm() -> None:
    torch.manual_seed(0)
    m = build_memory(MemoryConfig(hidden=16, components=3), z_dim=4, action_dim=2)
    assert isinstance(m, LatentDynamics)
    z, a = torch.randn(3, 7, 4), torch.randn(3, 7, 2)
    full = m.lstm(z, a)["loc"]
    state = m.initial_state(3)
    for t in range(7):
        state = m.observe(state, z[:, t], a[:, t])
        torch.testing.assert_close(m.features(state), full[:, t], rtol=1e-5, atol=1e-6)


def test_m_scores_are_the_exact_mixture_log_likelihood() -> None:
    torch.manual_seed(0)
    m = build_memory(MemoryConfig(hidden=8, components=3), z_dim=2, action_dim=1)
    batch = {"z": torch.randn(2, 5, 2), "a": torch.randn(2, 5, 1), "z_next": torch.randn(2, 5, 2),
             "done": torch.zeros(2, 5), "mask": torch.tensor([[1.0] * 5, [1.0, 1.0, 0.0, 0.0, 0.0]])}
    with torch.no_grad():
        h = m.lstm(batch["z"], batch["a"])["loc"]
        p = m.p_next.net(h)  # type: ignore[misc]
    ref = td.MixtureSameFamily(td.Categorical(logits=p["logits"]), td.Normal(p["loc"], p["scale"]))
    lp = ref.log_prob(batch["z_next"]).sum(-1)
    expected = float((lp * batch["mask"]).sum() / batch["mask"].sum()) / 2
    assert m.next_latent_scores(batch)["next_latent_loglik_per_dim"] == pytest.approx(expected, rel=1e-5)


def _linear_episodes(n_eps: int, length: int, seed: int) -> tuple[torch.Tensor, ...]:
    """z' = 0.8 z + 0.5 a + noise; an episode ends by death once z_0 exceeds 0.7, else is cut at ``length``."""
    g = torch.Generator().manual_seed(seed)
    zs, acts, lengths, term = [], [], [], []
    for _ in range(n_eps):
        z, n = torch.randn(2, generator=g) * 0.5, 0
        while n < length:
            a = torch.rand(1, generator=g) * 2 - 1
            zs.append(z)
            acts.append(a)
            n += 1
            z = 0.8 * z + 0.5 * a + 0.05 * torch.randn(2, generator=g)
            if float(z[0]) > 0.7:
                break
        lengths.append(n)
        term.append(n < length or float(z[0]) > 0.7)
    return torch.stack(zs), torch.stack(acts), torch.tensor(lengths), torch.tensor(term)


def test_m_learns_linear_dynamics_and_predicts_them_open_loop() -> None:
    torch.manual_seed(0)
    z, a, lengths, term = _linear_episodes(40, 40, seed=0)
    zv, av, lv, tv = _linear_episodes(8, 40, seed=1)
    scale = torch.full_like(z, 1e-3)
    train = latent_sequences(z, scale, a, lengths.tolist(), term, seq_len=20)
    valid = draw_latents(latent_sequences(zv, torch.full_like(zv, 1e-3), av, lv.tolist(), tv, seq_len=40),
                         generator=torch.Generator().manual_seed(0))
    m = build_memory(MemoryConfig(hidden=32, components=2, lr=3e-3), z_dim=2, action_dim=1)
    before = m.next_latent_scores(valid)["next_latent_loglik_per_dim"]
    for _step in range(300):
        idx = torch.randint(len(train["mask"]), (32,))
        m.train_step(draw_latents({k: v[idx] for k, v in train.items()}))
    after = m.next_latent_scores(valid)
    assert after["next_latent_loglik_per_dim"] > before + 1.0
    assert after["next_latent_loglik_per_dim"] > 0.5  # the noise is 0.05: log N(0; 0, 0.05²) ≈ 2.07
    long = valid["mask"].sum(1) >= 15
    err = open_loop_error(m, valid, 5, [10])[10]
    zero = float((valid["z"][long, 14] ** 2).mean())  # predicting 0 ten steps ahead
    assert err < 0.3 * zero
    # deaths follow from the state and action: M predicts them (p(done) high there, low elsewhere)
    h = m.lstm(valid["z"], valid["a"])["loc"]
    p_done = torch.sigmoid(m.p_done.net(h)["logits"])  # type: ignore[misc]
    dead, live = valid["done"] > 0, (valid["mask"] > 0) & (valid["done"] == 0)
    assert int(dead.sum()) >= 4
    assert float(p_done[dead].mean()) > 3 * float(p_done[live].mean())
