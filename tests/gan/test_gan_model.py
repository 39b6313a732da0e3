"""The GAN model: k discriminator steps per generator step, clipping after every critic step, a dict of
losses, generation, the trainer, and a tiny GAN on the ring of 8 Gaussians that learns the modes."""

from __future__ import annotations

import torch
from torch import nn

from deepgm.data.toy import toy_2d, toy_2d_modes
from deepgm.distributions import Deterministic, Empirical, Normal
from deepgm.losses.gan import FGAN, MinimaxGAN, NonSaturatingGAN, Wasserstein
from deepgm.losses.mmd import mmd2_mixture
from deepgm.metrics.gan import mode_coverage
from deepgm.models.gan import GAN
from deepgm.nn import MLP, AsLoc, Concat, MinibatchDiscrimination
from deepgm.training import Trainer, TrainerConfig


def _generator(z_dim: int = 2, hidden: int = 64) -> object:
    g = Deterministic(var=["x"], cond_var=["z"], net=AsLoc(MLP([z_dim, hidden, hidden, 2])), name="G")
    return (g * Normal(var=["z"], loc=0.0, scale=1.0, features_shape=[z_dim], name="p_z")).marginalize_var("z")


def test_ns_gan_on_the_ring_of_eight_gaussians_finds_the_modes() -> None:
    data = toy_2d("8gaussians", 4096, seed=0)
    modes = toy_2d_modes("8gaussians")
    gen = _generator()
    obj = NonSaturatingGAN(Empirical(var=["x"]), gen, MLP([2, 64, 64, 1], "leaky_relu"))
    model = GAN(obj.mean(), gen, optimizer_params={"lr": 1e-3, "betas": (0.5, 0.999)},
                d_optimizer_params={"lr": 1e-3, "betas": (0.5, 0.999)})
    before = mode_coverage(model.generate(1000), modes, 0.1)
    mmd_before = float(mmd2_mixture(model.generate(1000), data[:1000]))
    g = torch.Generator().manual_seed(1)
    for _ in range(600):
        out = model.train_step({"x": data[torch.randint(0, 4096, (128,), generator=g)]})
    assert set(out) == {"loss", "discriminator"}
    after = mode_coverage(model.generate(1000), modes, 0.1)
    mmd_after = float(mmd2_mixture(model.generate(1000), data[:1000]))
    assert after["modes_captured"] >= 6 and after["high_quality"] > before["high_quality"] + 0.1, after
    assert mmd_after < 0.2 * mmd_before
    assert model.eval_step({"x": data[:500]}) < 0.05


def test_k_discriminator_steps_per_generator_step_with_clipping_after_each() -> None:
    gen = _generator()
    critic = MLP([2, 16, 1])
    obj = Wasserstein(Empirical(var=["x"]), gen, critic, clip=0.05)
    model = GAN(obj.mean(), gen, d_steps=3, d_optimizer=torch.optim.SGD, d_optimizer_params={"lr": 1.0})
    calls = {"d": 0, "g": 0}
    model._aux_optimizers[0].register_step_post_hook(lambda *_: calls.__setitem__("d", calls["d"] + 1))
    model.optimizer.register_step_post_hook(lambda *_: calls.__setitem__("g", calls["g"] + 1))
    g_before = [p.detach().clone() for p in gen.parameters()]
    model.train_step({"x": torch.randn(16, 2)})
    assert calls == {"d": 3, "g": 1}
    # SGD with lr 1 moves weights far beyond 0.05; the clip hook brings them back after every step
    assert all(p.abs().max() <= 0.05 + 1e-7 for p in critic.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(g_before, gen.parameters()))


def test_the_generator_step_does_not_move_the_discriminator_and_vice_versa() -> None:
    gen = _generator()
    disc = MLP([2, 16, 1])
    model = GAN(MinimaxGAN(Empirical(var=["x"]), gen, disc).mean(), gen)
    assert {id(p) for p in model.optimizer.param_groups[0]["params"]} == {id(p) for p in gen.parameters()}
    assert {id(p) for p in model._aux_optimizers[0].param_groups[0]["params"]} == {id(p) for p in disc.parameters()}


