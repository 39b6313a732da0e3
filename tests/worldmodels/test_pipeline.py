"""The World Models pipeline end to end on the shipped Dodge game (16×16 frames): every stage from the
command line, its files and figures, resumption, and refusals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("gymnasium", reason="the World Models pipeline needs gymnasium (pip install 'deepgm[worldmodels]')")
pytest.importorskip("cma", reason="CMA-ES needs the cma package (pip install 'deepgm[worldmodels]')")

from deepgm.cli import main  # noqa: E402
from deepgm.envs import make_env  # noqa: E402
from deepgm.worldmodels import LinearController, population_policy  # noqa: E402
from deepgm.worldmodels.agent import play  # noqa: E402
from deepgm.worldmodels.pipeline import load_memory, load_vision  # noqa: E402

EVOLVE = ["--population", "6", "--rollouts", "3", "--eval-every", "2", "--eval-rollouts", "6", "--no-progress"]


def _run(*args: str) -> int:
    return main(["world", *args])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    w = tmp_path_factory.mktemp("world") / "dodge"
    assert _run("collect", str(w), "--env", "dodge", "--episodes", "40", "--env-option", "size=16",
                "--no-progress") == 0
    assert _run("train-v", str(w), "--z-dim", "8", "--epochs", "1", "--batch-size", "64", "--no-progress") == 0
    assert _run("encode", str(w)) == 0
    assert _run("train-m", str(w), "--hidden", "16", "--seq-len", "40", "--epochs", "2", "--batch-size", "8",
                "--no-progress") == 0
    assert _run("evolve", str(w), "--name", "dream", "--generations", "2", *EVOLVE) == 0
    assert _run("evaluate", str(w), "--name", "dream", "--episodes", "4", "--slots", "2", "--no-progress") == 0
    return w


def test_every_stage_writes_its_outputs_and_figures(world: Path) -> None:
    for f in ["world.json", "rollouts/manifest.json", "vision/model.pt", "vision/reconstructions.png",
              "vision/scores.json", "latents.pt", "memory/model.pt", "memory/dream.png", "memory/scores.json",
              "controllers/dream/curve.png", "controllers/dream/controller.pt", "controllers/dream/evaluation.json",
              "controllers/dream/real.png"]:
        assert (world / f).exists(), f
    ev = json.loads((world / "controllers/dream/evaluation.json").read_text())
    assert ev["episodes"] == 4 and len(ev["scores"]) == 4 and ev["mean"] == pytest.approx(np.mean(ev["scores"]))
    curve = json.loads((world / "controllers/dream/curve.json").read_text())
    assert [c["generation"] for c in curve] == [1, 2] and "search_mean" in curve[1]
    assert all(c["worst"] <= c["mean"] <= c["best"] for c in curve)
    scores = json.loads((world / "memory/scores.json").read_text())
    assert {"next_latent_loglik_per_dim", "done_cross_entropy", "open_loop_mse"} <= set(scores)


def test_m_keeps_the_weights_of_its_best_held_out_epoch(world: Path) -> None:
    """M's model.pt holds the checkpoint that ``best`` names (the epoch with the lowest validation loss in
    metrics.csv), and scores.json records its step."""
    from deepgm.training.checkpoint import latest_checkpoint, load_checkpoint, load_state_file

    rows = [r.split(",") for r in (world / "memory/metrics.csv").read_text().strip().splitlines()[1:]]
    val = {int(r[0]): float(r[-1]) for r in rows if r[-1]}
    assert len(val) == 2  # two epochs, each validated
    best = latest_checkpoint(world / "memory" / "checkpoints", "best")
    step = int(load_state_file(best / "state.pt")["step"])
    assert step == min(val, key=val.__getitem__)
    assert json.loads((world / "memory/scores.json").read_text())["best_step"] == step
    m = load_memory(world)
    saved = {k: v.clone() for k, v in m.state_dict().items()}
    load_checkpoint(best, m)
    assert all(torch.equal(saved[k], v) for k, v in m.state_dict().items())


def test_status_reports_the_stages(world: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert _run("status", str(world)) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["env"] == "dodge" and out["random_policy"]["episodes"] == 40
    assert out["controllers"]["dream"]["real"]["episodes"] == 4


def test_a_complete_stage_is_not_run_again(world: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = (world / "vision/model.pt").stat().st_mtime_ns
    assert _run("train-v", str(world), "--z-dim", "8", "--epochs", "1", "--batch-size", "64", "--no-progress") == 0
    assert "V is trained" in capsys.readouterr().out
    assert (world / "vision/model.pt").stat().st_mtime_ns == before


def test_an_evaluation_of_the_same_episodes_is_not_played_again(world: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    done = world / "controllers/dream/evaluation.json"
    before = done.stat().st_mtime_ns
    capsys.readouterr()
    assert _run("evaluate", str(world), "--name", "dream", "--episodes", "4", "--slots", "2", "--no-progress") == 0
    assert "C is evaluated on these episodes" in capsys.readouterr().out
    assert done.stat().st_mtime_ns == before
    # other episodes, or --overwrite, play again (and leave the fixture's 4-episode evaluation as it was)
    assert _run("evaluate", str(world), "--name", "dream", "--episodes", "2", "--slots", "2", "--no-progress") == 0
    assert json.loads(done.read_text())["episodes"] == 2
    assert _run("evaluate", str(world), "--name", "dream", "--episodes", "4", "--slots", "2", "--no-progress",
                "--overwrite") == 0
    assert "C is evaluated" not in capsys.readouterr().out and json.loads(done.read_text())["episodes"] == 4


def test_the_dream_score_is_seeded_and_within_the_episode_limit(world: Path) -> None:
    from deepgm.worldmodels.pipeline import dream_score

    a, b = dream_score(world, "dream", rollouts=6, seed=3), dream_score(world, "dream", rollouts=6, seed=3)
    limit = json.loads((world / "world.json").read_text())["max_steps"]
    assert a == b and 1 <= a <= limit


def test_a_stage_refuses_other_options_than_it_started_with(world: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("train-v", str(world), "--z-dim", "4", "--epochs", "1", "--batch-size", "64", "--no-progress") == 2
    assert "--z-dim must be 8" in capsys.readouterr().err
    assert _run("evolve", str(world), "--name", "dream", "--generations", "2", "--temperature", "2.0", *EVOLVE) == 2
    assert "temperature" in capsys.readouterr().err


def test_a_stage_before_its_inputs_says_which_stage_to_run(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                            world: Path) -> None:
    w = tmp_path / "w"
    assert _run("train-v", str(w), "--no-progress") == 2
    assert "deepgm world collect" in capsys.readouterr().err
    shutil.copytree(world / "rollouts", w / "rollouts")
    shutil.copy(world / "world.json", w / "world.json")
    assert _run("train-m", str(w), "--no-progress") == 2
    assert "deepgm world encode" in capsys.readouterr().err
    assert _run("collect", str(w), "--env", "dodge", "--episodes", "40", "--no-progress") == 2  # size 64 now
    assert "must be {'size': 16} as recorded" in capsys.readouterr().err


def test_too_few_episodes_to_hold_out_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    w = tmp_path / "few"
    assert _run("collect", str(w), "--env", "dodge", "--episodes", "3", "--env-option", "size=16",
                "--no-progress") == 0
    assert _run("train-v", str(w), "--z-dim", "4", "--epochs", "1", "--no-progress") == 2
    assert "collect at least 20" in capsys.readouterr().err


def test_an_interrupted_search_resumes_exactly(world: Path) -> None:
    assert _run("evolve", str(world), "--name", "straight", "--generations", "4", *EVOLVE) == 0
    assert _run("evolve", str(world), "--name", "resumed", "--generations", "2", *EVOLVE) == 0
    first = json.loads((world / "controllers/resumed/curve.json").read_text())
    assert _run("evolve", str(world), "--name", "resumed", "--generations", "4", *EVOLVE) == 0
    a, b = (json.loads((world / f"controllers/{n}/curve.json").read_text()) for n in ("straight", "resumed"))
    assert [c["generation"] for c in b] == [1, 2, 3, 4] and b[:2] == first
    assert a == b  # the resumed search is the uninterrupted one
    torch.testing.assert_close(*(torch.load(world / f"controllers/{n}/controller.pt")["params"]
                                 for n in ("straight", "resumed")))


def test_population_policy_applies_each_candidate_to_its_rows() -> None:
    torch.manual_seed(0)
    c = LinearController(in_dim=5, action_dim=2)
    pop = torch.randn(3, c.n_params)
    z, h = torch.randn(12, 3), torch.randn(12, 2)
    out = population_policy(c, pop, repeats=4)(z, h)
    for p in range(3):
        rows = slice(4 * p, 4 * p + 4)
        torch.testing.assert_close(out[rows], c.policy(pop[p])(z[rows], h[rows]))
    with pytest.raises(ValueError, match="must have 12 entries"):
        c.unpack(torch.zeros(11))


def test_real_scores_do_not_depend_on_how_many_environments_run_together(world: Path) -> None:
    vision, memory = load_vision(world), load_memory(world)
    c = LinearController(memory.z_dim + memory.feature_dim, memory.action_dim)
    params = torch.randn(5, c.n_params, generator=torch.Generator().manual_seed(0))
    one, three = (play(lambda: make_env("dodge", size=16), vision, memory, c, params, seed=7, slots=s)
                  for s in (1, 3))
    np.testing.assert_array_equal(one.scores, three.scores)
    assert one.scores.shape == (5,)


def test_the_rssm_is_m_through_the_same_stages(world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    w = tmp_path / "rssm"
    w.mkdir()
    for f in ("world.json", "latents.pt"):
        shutil.copy(world / f, w / f)
    for d in ("rollouts", "vision"):
        shutil.copytree(world / d, w / d)
    rssm = ["--memory", "rssm", "--deterministic", "12", "--stochastic", "3", "--hidden", "12", "--seq-len", "20",
            "--overshooting", "2", "--epochs", "1", "--batch-size", "8", "--no-progress"]
    assert _run("train-m", str(w), *rssm) == 0
    memory = load_memory(w)
    assert type(memory).__name__ == "RSSM" and memory.feature_dim == 12
    scores = json.loads((w / "memory/scores.json").read_text())
    assert {"next_latent_elbo_per_dim", "open_loop_mse"} <= set(scores)
    assert json.loads((w / "memory/config.json").read_text())["kind"] == "rssm"
    assert _run("evolve", str(w), "--name", "dream", "--generations", "1", *EVOLVE) == 0
    assert _run("evaluate", str(w), "--name", "dream", "--episodes", "2", "--slots", "2", "--no-progress") == 0
    assert json.loads((w / "controllers/dream/evaluation.json").read_text())["episodes"] == 2
    capsys.readouterr()
    assert _run("train-m", str(w), "--hidden", "16", "--seq-len", "40", "--no-progress") == 2  # an MDN-RNN now
    assert "kind" in capsys.readouterr().err
