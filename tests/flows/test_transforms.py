"""Every transform: x = f⁻¹(f(x)) and log|det J| equal to the autograd Jacobian's, per example."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deepgm.flows import (
    IAF,
    MADE,
    MAF,
    ActNorm,
    AdditiveCoupling,
    AffineCoupling,
    BatchNormFlow,
    Compose,
    Dequantize,
    Inverse,
    InvertibleConv1x1,
    Logit,
    NotInvertibleError,
    PlanarFlow,
    RadialFlow,
    RandomPermutation,
    Reshape,
    ReversePermutation,
    RQSplineCoupling,
    Scaling,
    Squeeze,
    Transform,
    alternating_mask,
    channel_mask,
    checkerboard_mask,
    multiscale_realnvp,
    rq_spline,
)

D = 4
IMG = (2, 4, 4)


def _randomise(t: Transform, scale: float = 0.3) -> Transform:
    """Move every parameter off its (often identity) initial value, deterministically."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in t.parameters():
            p.add_(torch.randn(p.shape, generator=g, dtype=p.dtype) * scale)
    return t


def _bn(features: int) -> BatchNormFlow:
    t = BatchNormFlow(features)
    with torch.no_grad():
        t.running_mean.normal_()
        t.running_var.uniform_(0.5, 2.0)
    return t


def _actnorm(features: int, shape: tuple[int, ...]) -> ActNorm:
    t = ActNorm(features)
    t.train()
    t(torch.randn(16, *shape) * 3 + 1)  # data-dependent initialisation
    return t


# name -> (factory, event shape, context dim, input kind)
CASES: dict[str, tuple[Callable[[], Transform], tuple[int, ...], int, str]] = {
    "additive": (lambda: AdditiveCoupling(alternating_mask(D), hidden=(16,)), (D,), 0, "normal"),
    "additive-cond": (lambda: AdditiveCoupling(alternating_mask(D, 1), hidden=(16,), context_dim=3), (D,), 3, "normal"),
    "additive-checker": (lambda: AdditiveCoupling(checkerboard_mask(4, 4), hidden=8, event_shape=IMG), IMG, 0,
                         "normal"),
    "scaling": (lambda: Scaling(D), (D,), 0, "normal"),
    "affine": (lambda: AffineCoupling(alternating_mask(D), hidden=(16,)), (D,), 0, "normal"),
    "affine-cond": (lambda: AffineCoupling(alternating_mask(D), hidden=(16,), context_dim=3), (D,), 3, "normal"),
    "affine-checker": (lambda: AffineCoupling(checkerboard_mask(4, 4, 1), hidden=8, event_shape=IMG), IMG, 0,
                       "normal"),
    "affine-channel": (lambda: AffineCoupling(channel_mask(2), hidden=8, event_shape=IMG), IMG, 0, "normal"),
    "affine-channel-cond": (lambda: AffineCoupling(channel_mask(2, 1), hidden=8, event_shape=IMG, context_dim=2),
                            IMG, 2, "normal"),
    "spline": (lambda: RQSplineCoupling(alternating_mask(D), bins=5, bound=2.0, hidden=(16,)), (D,), 0, "wide"),
    "spline-cond": (lambda: RQSplineCoupling(alternating_mask(D), bins=4, hidden=(16,), context_dim=3), (D,), 3,
                    "wide"),
    "maf": (lambda: MAF(D, hidden=(16,)), (D,), 0, "normal"),
    "maf-cond-order": (lambda: MAF(D, hidden=(16, 16), context_dim=3, order=[2, 0, 3, 1]), (D,), 3, "normal"),
    "iaf": (lambda: IAF(D, hidden=(16,), context_dim=3), (D,), 3, "normal"),
    "radial": (lambda: RadialFlow(D), (D,), 0, "normal"),
    "radial-cond": (lambda: RadialFlow(D, context_dim=3), (D,), 3, "normal"),
    "batchnorm": (lambda: _bn(D), (D,), 0, "normal"),
    "batchnorm-image": (lambda: _bn(2), IMG, 0, "normal"),
    "actnorm": (lambda: _actnorm(D, (D,)), (D,), 0, "normal"),
    "actnorm-image": (lambda: _actnorm(2, IMG), IMG, 0, "normal"),
    "conv1x1": (lambda: InvertibleConv1x1(D, seed=0), (D,), 0, "normal"),
    "conv1x1-image": (lambda: InvertibleConv1x1(2, seed=0), IMG, 0, "normal"),
    "squeeze": (lambda: Squeeze(), IMG, 0, "normal"),
    "unsqueeze": (lambda: Inverse(Squeeze()), (8, 2, 2), 0, "normal"),
    "reshape": (lambda: Reshape((32,), IMG), (32,), 0, "normal"),
    "reverse": (lambda: ReversePermutation(D), (D,), 0, "normal"),
    "random-perm": (lambda: RandomPermutation(D, seed=3), (D,), 0, "normal"),
    "logit": (lambda: Logit(0.05), (D,), 0, "unit"),
    "logit-image": (lambda: Logit(1e-6), (1, 2, 2), 0, "unit"),
    "inverse-affine": (lambda: Inverse(AffineCoupling(alternating_mask(D), hidden=(16,))), (D,), 0, "normal"),
    "compose": (lambda: Compose([AffineCoupling(alternating_mask(D), hidden=(8,)), ReversePermutation(D),
                                 MAF(D, hidden=(8,)), RadialFlow(D)]), (D,), 0, "normal"),
    "multiscale": (lambda: multiscale_realnvp((1, 4, 4), levels=2, couplings=1, hidden=4), (1, 4, 4), 0, "normal"),
}


