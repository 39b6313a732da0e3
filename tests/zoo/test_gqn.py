"""The GQN and its deterministic baseline: the representation ignores the order of the context views, the
ELBO is its KL terms (non-negative, analytic matching Monte Carlo) plus the image term, training lowers the
loss on tiny scenes, evaluation and figures, the σ schedule, and bad options refused by name."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import torch

import deepgm.zoo.gqn  # noqa: F401  (registers gqn and gqn-deterministic)
from deepgm import zoo
from deepgm.cli import main
from deepgm.data import DataInfo
from deepgm.data.scenes import make_scenes
from deepgm.distributions import Env, Normal
from deepgm.errors import ConfigError, DeepGMError
from deepgm.losses import KL
from deepgm.nn.gqn import GenerationCore, SceneRepresentation, Tower
from deepgm.zoo.gqn import GQN, query_split

SMALL = {"r_channels": 8, "h_channels": 8, "u_channels": 4, "steps": 3, "kernel": 3, "max_context": 3,
         "eval_batch": 4}


@pytest.fixture(scope="module")
def scenes() -> dict[str, torch.Tensor]:
    return make_scenes(12, "train", seed=0, size=32, views=4)


def _info(views: int = 4) -> DataInfo:
    return DataInfo("scenes-32", (views, 3, 32, 32), None, binary=False)


def _build(name: str = "gqn", **options: object) -> GQN:
    entry = zoo.get(name)
    fields = {f.name for f in dataclasses.fields(entry.config)}
    model = entry.build(entry.config(**{k: v for k, v in {**SMALL, **options}.items() if k in fields}), _info())
    assert isinstance(model, GQN)
    return model


def test_the_representation_is_a_sum_over_context_views_in_any_order() -> None:
    rep = SceneRepresentation(Tower(r_channels=8))
    x, v = torch.rand(2, 4, 3, 32, 32), torch.randn(2, 4, 7)
    r = rep(x, v)["loc"]
    perm = torch.tensor([2, 0, 3, 1])
    assert torch.allclose(r, rep(x[:, perm], v[:, perm])["loc"], atol=1e-5)
    parts = sum(rep(x[:, i:i + 1], v[:, i:i + 1])["loc"] for i in range(4))
    assert torch.allclose(r, parts, atol=1e-5)
    assert r.shape == (2, 8, 8, 8)


def test_the_query_split_takes_the_first_views_as_context_and_the_last_as_query(scenes: dict) -> None:
    fixed = query_split(scenes, 2)
    assert torch.equal(fixed["x_c"], scenes["x"][:, :2]) and torch.equal(fixed["v_q"], scenes["v"][:, 3])
    torch.manual_seed(3)
    drawn = query_split(scenes, 3, shuffle=True)
    for b in range(12):  # the query is one of the scene's views and none of its context views
        match = (scenes["v"][b] == drawn["v_q"][b]).all(1)
        assert match.sum() == 1
        assert not (drawn["v_c"][b] == drawn["v_q"][b]).all(1).any()
    with pytest.raises(ValueError, match="need more than 4 views per scene"):
        query_split(scenes, 4)


def test_the_elbo_is_the_kl_terms_plus_the_image_term(scenes: dict) -> None:
    model = _build()
    batch = {**query_split(scenes, 2), "sigma": torch.tensor(0.9)}
    kl_term, nll_term = model._terms  # type: ignore[misc]
    torch.manual_seed(1)
    env = Env(batch)
    kl, nll = kl_term._eval(env), nll_term._eval(env)
    torch.manual_seed(1)
    assert torch.allclose(model.loss(batch), (kl + nll).mean(), rtol=1e-5)
    assert kl.shape == (12,) and bool((kl >= 0).all())
    # each step's KL: q(z_l|h^e_l) against p(z_l|h^g_l), per step (event over one z_l), non-negative, and
    # the analytic value is what Monte Carlo estimates
    core = model._core
    assert isinstance(core, GenerationCore)
    r = model._represent.mean({"x_c": batch["x_c"], "v_c": batch["v_c"]})
    out = core(batch["x_q"], batch["v_q"], r, torch.randn(12, *core.noise_shape()))
    q = Normal(var=["z"], cond_var=["h_e"], net=core.posterior, event_ndim=3, name="q")
    p = Normal(var=["z"], cond_var=["h_g"], net=core.prior, event_ndim=3, name="p")
    states = {"h_e": out["h_e"], "h_g": out["h_g"]}
    per_step = KL(q, p)(states)
    assert per_step.shape == (12, 3) and bool((per_step >= 0).all())
    torch.manual_seed(2)
    few = {k: v[:2] for k, v in states.items()}
    mc = KL(q, p, analytic=False, sample_shape=1000)(few)
    assert torch.allclose(mc, per_step[:2], rtol=0.05, atol=0.2), (mc, per_step[:2])
    whole = KL(Normal(var=["z"], cond_var=["h_e"], net=core.posterior, event_ndim=4),
               Normal(var=["z"], cond_var=["h_g"], net=core.prior, event_ndim=4))(states)
    assert torch.allclose(whole, per_step.sum(1), rtol=1e-5)


@pytest.mark.parametrize("name", ["gqn", "gqn-deterministic"])
def test_a_few_training_steps_lower_the_loss_on_tiny_scenes(name: str, scenes: dict) -> None:
    torch.manual_seed(0)
    model = _build(name, lr=3e-3, anneal_steps=0, sigma_end=0.5)
    train = {k: v[:8] for k, v in scenes.items()}

    def held_out() -> float:
        torch.manual_seed(7)  # the same noise before and after training
        return model.eval_step(train)

    # the least the loss can be: -log N(x; x, σ²) on every value (and no KL)
    floor = 3 * 32 * 32 * (math.log(model.sigma_at(0)) + 0.5 * math.log(2 * math.pi))
    before = held_out()
    for _ in range(25):
        model.train_step(train)
    assert held_out() - floor < 0.8 * (before - floor)


def test_sigma_is_annealed_linearly_then_held() -> None:
    model = _build(sigma_start=2.0, sigma_end=0.7, anneal_steps=100)
    assert model.sigma_at(0) == 2.0 and math.isclose(model.sigma_at(50), 1.35) and model.sigma_at(500) == 0.7
    assert float(model.schedule(100)["sigma"]) == pytest.approx(0.7)  # type: ignore[misc]
    assert _build("gqn-deterministic").sigma_at(0) == 1.0


@pytest.mark.parametrize("name", ["gqn", "gqn-deterministic"])
def test_evaluation_reports_per_context_size_and_draws_the_query_views(name: str, scenes: dict,
                                                                       tmp_path: Path) -> None:
    model = _build(name)
    torch.manual_seed(0)
    metrics = model.evaluate(scenes, samples=2)
    assert metrics["query_view"] == 3 and "test_mse_k5" not in metrics  # 4 views: at most 3 context views
    for k in (1, 3):
        assert 0 < metrics[f"test_mse_k{k}"] < 1 and metrics[f"test_mse_mean2_k{k}"] <= metrics[f"test_mse_k{k}"] + 1e-6
        if name == "gqn":
            assert metrics[f"test_bits_per_pixel_k{k}"] > 0 and metrics[f"test_kl_k{k}"] >= 0
        else:
            assert f"test_bits_per_pixel_k{k}" not in metrics
    assert model.training
    [png] = model.figures(tmp_path, scenes, _info())
    assert png.name == "query_views.png" and png.stat().st_size > 0
    views = model.generate(5, scenes)
    assert views.shape == (5, 3, 32, 32) and 0 < float(views.min()) and float(views.max()) < 1
    with pytest.raises(DeepGMError, match="renders views of given scenes"):
        model.generate(5)


def test_bad_options_and_data_are_refused_by_name() -> None:
    entry = zoo.get("gqn")
    with pytest.raises(ConfigError, match="max_context must be at most 3"):
        entry.build(entry.config(max_context=4), _info())
    with pytest.raises(ConfigError, match="dataset must be a scene dataset"):
        entry.build(entry.config(), DataInfo("digits", (64,), 10))
    with pytest.raises(ConfigError, match="kernel must be an odd integer"):
        entry.build(entry.config(kernel=4), _info())
    with pytest.raises(ConfigError, match="sigma_end must be a positive"):
        entry.build(entry.config(sigma_end=0.0), _info())


def test_the_command_line_refuses_a_bad_option_before_anything_runs(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "gqn", "--dataset", "scenes-32", "--kernel", "4", "--out", str(tmp_path / "r")]) == 2
    assert "--kernel must be an odd integer of at least 1, got 4" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
