"""NADE, MADE, PixelCNN and Gated PixelCNN as distributions: exact normalisation by enumerating every
binary vector, NADE against a loop-by-loop reference, mask ensembles, samplers against the density,
sample dimensions, and the errors bad inputs and options raise."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import pytest
import torch

from deepgm.distributions import NADE, Autoregressive, BinaryMADE, GatedPixelCNN, PixelCNN
from deepgm.errors import ParameterError, ShapeError, SupportError


def _all_binary(d: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=d)), dtype=torch.float64)


def _randomised(p: Autoregressive) -> Autoregressive:
    """``p`` in float64 with weights far from their (near-uniform) start, so that the check means something."""
    p = p.double()
    with torch.no_grad():
        for w in p.parameters():
            w.normal_(0, 0.7)
    return p


MAKERS: dict[str, Callable[[], Autoregressive]] = {
    "nade": lambda: NADE(var=["x"], dim=6, hidden=5),
    "made": lambda: BinaryMADE(var=["x"], dim=6, hidden=(10, 10)),
    "made-order-agnostic": lambda: BinaryMADE(var=["x"], dim=6, hidden=(10,), order_agnostic=True, n_masks=3),
    "pixelcnn": lambda: PixelCNN(var=["x"], image_shape=(1, 3, 3), channels=4, layers=2, kernel=3, first_kernel=3),
    "gated": lambda: GatedPixelCNN(var=["x"], image_shape=(1, 3, 3), channels=4, layers=2, kernel=3, first_kernel=3),
}


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_probabilities_of_all_binary_vectors_sum_to_one(name: str) -> None:
    torch.manual_seed(0)
    p = _randomised(MAKERS[name]())
    if isinstance(p, BinaryMADE):
        p.next_training_masks()  # a non-natural ordering when order-agnostic
    every = _all_binary(p.dim)
    with torch.no_grad():
        lp = p.log_prob({"x": every})
    assert lp.shape == (len(every),)
    assert float(lp.exp().sum()) == pytest.approx(1.0, abs=1e-9)
    assert lp.std() > 0.2  # far from uniform: the test is not trivially passed


@pytest.mark.parametrize("name", ["nade", "gated"])
def test_class_conditional_models_are_normalised_for_each_class(name: str) -> None:
    torch.manual_seed(1)
    if name == "nade":
        p: Autoregressive = NADE(var=["x"], cond_var=["y"], dim=5, hidden=4, cond_dim=3, n_classes=3)
    else:
        p = GatedPixelCNN(var=["x"], cond_var=["y"], image_shape=(1, 1, 5), channels=4, layers=2, kernel=3,
                          first_kernel=3, cond_dim=3, n_classes=3)
    p = _randomised(p)
    every = _all_binary(5)
    sums = []
    with torch.no_grad():
        for y in range(3):
            lp = p.log_prob({"x": every, "y": torch.full((len(every),), y)})
            sums.append(float(lp.exp().sum()))
        other = p.log_prob({"x": every, "y": torch.full((len(every),), 2)})
    assert sums == pytest.approx([1.0, 1.0, 1.0], abs=1e-9)
    assert not torch.allclose(lp, p.log_prob({"x": every, "y": torch.zeros(len(every), dtype=torch.long)}))
    assert torch.equal(other, lp)


def test_nade_matches_a_loop_by_loop_reference() -> None:
    torch.manual_seed(2)
    p = _randomised(NADE(var=["x"], dim=4, hidden=3))
    x = _all_binary(4)
    ref = torch.zeros(len(x), dtype=torch.float64)
    with torch.no_grad():
        for n in range(len(x)):
            for d in range(4):
                h = torch.sigmoid(p.c + p.W[:, :d] @ x[n, :d])
                prob = torch.sigmoid(p.b[d] + p.V[d] @ h)
                ref[n] += torch.log(prob if x[n, d] == 1 else 1 - prob)
        got = p.log_prob({"x": x})
    assert torch.allclose(got, ref, atol=1e-12)


def test_nade_logit_d_has_zero_gradient_with_respect_to_values_from_d_on() -> None:
    torch.manual_seed(3)
    p = _randomised(NADE(var=["x"], dim=5, hidden=4))
    x = torch.bernoulli(torch.full((1, 5), 0.5, dtype=torch.float64))
    jac = torch.autograd.functional.jacobian(lambda v: p.logits(v), x)[0, :, 0]  # (d_out, d_in)
    assert (jac.triu() == 0).all() and (jac.tril(-1).abs().sum() > 0)


def test_mask_ensemble_is_the_log_mean_exp_of_its_masks_and_restores_the_training_masks() -> None:
    torch.manual_seed(4)
    p = _randomised(BinaryMADE(var=["x"], dim=5, hidden=(8,), order_agnostic=True, n_masks=4))
    p.made.use_masks(2)
    before = p.made.degrees.clone()
    every = _all_binary(5)
    with torch.no_grad():
        ens = p.ensemble_log_prob({"x": every}, n_masks=3)
        singles = []
        for seed in range(3):
            p.made.use_masks(seed)
            singles.append(p.log_prob({"x": every}))
    assert torch.allclose(ens, torch.stack(singles).logsumexp(0) - math.log(3))
    assert float(ens.exp().sum()) == pytest.approx(1.0, abs=1e-9)  # a mixture of distributions is one
    p.made.use_masks(2)
    p.ensemble_log_prob({"x": every}, n_masks=2)
    assert torch.equal(p.made.degrees, before)


@pytest.mark.parametrize("name", ["nade", "made-order-agnostic", "pixelcnn"])
def test_draws_follow_the_exact_probabilities(name: str) -> None:
    torch.manual_seed(5)
    if name == "pixelcnn":
        p: Autoregressive = PixelCNN(var=["x"], image_shape=(1, 2, 2), channels=4, layers=1, kernel=3,
                                     first_kernel=3)
    elif name == "nade":
        p = NADE(var=["x"], dim=4, hidden=3)
    else:
        p = BinaryMADE(var=["x"], dim=4, hidden=(6,), order_agnostic=True, n_masks=3)
    p = _randomised(p)
    if isinstance(p, BinaryMADE):
        p.made.use_masks(1)
    every = _all_binary(4)
    with torch.no_grad():
        probs = p.log_prob({"x": every}).exp()
        draws = p.sample(batch_n=20000)["x"].reshape(20000, 4)
    codes = (draws * torch.tensor([8.0, 4, 2, 1], dtype=draws.dtype)).sum(-1).long()
    freq = torch.bincount(codes, minlength=16).double() / 20000
    assert torch.allclose(freq, probs, atol=0.015), (freq, probs)


def test_sample_and_log_prob_shapes_follow_sample_dims_of_the_conditions() -> None:
    torch.manual_seed(6)
    p = GatedPixelCNN(var=["x"], cond_var=["z"], image_shape=(1, 3, 3), channels=4, layers=2, kernel=3,
                      first_kernel=3, cond_dim=2)
    z = torch.randn(3, 4, 2)  # 3 draws of a batch of 4
    x = torch.bernoulli(torch.full((4, 9), 0.5))
    from deepgm.distributions import Env

    env = Env({"x": x})
    env.set("z", z, sdim=1)
    with torch.no_grad():
        lp = p.log_prob_at(env)
        rows = torch.stack([p.log_prob({"x": x, "z": z[s]}) for s in range(3)])
    assert lp.shape == (3, 4) and torch.allclose(lp, rows, atol=1e-6)
    assert p.sample({"z": z[0]}, sample_shape=2)["x"].shape == (2, 4, 9)
    assert NADE(var=["x"], dim=3, hidden=2).sample(sample_shape=(2,), batch_n=5)["x"].shape == (2, 5, 3)
    images = PixelCNN(var=["x"], image_shape=(1, 2, 3), channels=2, layers=1, kernel=3, first_kernel=3, flat=False)
    assert images.sample(batch_n=2)["x"].shape == (2, 1, 2, 3)
    assert images.log_prob({"x": torch.zeros(2, 6)}).shape == (2,)  # flat values are accepted too


def test_bad_inputs_raise_errors_naming_the_variable_and_what_was_expected() -> None:
    p = PixelCNN(var=["x"], image_shape=(1, 3, 3), channels=2, layers=1, kernel=3, first_kernel=3)
    expected = r"variable 'x' has shape \(2, 8\), expected \(\.\.\., 9\) or \(\.\.\., 1, 3, 3\)"
    with pytest.raises(ShapeError, match=expected):
        p.log_prob({"x": torch.zeros(2, 8)})
    with pytest.raises(SupportError, match=r"variable 'x' must be binary \(0 or 1\); got \[0\.5\]"):
        p.log_prob({"x": torch.tensor([[0.5] + [0.0] * 8])})
    nade = NADE(var=["x"], cond_var=["y"], dim=3, hidden=2, cond_dim=3, n_classes=3)
    with pytest.raises(ShapeError, match=r"class indices of 'y' must lie in \[0, 3\)"):
        nade.log_prob({"x": torch.zeros(1, 3), "y": torch.tensor([3])})
    with pytest.raises(ShapeError, match=r"'y' 2\) have 2 values, expected cond_dim=3"):
        nade.log_prob({"x": torch.zeros(1, 3), "y": torch.zeros(1, 2)})


@pytest.mark.parametrize(("options", "expected"), [
    ({"likelihood": "gaussian"}, "likelihood must be 'bernoulli' or 'logistic', got 'gaussian'"),
    ({"sampler": "fast"}, "sampler must be 'cached' or 'naive', got 'fast'"),
    ({"components": 0}, "components must be an int >= 1, got 0"),
    ({"image_shape": (9,)}, r"image_shape must be \(C, H, W\), got \(9,\)"),
])
def test_invalid_options_are_refused_naming_the_option(options: dict[str, object], expected: str) -> None:
    kwargs: dict[str, object] = {"image_shape": (1, 3, 3), "channels": 2, "layers": 1, "kernel": 3, "first_kernel": 3}
    with pytest.raises(ParameterError, match=expected):
        PixelCNN(var=["x"], **{**kwargs, **options})  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="n_masks must be >= 0"):
        BinaryMADE(var=["x"], dim=3, n_masks=-1)
    with pytest.raises(ShapeError, match=r"conditioned on \['y'\], so cond_dim .* must be >= 1"):
        NADE(var=["x"], cond_var=["y"], dim=3)