def _make(name: str) -> tuple[Transform, torch.Tensor, torch.Tensor | None]:
    factory, shape, cdim, kind = CASES[name]
    torch.manual_seed(0)
    t = _randomise(factory()).double().eval()
    x = torch.randn(2, *shape, dtype=torch.float64)
    if kind == "wide":
        x = x * 2.0
    elif kind == "unit":
        x = torch.rand(2, *shape, dtype=torch.float64)
    ctx = torch.randn(2, cdim, dtype=torch.float64) if cdim else None
    return t, x, ctx


def _jacobian_logdet(fn: Callable[[torch.Tensor, torch.Tensor | None], tuple[torch.Tensor, torch.Tensor]],
                     x: torch.Tensor, ctx: torch.Tensor | None) -> torch.Tensor:
    out = []
    for i in range(x.shape[0]):
        c = None if ctx is None else ctx[i:i + 1]

        def f(v: torch.Tensor, i: int = i, c: torch.Tensor | None = c) -> torch.Tensor:
            return fn(v.reshape(1, *x.shape[1:]), c)[0].reshape(-1)

        jac = torch.autograd.functional.jacobian(f, x[i].reshape(-1))
        out.append(torch.linalg.slogdet(jac)[1])
    return torch.stack(out)


@pytest.mark.parametrize("name", sorted(CASES))
def test_inverse_undoes_forward_and_logdet_matches_jacobian(name: str) -> None:
    t, x, ctx = _make(name)
    y, ld = t(x, ctx)
    assert ld.shape == (x.shape[0],)
    assert not torch.allclose(y.reshape(-1)[: x.numel()], x.reshape(-1)) or name in {"reshape"}, "identity map"
    x_back, ld_inv = t.inverse(y, ctx)
    assert torch.allclose(x_back, x, atol=1e-6), (x_back - x).abs().max()
    assert torch.allclose(ld_inv, -ld, atol=1e-6)
    assert torch.allclose(ld, _jacobian_logdet(t, x, ctx), atol=1e-6)
    assert torch.allclose(ld_inv, _jacobian_logdet(t.inverse, y, ctx), atol=1e-6)


@pytest.mark.parametrize("context_dim", [0, 3])
def test_planar_logdet_matches_jacobian_and_inverse_is_refused(context_dim: int) -> None:
    torch.manual_seed(0)
    t = _randomise(PlanarFlow(D, context_dim), 1.0).double()
    x = torch.randn(5, D, dtype=torch.float64)
    ctx = torch.randn(5, context_dim, dtype=torch.float64) if context_dim else None
    y, ld = t(x, ctx)
    assert not torch.allclose(y, x)
    assert torch.allclose(ld, _jacobian_logdet(t, x, ctx), atol=1e-6)
    with pytest.raises(NotInvertibleError, match="no closed-form inverse"):
        t.inverse(y, ctx)
    with pytest.raises(NotImplementedError):
        Inverse(t)(y, ctx)
    y2, ld2 = Inverse(t).inverse(x, ctx)  # the sampling direction of a posterior
    assert torch.equal(y2, y) and torch.equal(ld2, ld)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16), scale=st.floats(0.1, 4.0), name=st.sampled_from(
    ["affine-cond", "spline", "maf-cond-order", "radial", "conv1x1", "logit", "compose"]))
