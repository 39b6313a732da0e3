"""The zoo's autoregressive models report what their users expect: the exact test NLL (nats and bits/dim)
with the estimator and the binarisation named, MADE's mask ensemble with its number of masks, a
class-conditional Gated PixelCNN drawing without labels, and PixelVAE's capped importance sampling."""

from __future__ import annotations

import math

import pytest
import torch

from deepgm import zoo
from deepgm.data import TEST_BINARIZE_SEED
from deepgm.models import AutoregressiveModel, PixelVAE

INFO = zoo.DataInfo("toy", (16,), n_classes=3)


def _binary(n: int = 24) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (n,), generator=g)
    return {"x": torch.bernoulli(torch.rand(3, 16, generator=g)[y], generator=g), "y": y}


@pytest.mark.parametrize(("name", "options"), [
    ("nade", {"hidden_units": 8}), ("made", {"hidden": (16,)}),
    ("pixelcnn", {"channels": 4, "layers": 1, "first_kernel": 3}),
    ("gated-pixelcnn", {"channels": 4, "layers": 2, "first_kernel": 3}),
])
def test_evaluate_reports_the_exact_nll_in_nats_and_bits_with_its_estimator(name: str, options: dict) -> None:
    torch.manual_seed(0)
    entry = zoo.get(name)
    model = entry.build(entry.config(**options), INFO)
    assert isinstance(model, AutoregressiveModel)
    data = _binary()
    m = model.evaluate(data, info=INFO)
    with torch.no_grad():
        direct = float(-model.p.log_prob({"x": data["x"]}).mean())
    assert m["test_nll_exact"] == pytest.approx(direct, rel=1e-6) and m["test_nll"] == m["test_nll_exact"]
    assert m["test_bits_per_dim"] == pytest.approx(direct / (16 * math.log(2)), rel=1e-6)
    assert m["estimator"] == "exact log-likelihood" and m["likelihood"] == "exact"
    assert m["binarisation"].startswith("as given")


def test_made_reports_its_mask_ensemble_and_its_number_of_masks() -> None:
    torch.manual_seed(1)
    entry = zoo.get("made")
    model = entry.build(entry.config(hidden=(16,), masks=4, eval_masks=3), INFO)
    data = _binary()
    for _ in range(3):
        model.train_step({"x": data["x"]})  # cycles masks 0 (at build), 1, 2, 3
    m = model.evaluate(data)
    with torch.no_grad():
        ens = float(-model.p.ensemble_log_prob({"x": data["x"]}, 3).mean())  # type: ignore[attr-defined]
    assert m["eval_masks"] == 3 and "ensemble of 3 masks" in m["estimator"]
    assert m["test_nll_exact"] == pytest.approx(ens, rel=1e-6)
    assert m["test_loss"] != m["test_nll_exact"]  # one mask's NLL, the training objective


def test_grey_inputs_are_binarised_by_the_model_with_the_fixed_test_seed() -> None:
    torch.manual_seed(2)
    entry = zoo.get("nade")
    model = entry.build(entry.config(hidden_units=4), INFO)
    grey = {"x": torch.rand(10, 16, generator=torch.Generator().manual_seed(3))}
    m = model.evaluate(grey)
    fixed = torch.bernoulli(grey["x"], generator=torch.Generator().manual_seed(TEST_BINARIZE_SEED))
    with torch.no_grad():
        assert m["test_nll_exact"] == pytest.approx(float(-model.p.log_prob({"x": fixed}).mean()), rel=1e-6)
    assert m["binarisation"].startswith("fixed") and str(TEST_BINARIZE_SEED) in m["binarisation"]
    assert math.isfinite(float(model.train_step(grey)))  # training batches: a fresh draw


def test_class_conditional_gated_pixelcnn_draws_each_class_without_labels_and_needs_classes() -> None:
    torch.manual_seed(3)
    entry = zoo.get("gated-pixelcnn")
    cfg = entry.config(channels=4, layers=2, first_kernel=3, class_conditional=True)
    model = entry.build(cfg, INFO)
    assert model.p.cond_var == ["y"]
    data = _binary()
    assert math.isfinite(float(model.train_step(data)))
    assert model.generate(5).shape == (5, 16)
    assert "test_nll_exact" in model.evaluate(data)
    with pytest.raises(ValueError, match="class_conditional needs labelled data; toy has no classes"):
        entry.build(cfg, zoo.DataInfo("toy", (16,)))


def test_pixelvae_caps_the_importance_samples_of_its_nll() -> None:
    torch.manual_seed(4)
    entry = zoo.get("pixelvae")
    model = entry.build(entry.config(z_dim=2, hidden=(16,), channels=4, layers=2, max_eval_k=3), INFO)
    assert isinstance(model, PixelVAE)
    m = model.evaluate(_binary(8), k=50)
    assert m["k"] == 3 and "test_nll_k3" in m and "3 draws" in m["estimator"]
