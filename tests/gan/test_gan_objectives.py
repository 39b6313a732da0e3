"""The adversarial objectives: optimal discriminators recover the density ratio, the gradient penalty's
norm, the f-GAN conjugates, clipping, shapes and errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from deepgm.distributions import Empirical, Normal
from deepgm.errors import ObjectiveError
from deepgm.losses.adversarial import AdversarialLoss, DensityRatio, LogisticDiscriminator
from deepgm.losses.gan import (
    F_DIVERGENCES,
    FGAN,
    KLGAN,
    HingeGAN,
    LeastSquaresGAN,
    MinimaxGAN,
    NonSaturatingGAN,
    Wasserstein,
    gradient_penalty,
)


class Quadratic(nn.Module):
    """A small MLP on the features (x, x²/2): the log-ratio of two Gaussians is quadratic in x."""

    def __init__(self, hidden: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x, x**2 / 2], 1))


P = Normal(var=["x"], loc=0.0, scale=1.0, features_shape=[1], name="p")
Q = Normal(var=["x"], loc=0.5, scale=1.3, features_shape=[1], name="q")
GRID = torch.linspace(-1.5, 1.5, 31)[:, None]


def _true_log_ratio(x: torch.Tensor) -> torch.Tensor:
    return P.log_prob({"x": x}) - Q.log_prob({"x": x})


def _train_discriminator(obj: AdversarialLoss, steps: int = 600, lr: float = 1e-2) -> None:
    loss = obj.discriminator_loss()
    opt = torch.optim.Adam(obj.discriminator.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, steps // 3, 0.3)
    for _ in range(steps):
        opt.zero_grad()
        loss({}).backward()
        opt.step()
        sched.step()


RATIO_OBJECTIVES = {
    "minimax": lambda d: MinimaxGAN(P, Q, d, batch_n=512),
    "non-saturating": lambda d: NonSaturatingGAN(P, Q, d, batch_n=512),
    "kl": lambda d: KLGAN(P, Q, d, batch_n=512),
    "density-ratio": lambda d: DensityRatio(P, d, q=Q, batch_n=512),
    "least-squares": lambda d: LeastSquaresGAN(P, Q, d, batch_n=512),
    **{f"f-{f}": (lambda f: lambda d: FGAN(P, Q, d, f, batch_n=512))(f) for f in F_DIVERGENCES},
}


@pytest.mark.parametrize("name", list(RATIO_OBJECTIVES))
def test_optimal_discriminator_recovers_the_log_ratio(name: str) -> None:
    obj = RATIO_OBJECTIVES[name](Quadratic())
    _train_discriminator(obj)
    with torch.no_grad():
        err = (obj.log_ratio(GRID) - _true_log_ratio(GRID)).abs().max().item()
    assert err < 0.12, (name, err)


def test_the_density_ratio_and_the_logistic_gans_share_one_logistic_discriminator() -> None:
    d = Quadratic()
    ratio = DensityRatio(P, d, q=Q, batch_n=64)
    kl, ns = KLGAN(P, Q, d, batch_n=64), NonSaturatingGAN(P, Q, d, batch_n=64)
    assert all(isinstance(o, LogisticDiscriminator) for o in (ratio, kl, ns))
    losses = []
    for obj in (ratio, kl, ns):
        torch.manual_seed(2)
        losses.append(obj.discriminator_loss()({}))
    torch.manual_seed(2)
    real, fake = P.sample({}, batch_n=64)["x"], Q.sample({}, batch_n=64)["x"]
    bce = -torch.log(torch.sigmoid(d(real))).mean() - torch.log(1 - torch.sigmoid(d(fake))).mean()
    for value in losses:
        torch.testing.assert_close(value, bce)
    torch.manual_seed(3)
    at_p = ratio({})  # T at draws of p: its mean estimates KL[p||q]
    torch.manual_seed(3)
    torch.testing.assert_close(at_p, d(P.sample({}, batch_n=64)["x"]).squeeze(-1))
    torch.testing.assert_close(ratio.log_ratio(GRID), kl.log_ratio(GRID))


@pytest.mark.parametrize("f", list(F_DIVERGENCES))
def test_fgan_optimal_T_is_f_prime_of_the_ratio(f: str) -> None:
    obj = FGAN(P, Q, Quadratic(), f, batch_n=512)
    _train_discriminator(obj)
    with torch.no_grad():
        t_star = obj.fdiv.f_prime(_true_log_ratio(GRID).exp())
        t = obj.T(GRID)
    assert (t - t_star).abs().max() < 0.15 * max(1.0, float(t_star.abs().max()))


def test_hinge_optimal_discriminator_has_the_sign_of_the_log_ratio() -> None:
    obj = HingeGAN(P, Q, Quadratic(), batch_n=512)
    _train_discriminator(obj)
    true = _true_log_ratio(GRID)
    far = true.abs() > 0.1
    with torch.no_grad():
        d = obj.critic(GRID)
    assert torch.equal(torch.sign(d[far]), torch.sign(true[far]))


# domains of t = g_f(v) on which to check f*(t) = sup_u (u t - f(u))
T_RANGES = {"kl": (-2.0, 1.5), "reverse_kl": (-3.0, -0.2), "pearson": (-1.5, 3.0), "js": (-2.0, 0.6)}


@pytest.mark.parametrize("f", list(F_DIVERGENCES))
def test_fgan_conjugates_are_the_convex_conjugates(f: str) -> None:
    fd = F_DIVERGENCES[f]
    u = torch.exp(torch.linspace(-12, 6, 400_001, dtype=torch.float64))
    fu = fd.f(u)
    t = torch.linspace(*T_RANGES[f], 15, dtype=torch.float64)
    numeric = (u[None, :] * t[:, None] - fu[None, :]).max(1).values
    assert torch.allclose(fd.conjugate(t), numeric, atol=1e-4), (fd.conjugate(t), numeric)
    assert abs(float(fd.f(torch.tensor(1.0, dtype=torch.float64)))) < 1e-12  # f(1) = 0
    # the output activation maps onto the conjugate's domain, and f' is f's derivative
    v = torch.linspace(-8, 8, 101, dtype=torch.float64)
    assert torch.isfinite(fd.conjugate(fd.activation(v))).all()
    assert torch.allclose(fd.conjugate_at(v), fd.conjugate(fd.activation(v)), atol=1e-9)
    assert torch.isfinite(fd.conjugate_at(torch.tensor([60.0, -60.0]))).all()  # float32, saturated σ
    uu = torch.linspace(0.2, 5, 9, dtype=torch.float64).requires_grad_(True)
    (g,) = torch.autograd.grad(fd.f(uu).sum(), uu)
    assert torch.allclose(g, fd.f_prime(uu.detach()), atol=1e-9)
    # log_ratio inverts T* = f'(u)
    assert torch.allclose(fd.log_ratio(fd.f_prime(uu.detach())), uu.detach().log(), atol=1e-9)


class Critic(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1) + (x**3).sum(-1)


def test_gradient_penalty_norm_matches_a_manual_per_example_gradient() -> None:
    critic = Critic()
    real, fake = torch.randn(6, 3), torch.randn(6, 3) + 1
    eps = torch.rand(6)
    pen, norm = gradient_penalty(critic, (real,), (fake,), eps=eps)
    for i in range(6):
        xi = (eps[i] * real[i] + (1 - eps[i]) * fake[i]).clone().requires_grad_(True)
        (g,) = torch.autograd.grad(critic(xi[None]).sum(), xi)
        assert torch.allclose(norm[i], g.norm(), atol=1e-5)
        assert torch.allclose(pen[i], (g.norm() - 1) ** 2, atol=1e-5)
    # the penalty trains the critic: it has a gradient with respect to the critic's weights (not the
    # output bias, which does not change ∇_x D)
    pen.mean().backward()
    assert critic.net[0].weight.grad.abs().sum() > 0 and critic.net[2].weight.grad.abs().sum() > 0


def test_gradient_penalty_of_a_linear_critic_is_its_weight_norm() -> None:
    lin = nn.Linear(4, 1)
    _, norm = gradient_penalty(lambda x: lin(x).squeeze(-1), (torch.randn(5, 4),), (torch.randn(5, 4),))
    assert torch.allclose(norm, lin.weight.norm().expand(5), atol=1e-5)


def test_gradient_penalty_over_two_variables_and_a_condition() -> None:
    class Joint(nn.Module):
        def forward(self, x: torch.Tensor, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return (2 * x).sum(-1) + (3 * z).sum(-1) + 100 * y  # y is a condition: not differentiated

    x, z, y = torch.randn(4, 2), torch.randn(4, 1), torch.ones(4)
    _, norm = gradient_penalty(Joint(), (x, z), (x + 1, z - 1), (y,))
    assert torch.allclose(norm, torch.full((4,), math.sqrt(4 + 4 + 9)), atol=1e-5)


def test_wgan_gp_discriminator_loss_includes_the_penalty_and_clipping_clamps() -> None:
    data = Empirical(var=["x"])
    gen = Normal(var=["x"], loc=0.0, scale=1.0, features_shape=[3])
    lin = nn.Linear(3, 1)
    with torch.no_grad():
        lin.weight.fill_(2.0)
        lin.bias.zero_()
    x = torch.randn(8, 3)
    gp = Wasserstein(data, gen, lin, gp_weight=10.0)
    plain = Wasserstein(data, gen, lin, clip=0.01)
    torch.manual_seed(1)
    with_gp = gp.discriminator_loss()({"x": x})
    torch.manual_seed(1)
    without = plain.discriminator_loss()({"x": x})
    # ‖∇D‖ = ‖w‖ = 2√3 everywhere, so the penalty is 10 (2√3 - 1)²
    assert torch.allclose(with_gp - without, torch.tensor(10 * (2 * math.sqrt(3) - 1) ** 2), atol=1e-4)
    plain.after_discriminator_step()
    assert lin.weight.abs().max() <= 0.01 and lin.bias.abs().max() <= 0.01
    with pytest.raises(ObjectiveError, match="clip"):
        Wasserstein(data, gen, lin)


def test_generator_term_is_per_example_and_draws_as_many_as_the_data() -> None:
    data = Empirical(var=["x"])
    gen = Normal(var=["x"], loc=0.0, scale=1.0, features_shape=[2])
    d = nn.Linear(2, 1)
    obj = NonSaturatingGAN(data, gen, d)
    out = obj({"x": torch.randn(7, 2)})
    assert out.shape == (7,)
    assert "NS_G[" in str(obj) and r"\mathcal{L}" in obj.to_latex()
    assert obj.input_var == [] or "x" in obj.own_inputs()


def test_a_batch_expectation_with_detached_draws_can_still_be_detached_as_an_expression() -> None:
    from deepgm.losses import BatchE, LogProb

    gen = Normal(var=["x"], loc=0.0, scale=1.0, features_shape=[2])
    term = BatchE(gen, LogProb(gen), detach=True)  # its `detach` flag once hid Loss.detach()
    torch.manual_seed(0)
    value = term({"x": torch.zeros(5, 2)})
    torch.manual_seed(0)
    torch.testing.assert_close(term.detach()({"x": torch.zeros(5, 2)}), value)
    assert value.shape == (5,) and "sg" in str(term)


def test_errors_name_what_is_wrong() -> None:
    data = Empirical(var=["x"])
    gen = Normal(var=["z"], loc=0.0, scale=1.0, features_shape=[2])
    with pytest.raises(ObjectiveError, match="same variables"):
        MinimaxGAN(data, gen, nn.Linear(2, 1))
    with pytest.raises(ObjectiveError, match="nn.Module"):
        MinimaxGAN(data, gen.replace_var(z="x"), lambda x: x)  # type: ignore[arg-type]
    with pytest.raises(ObjectiveError, match="unknown divergence"):
        FGAN(data, gen.replace_var(z="x"), nn.Linear(2, 1), "hellinger")
    bad = MinimaxGAN(data, gen.replace_var(z="x"), nn.Linear(2, 3))
    with pytest.raises(ObjectiveError, match="one value per example"):
        bad({"x": torch.randn(4, 2)})
    with pytest.raises(ObjectiveError, match="density ratio"):
        Wasserstein(data, gen.replace_var(z="x"), nn.Linear(2, 1), clip=0.1).log_ratio(torch.zeros(1, 2))