def test_roundtrip_on_random_inputs(seed: int, scale: float, name: str) -> None:
    t, _, ctx = _make(name)
    g = torch.Generator().manual_seed(seed)
    shape = (2, *CASES[name][1])
    if CASES[name][3] == "unit":
        x = torch.rand(shape, generator=g, dtype=torch.float64) * 0.98 + 0.01
    else:
        x = torch.randn(shape, generator=g, dtype=torch.float64) * scale
    y, ld = t(x, ctx)
    x_back, ld_inv = t.inverse(y, ctx)
    assert torch.allclose(x_back, x, atol=1e-5 * max(1.0, scale))
    assert torch.allclose(ld_inv, -ld, atol=1e-6)
    assert torch.isfinite(ld).all()


def test_made_is_autoregressive_in_its_order() -> None:
    torch.manual_seed(0)
    order = [2, 0, 3, 1]
    made = _randomise(MADE(D, 2, hidden=(16, 16), order=order)).double()
    x = torch.randn(D, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda v: made(v[None])[0], x)  # (2, D, D)
    rank = {d: r for r, d in enumerate(order)}
    for i in range(D):
        for j in range(D):
            depends = bool(jac[:, i, j].abs().sum() > 0)
            assert depends == (rank[j] < rank[i]) or not depends, (i, j)
            if rank[j] >= rank[i]:
                assert not depends, f"output {i} depends on input {j}"
    assert jac[:, order[-1], order[0]].abs().sum() > 0


def test_fresh_couplings_and_splines_start_as_the_identity() -> None:
    x = torch.randn(5, D)
    for t in (AdditiveCoupling(alternating_mask(D)), AffineCoupling(alternating_mask(D)),
              RQSplineCoupling(alternating_mask(D)), MAF(D), Scaling(D)):
        y, ld = t(x)
        assert torch.allclose(y, x, atol=1e-5) and torch.allclose(ld, torch.zeros(5), atol=1e-5), type(t).__name__


def test_spline_is_monotone_with_identity_tails() -> None:
    torch.manual_seed(0)
    x = torch.linspace(-5, 5, 1001)
    k = 6
    w, h, d = torch.randn(k), torch.randn(k), torch.randn(k - 1)
    y, ld = rq_spline(x, w.expand(1001, k), h.expand(1001, k), d.expand(1001, k - 1), bound=3.0)
    assert (y[1:] > y[:-1]).all()
    out = x.abs() > 3
    assert torch.equal(y[out], x[out]) and (ld[out] == 0).all()
    assert torch.allclose(y[x.abs() <= 3].abs().max(), torch.tensor(3.0), atol=1e-2)