def test_fgan_js_has_the_minimax_gradients_up_to_log4() -> None:
    gen = _generator()
    disc = MLP([2, 8, 1])
    x = torch.randn(32, 2)
    js = FGAN(Empirical(var=["x"]), gen, disc, "js", data_terms=True)
    mm = MinimaxGAN(Empirical(var=["x"]), gen, disc, data_terms=True)
    torch.manual_seed(3)
    a = js({"x": x})
    torch.manual_seed(3)
    b = mm({"x": x})
    assert torch.allclose(a, b + 2 * torch.log(torch.tensor(2.0)), atol=1e-5)


def test_minibatch_discrimination_sees_the_batch() -> None:
    layer = MinibatchDiscrimination(4, n_kernels=3, kernel_dim=2)
    x = torch.randn(5, 4)
    out = layer(x)
    assert out.shape == (5, 7) and torch.equal(out[:, :4], x)
    same = layer(x[:1].expand(5, 4))  # a collapsed batch: every example has 4 identical neighbours
    assert torch.allclose(same[:, 4:], torch.full((5, 3), 4.0).log1p())
    raw = MinibatchDiscrimination(4, n_kernels=3, kernel_dim=2, log_features=False)
    assert torch.allclose(raw(x[:1].expand(5, 4))[:, 4:], torch.full((5, 3), 4.0))


def test_minibatch_discrimination_gradients_twice_for_gradient_penalties() -> None:
    from deepgm.nn.gan import _PairwiseL1

    m = torch.randn(2, 5, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(_PairwiseL1.apply, (m,))
    assert torch.autograd.gradgradcheck(_PairwiseL1.apply, (m,))
    layer = MinibatchDiscrimination(4, n_kernels=3, kernel_dim=2).double()
    x = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(layer(x).sum(), x, create_graph=True)
    g.pow(2).sum().backward()  # a penalty on the input gradient reaches the kernels
    assert layer.T.grad is not None and torch.isfinite(layer.T.grad).all()


def test_concat_flattens_its_inputs_and_keeps_their_float_dtype() -> None:
    lin = nn.Linear(5, 1).double()
    x, z, y = torch.randn(3, 2, 1, dtype=torch.float64), torch.randn(3, 2, dtype=torch.float64), torch.tensor([1, 0, 2])
    out = Concat(lin)(x, z, y)  # float64 stays float64 (it was cast to float32); class indices become floats
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, lin(torch.cat([x.reshape(3, 2), z, y[:, None].double()], 1)))
    loc = AsLoc(nn.Linear(3, 2), nn.Sigmoid())(torch.randn(4, 1), torch.randn(4, 2))["loc"]
    assert loc.shape == (4, 2) and bool(((loc > 0) & (loc < 1)).all())


def test_the_trainer_drives_a_gan(tmp_path: object) -> None:
    gen = _generator(hidden=16)
    model = GAN(NonSaturatingGAN(Empirical(var=["x"]), gen, MLP([2, 16, 1])).mean(), gen)
    data = {"x": toy_2d("8gaussians", 256, seed=0)}
    cfg = TrainerConfig(epochs=2, batch_size=64, eval_batch_size=128, out_dir=tmp_path, progress=False)  # type: ignore[arg-type]
    history = Trainer(model, data, cfg, val={"x": toy_2d("8gaussians", 128, seed=1)}).fit()
    assert len(history["val_loss"]) == 2 and all(v >= -0.1 for v in history["val_loss"])
    assert model.generate(7).shape == (7, 2)


def test_bigan_encoder_receives_gradients_from_the_generator_objective() -> None:
    enc = Deterministic(var=["z"], cond_var=["x"], net=AsLoc(nn.Linear(2, 2)), name="E")
    g = Deterministic(var=["x"], cond_var=["z"], net=AsLoc(nn.Linear(2, 2)), name="G")
    gen = g * Normal(var=["z"], loc=0.0, scale=1.0, features_shape=[2])
    disc = MLP([4, 8, 1])

    class D(nn.Module):
        def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
            return disc(torch.cat([x, z], 1))

    obj = NonSaturatingGAN(Empirical(var=["x"]) * enc, gen, D())
    obj({"x": torch.randn(8, 2)}).mean().backward()
    assert enc.net.net.weight.grad is not None and enc.net.net.weight.grad.abs().sum() > 0
