"""NormalMixture (the MDN likelihood) against torch.distributions, scipy.stats and Monte Carlo."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.distributions as td
from scipy import stats

from deepgm.distributions import NormalMixture
from deepgm.errors import ParameterError, ShapeError


def _params(seed: int = 0, lead: tuple[int, ...] = (4, 3), k: int = 5) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"logits": torch.randn(*lead, k, generator=g), "loc": 2 * torch.randn(*lead, k, generator=g),
            "scale": torch.rand(*lead, k, generator=g) + 0.2}


class _Net(torch.nn.Module):
    def __init__(self, params: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.params = params

    def forward(self, h: torch.Tensor) -> dict[str, torch.Tensor]:
        return {k: v + 0 * h.sum() for k, v in self.params.items()}


def test_log_prob_matches_torch_mixture_same_family_summed_over_the_event() -> None:
    params = _params()
    p = NormalMixture(var=["z"], cond_var=["h"], net=_Net(params), event_ndim=1)
    x = torch.randn(4, 3)
    ref = td.MixtureSameFamily(td.Categorical(logits=params["logits"]), td.Normal(params["loc"], params["scale"]))
    torch.testing.assert_close(p.log_prob({"h": torch.zeros(4, 1), "z": x}), ref.log_prob(x).sum(-1))


def test_log_prob_matches_scipy_for_constant_parameters() -> None:
    w, mu, sd = np.array([0.2, 0.5, 0.3]), np.array([-2.0, 0.0, 3.0]), np.array([0.5, 1.0, 2.0])
    p = NormalMixture(var=["x"], logits=torch.tensor(np.log(w)), loc=torch.tensor(mu), scale=torch.tensor(sd))
    x = np.linspace(-4, 6, 11)
    ref = np.log(sum(wi * stats.norm(m, s).pdf(x) for wi, m, s in zip(w, mu, sd)))
    got = p.log_prob({"x": torch.tensor(x)})
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-6)


def test_draws_have_the_mixture_mean_and_variance_and_temperature_scales_them() -> None:
    torch.manual_seed(0)
    params = {k: v[0] for k, v in _params(lead=(1, 1), k=3).items()}  # one element: (1, K)
    p = NormalMixture(var=["x"], cond_var=["h"], event_ndim=1,
                      net=_Expand(params))
    pi = params["logits"].softmax(-1)
    mean = (pi * params["loc"]).sum(-1)
    var = (pi * (params["scale"] ** 2 + params["loc"] ** 2)).sum(-1) - mean**2
    draws = p.sample({"h": torch.zeros(40_000, 1)})["x"]
    assert draws.shape == (40_000, 1)
    assert abs(float(draws.mean()) - float(mean)) < 4 * float(var.sqrt()) / 200  # 4 standard errors
    assert abs(float(draws.var()) - float(var)) < 0.05 * float(var)
    torch.testing.assert_close(p.mixture_mean(params), mean)
    cold = NormalMixture.tempered(params, 0.05)  # τ near 0: the most probable component, narrowed by √τ
    cold_draws = p._draw_from(cold, (20_000,), False).flatten()
    top = int(pi.argmax())
    assert abs(float(cold_draws.mean()) - float(params["loc"][0, top])) < 0.05
    assert float(cold_draws.std()) == pytest.approx(float(params["scale"][0, top]) * 0.05**0.5, rel=0.05)


class _Expand(torch.nn.Module):
    def __init__(self, params: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.params = params

    def forward(self, h: torch.Tensor) -> dict[str, torch.Tensor]:
        return {k: v.expand(h.shape[0], *v.shape) for k, v in self.params.items()}


def test_bad_temperature_and_bad_scale_and_wrong_event_shape_are_refused_by_name() -> None:
    params = _params()
    with pytest.raises(ParameterError, match="temperature must be > 0"):
        NormalMixture.tempered(params, 0.0)
    with pytest.raises(ParameterError, match="'scale'"):
        NormalMixture(var=["x"], logits=torch.zeros(2), loc=torch.zeros(2), scale=torch.tensor([1.0, -1.0]))
    p = NormalMixture(var=["z"], cond_var=["h"], net=_Net(params), event_ndim=1)
    with pytest.raises(ShapeError, match="'z' has event shape"):
        p.log_prob({"h": torch.zeros(4, 1), "z": torch.zeros(4, 7)})