def test_actnorm_initialises_from_data() -> None:
    t = ActNorm(3)
    x = torch.randn(256, 3, 4, 4) * torch.tensor([1.0, 3.0, 0.5])[:, None, None] + 2
    y, ld = t(x)
    assert bool(t.initialized)
    assert torch.allclose(y.mean((0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(y.std((0, 2, 3)), torch.ones(3), atol=1e-4)
    assert torch.allclose(ld, torch.full((256,), -16 * torch.log(x.std((0, 2, 3))).sum()), atol=1e-4)


def test_batchnorm_flow_uses_batch_statistics_in_training() -> None:
    t = BatchNormFlow(2)
    x = torch.randn(500, 2) * 4 + 1
    y, ld = t(x)
    assert torch.allclose(y.mean(0), torch.zeros(2), atol=1e-5)
    assert torch.allclose(t.running_mean, 0.1 * x.mean(0), atol=1e-5)
    assert torch.allclose(ld, (-0.5 * torch.log(x.var(0, unbiased=False) + 1e-5)).sum().expand(500))


def test_dequantize_rounds_back_and_carries_the_mass_term() -> None:
    levels = 4
    x = torch.randint(0, levels, (6, 5)).float() / (levels - 1)
    t = Dequantize(levels)
    for mode in (t.train, t.eval):
        mode()
        y, ld = t(x)
        assert ((y > 0) & (y < 1)).all()
        back, ld_inv = t.inverse(y)
        assert torch.equal(back, x)
        assert torch.allclose(ld, torch.full((6,), -5 * math.log(levels))) and torch.equal(ld_inv, -ld)


def test_dequantize_draws_noise_in_eval_mode_unless_asked_for_the_midpoint() -> None:
    x = torch.randint(0, 256, (4, 3)).float() / 255
    noisy, mid = Dequantize(256).eval(), Dequantize(256, "midpoint").eval()
    assert not torch.equal(noisy(x)[0], noisy(x)[0])
    assert torch.equal(mid(x)[0], (x * 255 + 0.5) / 256)
    with pytest.raises(ValueError, match="eval_noise"):
        Dequantize(256, "gaussian")  # type: ignore[arg-type]


def test_dequantize_keeps_every_value_in_its_own_bin_with_fresh_noise() -> None:
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (8, 1, 6, 6), generator=gen).float() / 255.0
    t = Dequantize(256)
    y, _ = t(images)
    assert y.min() >= 0.0 and y.max() < 1.0
    assert torch.equal(torch.floor(y * 256), torch.round(images * 255))  # bin [k/256, (k+1)/256)
    assert not torch.equal(t(images)[0], t(images)[0])
    extremes = torch.tensor([0.0, 1.0]).repeat(10_000)[None]
    y = t(extremes)[0]
    assert y.min() >= 0.0 and y.max() < 1.0


def test_dequantize_formula() -> None:
    x = torch.tensor([0.0, 128 / 255, 1.0])
    torch.manual_seed(1)
    u = torch.rand(3)
    torch.manual_seed(1)
    torch.testing.assert_close(Dequantize(256)(x[None])[0][0], (x * 255 + u) / 256)


def test_dequantize_stays_below_one_when_the_noise_rounds_up(monkeypatch: pytest.MonkeyPatch) -> None:
    # (255 + v)/256 is exactly 1.0 in float32 for v ≥ 1 - 2⁻¹⁷, which U[0, 1) can draw: Logit(0) was infinite
    top = 1.0 - 2.0**-24  # the largest float32 below 1
    monkeypatch.setattr(torch, "rand_like", lambda x: torch.full_like(x, top))
    x = torch.ones(3, 2, requires_grad=True)
    y, _ = Dequantize(256)(x)
    assert float(y.detach().max()) < 1.0 and torch.isfinite(Logit(0.0)(y)[0]).all()
    assert torch.equal(Dequantize(256).inverse(y)[0], x.detach())
    y.sum().backward()  # the clamp, like the rounding, passes gradients straight through
    assert x.grad is not None and torch.equal(x.grad, torch.full_like(x, 255 / 256))


@pytest.mark.parametrize("alpha", [1e-6, 0.05])
def test_logit_formula_and_its_log_det_on_images(alpha: float) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(3, 1, 2, 2, generator=gen, dtype=torch.float64)
    y, log_det = Logit(alpha)(x)
    p = alpha + (1 - 2 * alpha) * x
    torch.testing.assert_close(y, torch.log(p / (1 - p)))
    assert log_det.shape == (3,)
    half = torch.full((1, 1, 2, 2), 0.5)
    torch.testing.assert_close(Logit(0.0)(half)[1], torch.tensor([4 * math.log(4.0)]))  # dy/dx = 4 at ½
    with pytest.raises(ValueError, match="alpha"):
        Logit(0.5)


def test_conditional_transforms_depend_on_their_context() -> None:
    for name in ("affine-cond", "spline-cond", "maf-cond-order", "iaf", "radial-cond", "affine-channel-cond"):
        t, x, ctx = _make(name)
        assert ctx is not None
        y1, ld1 = t(x, ctx)
        y2, ld2 = t(x, ctx + 1.0)
        assert not torch.allclose(y1, y2), name
        with pytest.raises(ValueError, match="context"):
            t(x)


def test_bad_shapes_and_masks_are_named() -> None:
    with pytest.raises(ValueError, match="mask must keep"):
        AffineCoupling(torch.ones(3))
    with pytest.raises(Exception, match="expected inputs"):
        AffineCoupling(alternating_mask(4))(torch.randn(2, 5))
    with pytest.raises(Exception, match="even H and W"):
        Squeeze()(torch.randn(1, 1, 3, 4))
    with pytest.raises(ValueError, match="permutation"):
        MADE(3, order=[0, 0, 1])
