"""The RBM against brute force on tiny machines: free energy, log Z, Gibbs sampling's stationary law, AIS; CD-1
and PCD raise the exact log-likelihood; bad data and options raise named errors."""

from __future__ import annotations

import itertools

import pytest
import torch

from deepgm.distributions import RBM, ais_log_partition
from deepgm.distributions.rbm import ais_betas, base_rate_logits
from deepgm.errors import ConfigError, ShapeError, SupportError
from deepgm.losses import ContrastiveDivergence
from deepgm.models.energy import RBMModel


def _states(n: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product((0.0, 1.0), repeat=n)))


def _rbm(visible: int = 8, hidden: int = 4, scale: float = 1.0, seed: int = 0) -> RBM:
    torch.manual_seed(seed)
    rbm = RBM(["x"], visible=visible, hidden=hidden, init_std=scale)
    with torch.no_grad():
        rbm.visible_bias.normal_(0, 0.5)
        rbm.hidden_bias.normal_(0, 0.5)
    return rbm


def _brute_log_z(rbm: RBM) -> float:
    """log Σ_{v,h} exp(bᵀv + cᵀh + vᵀWh): every joint state, written out independently of the RBM's code."""
    v, h = _states(rbm.visible).double(), _states(rbm.hidden).double()
    w, b, c = rbm.weight.detach().double(), rbm.visible_bias.detach().double(), rbm.hidden_bias.detach().double()
    neg_e = (v @ b)[:, None] + (h @ c)[None, :] + v @ w @ h.T
    return float(neg_e.flatten().logsumexp(0))


def test_free_energy_is_minus_log_of_the_sum_over_hidden_states() -> None:
    rbm = _rbm()
    v = _states(8)[::7]
    h = _states(4)
    joint = (v @ rbm.visible_bias)[:, None] + (h @ rbm.hidden_bias)[None] + v @ rbm.weight @ h.T
    assert torch.allclose(-rbm.free_energy(v), joint.logsumexp(-1), atol=1e-5)


@pytest.mark.parametrize(("visible", "hidden"), [(8, 4), (4, 8)])
def test_exact_log_partition_matches_the_sum_over_all_joint_states(visible: int, hidden: int) -> None:
    rbm = _rbm(visible, hidden)
    assert abs(float(rbm.log_partition_exact()) - _brute_log_z(rbm)) < 1e-4


def test_ais_matches_the_exact_log_partition() -> None:
    rbm = _rbm(scale=1.0, seed=3)
    torch.manual_seed(0)
    data = torch.bernoulli(torch.full((50, 8), 0.3))
    ais = ais_log_partition(rbm, chains=200, temperatures=1000, base_logits=base_rate_logits(data))
    exact = _brute_log_z(rbm)
    assert abs(ais.log_z - exact) < 0.05, (ais.log_z, exact)
    assert ais.log_z_lo <= exact + 0.05 and exact - 0.05 <= ais.log_z_hi
    assert ais.chains == 200 and ais.temperatures == 1000
    assert abs(ais.log_z_base - (float(torch.nn.functional.softplus(base_rate_logits(data)).sum()) + 4 * 0.6931)) < 1e-3


def test_gibbs_chains_reach_the_exact_distribution_over_visible_states() -> None:
    rbm = _rbm(visible=4, hidden=3, scale=1.0, seed=1)
    torch.manual_seed(0)
    v = rbm.gibbs(torch.zeros(20000, 4), steps=50)
    codes = (v @ torch.tensor([8.0, 4.0, 2.0, 1.0])).long()
    empirical = torch.bincount(codes, minlength=16).double() / len(v)
    states = _states(4)
    exact = torch.softmax(-rbm.free_energy(states).detach().double(), 0)
    assert float(0.5 * (empirical - exact).abs().sum()) < 0.02  # total variation; sampling error ~0.01


def _exact_loglik(rbm: RBM, data: torch.Tensor) -> float:
    return float(rbm.log_likelihood(data, rbm.log_partition_exact()).mean())


@pytest.mark.parametrize("persistent", [False, True], ids=["cd1", "pcd"])
def test_contrastive_divergence_raises_the_exact_log_likelihood(persistent: bool) -> None:
    torch.manual_seed(0)
    protos = torch.tensor([[1, 1, 1, 1, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1, 1, 1.0]])
    data = (protos[torch.randint(0, 2, (64,))] + (torch.rand(64, 8) < 0.05)) % 2
    rbm = RBM(["x"], visible=8, hidden=4, init_std=0.01)
    loss = ContrastiveDivergence(rbm, init="buffer", capacity=64, reinit_prob=0.0, steps=1) if persistent \
        else ContrastiveDivergence(rbm, init="data", steps=1)
    model = RBMModel(rbm, loss.mean(), optimizer=torch.optim.SGD, optimizer_params={"lr": 0.1})
    before = _exact_loglik(rbm, data)
    for _ in range(300):
        model.train_step({"x": data})
    after = _exact_loglik(rbm, data)
    assert after > before + 1.0, (before, after)  # the uniform start is -8 log 2 ≈ -5.5 nats


def test_non_binary_data_and_bad_options_are_named() -> None:
    rbm = RBM(["x"], visible=3, hidden=2)
    with pytest.raises(SupportError, match=r"variable 'x' must be binary \(0 or 1\); got \[0.5\]"):
        rbm.energy({"x": torch.tensor([[0.0, 1.0, 0.5]])})
    loss = ContrastiveDivergence(rbm, init="data", steps=1).mean()
    with pytest.raises(SupportError, match="must be binary"):  # the first evaluation of an objective checks too
        loss({"x": torch.full((2, 3), 2.0)})
    with pytest.raises(ShapeError, match=r"variable 'x' has shape \(2, 4\)"):
        rbm.energy({"x": torch.zeros(2, 4)})
    with pytest.raises(ConfigError, match="RBM: hidden must be an integer >= 1, got 0"):
        RBM(["x"], visible=3, hidden=0)
    with pytest.raises(ConfigError, match="chains must be an integer >= 1"):
        ais_log_partition(rbm, chains=0)
    with pytest.raises(ConfigError, match="temperatures must be an integer >= 3"):
        ais_betas(1)
    with pytest.raises(ShapeError, match=r"base_logits must have shape \(3,\)"):
        ais_log_partition(rbm, chains=2, temperatures=10, base_logits=torch.zeros(4))
