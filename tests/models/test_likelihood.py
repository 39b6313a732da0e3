"""log_likelihood: equal to a naive importance-sampling estimate on the same draws, whatever the chunking;
convergent to the exact log p(x) of a linear-Gaussian model; one encoder pass per data point; bounded memory."""

from __future__ import annotations

import math
import sys
import weakref
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).parents[1] / "losses"))
from linear_gaussian import LinearGaussian  # noqa: E402

from deepgm.distributions import Bernoulli, Distribution, Env, Normal
from deepgm.distributions.base import Binding
from deepgm.errors import ObjectiveError
from deepgm.models import VAE, likelihood, log_likelihood
from deepgm.models.likelihood import _bernoulli_log_prob

D, Z, H = 12, 3, 16


class Encoder(nn.Module):
    """``q(z|x[,y])``: loc and scale from a small tanh MLP."""

    def __init__(self, extra: int = 0) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(D + extra, H), nn.Tanh())
        self.loc, self.scale = nn.Linear(H, Z), nn.Linear(H, Z)
        self.calls = 0

    def forward(self, x: torch.Tensor, *y: torch.Tensor) -> dict[str, torch.Tensor]:
        self.calls += 1
        h = self.body(torch.cat([x, *y], -1))
        return {"loc": self.loc(h), "scale": F.softplus(self.scale(h)) + 0.1}


class Decoder(nn.Module):
    """``p(x|z[,y])``: Bernoulli logits, or a Normal's loc and scale (``normal=True``)."""

    def __init__(self, normal: bool = False, extra: int = 0) -> None:
        super().__init__()
        self.normal = normal
        self.net = nn.Sequential(nn.Linear(Z + extra, H), nn.Tanh(), nn.Linear(H, 2 * D if normal else D))
        self.outputs: list[weakref.ref[torch.Tensor]] = []
        self.most_alive = 0  # the most earlier outputs still alive when the decoder was called

    def forward(self, z: torch.Tensor, *y: torch.Tensor) -> dict[str, torch.Tensor]:
        self.most_alive = max(self.most_alive, sum(r() is not None for r in self.outputs))
        if y:
            y = (y[0].expand(*z.shape[:-1], y[0].shape[-1]),)
        out = self.net(torch.cat([z, *y], -1))
        self.outputs.append(weakref.ref(out))
        if self.normal:
            loc, s = out.chunk(2, -1)
            return {"loc": loc, "scale": F.softplus(s) + 0.1}
        return {"logits": out}


class Recorder(Distribution):
    """``q`` itself, remembering the values of every evaluation it drew in (the draws and the data)."""

    def __init__(self, q: Distribution) -> None:
        super().__init__(q.var, q.cond_var, q.name)
        self.q = q
        self.records: list[dict[str, torch.Tensor]] = []

    def new_bindings(self, env: Env, sample_shape: tuple[int, ...], batch_n: int | None,
                     reparam: bool) -> tuple[Binding, ...]:
        self.q.draw_into(env, sample_shape, batch_n, reparam)
        self.records.append(dict(env.values))
        return tuple((v, env.values[v], env.sdims.get(v, 0), env.versions[v]) for v in self.q.var)

    def log_prob_at(self, env: Env, detach_params: bool = False) -> torch.Tensor:
        return self.q.log_prob_at(env, detach_params)


def _model(normal: bool = False, conditional: bool = False) -> tuple[Any, ...]:
    extra = 2 if conditional else 0
    cond = ["y"] if conditional else []
    enc, dec = Encoder(extra), Decoder(normal, extra)
    q = Normal(var=["z"], cond_var=["x", *cond], net=enc, name="q")
    family = Normal if normal else Bernoulli
    p = family(var=["x"], cond_var=["z", *cond], net=dec, name="p")
    prior = Normal(var=["z"], loc=0.0, scale=1.0, features_shape=[Z], name="p_{prior}")
    return p, prior, q, enc, dec


def _naive(records: list[dict[str, torch.Tensor]], enc: Encoder, dec: Decoder, k: int) -> torch.Tensor:
    """The textbook estimate in plain torch at the recorded draws: per data point,
    ``logsumexp_k(log p(x|z_k) + log p(z_k) - log q(z_k|x)) - log k``."""
    blocks: dict[int, list[dict[str, torch.Tensor]]] = {}
    for r in records:
        blocks.setdefault(id(r["x"]), []).append(r)
    out = []
    with torch.no_grad():
        for recs in blocks.values():
            x, y = recs[0]["x"], [recs[0]["y"]] if "y" in recs[0] else []
            post = enc(x, *y)
            qz = torch.distributions.Normal(post["loc"], post["scale"])
            log_w = []
            for r in recs:
                z = r["z"]
                params = dec(z, *y)
                px = (torch.distributions.Normal(params["loc"], params["scale"]) if "loc" in params
                      else torch.distributions.Bernoulli(logits=params["logits"]))
                log_pxz = px.log_prob(x.expand_as(params.get("loc", params.get("logits")))).sum(-1)
                log_pz = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
                log_w.append(log_pxz + log_pz - qz.log_prob(z).sum(-1))
            all_w = torch.cat(log_w)
            assert all_w.shape == (k, len(x))  # every data point got its k draws
            out.append(all_w.logsumexp(0) - math.log(k))
    return torch.cat(out)


def _data(n: int = 10, conditional: bool = False) -> dict[str, torch.Tensor]:
    data = {"x": torch.bernoulli(torch.full((n, D), 0.3))}
    if conditional:
        data["y"] = torch.randn(n, 2)
    return data


LAYOUTS = [  # (chunk, batch_size, rows): one pass; draws chunked; data points blocked; both, uneven
    (None, None, 10_000), (7, None, 10_000), (None, 3, 21), (13, 4, 2048), (1, 1, 2048), (50, 10, 2048),
    (None, None, 16),
]


@pytest.mark.parametrize("normal", [False, True], ids=["bernoulli", "normal"])
@pytest.mark.parametrize(("chunk", "batch_size", "rows"), LAYOUTS)
def test_equals_naive_estimate_on_the_same_draws(normal: bool, chunk: int | None, batch_size: int | None,
                                                 rows: int) -> None:
    p, prior, q, enc, dec = _model(normal)
    rec = Recorder(q)
    data, k = _data(), 50
    est = log_likelihood(p * prior, rec, data, k=k, chunk=chunk, batch_size=batch_size, rows=rows)
    assert est.shape == (10,)
    torch.testing.assert_close(est, _naive(rec.records, enc, dec, k), rtol=1e-5, atol=1e-4)


def test_conditions_are_sliced_with_the_data() -> None:
    p, prior, q, enc, dec = _model(conditional=True)
    rec = Recorder(q)
    data = _data(conditional=True)
    est = log_likelihood(p * prior, rec, data, k=20, chunk=6, batch_size=3)
    torch.testing.assert_close(est, _naive(rec.records, enc, dec, 20), rtol=1e-5, atol=1e-4)


def test_vae_log_likelihood_is_the_estimate_of_its_joint_and_encoder() -> None:
    p, prior, q, _, _ = _model()
    vae = VAE(q, p, prior)
    x = _data()["x"]
    torch.manual_seed(3)
    a = vae.log_likelihood(x, k=30, chunk=7, batch_size=4)
    torch.manual_seed(3)
    b = log_likelihood(vae.joint, vae.encoder, {"x": x}, k=30, chunk=7, batch_size=4)
    assert torch.equal(a, b)
    assert not a.requires_grad


def test_encoder_runs_once_per_block_and_passes_do_not_pile_up() -> None:
    p, prior, q, enc, dec = _model()
    log_likelihood(p * prior, q, _data(), k=50, chunk=10, batch_size=2)  # 5 blocks × 5 passes
    assert enc.calls == 5
    assert len(dec.outputs) == 25
    assert dec.most_alive == 0  # each pass's decoder output is gone before the next pass runs


@pytest.mark.parametrize("slice_elements", [1 << 18, 5 * D], ids=["one-slice", "slices"])
@pytest.mark.parametrize("grey", [False, True], ids=["binary", "grey"])
def test_bernoulli_fast_path_equals_the_factor_log_density(grey: bool, slice_elements: int,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(likelihood, "_SLICE_ELEMENTS", slice_elements)
    f = Bernoulli(var=["x"], cond_var=["z"], net=Decoder(), name="p")
    x = torch.rand(5, D) if grey else torch.bernoulli(torch.full((5, D), 0.5))
    env = Env({"x": x})
    env.set("z", 4 * torch.randn(7, 5, Z), 1)
    fast = _bernoulli_log_prob(f, env)
    assert fast is not None
    torch.testing.assert_close(fast, f.log_prob_at(env), rtol=1e-6, atol=1e-5)


def test_bernoulli_fast_path_image_events_and_fallbacks() -> None:
    class Image(nn.Module):
        def forward(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"logits": z.sum(-1, keepdim=True)[..., None, None].expand(*z.shape[:-1], 1, 2, 3) * 2}

    f = Bernoulli(var=["x"], cond_var=["z"], net=Image(), name="p", event_ndim=3)
    env = Env({"x": torch.bernoulli(torch.full((4, 1, 2, 3), 0.5))})
    env.set("z", torch.randn(6, 4, Z), 1)
    fast = _bernoulli_log_prob(f, env)
    assert fast is not None and fast.shape == (6, 4)
    torch.testing.assert_close(fast, f.log_prob_at(env), rtol=1e-6, atol=1e-5)
    drawn = Env({"z": torch.randn(4, Z)})  # x itself drawn (with sample dims): the factor's own path
    drawn.set("x", torch.ones(6, 4, D), 1)
    assert _bernoulli_log_prob(Bernoulli(var=["x"], cond_var=["z"], net=Decoder()), drawn) is None
    probs = Bernoulli(var=["x"], probs=torch.full((D,), 0.3))  # probs, not logits
    assert _bernoulli_log_prob(probs, Env({"x": torch.ones(4, D)})) is None


def test_converges_to_the_exact_log_likelihood_of_a_linear_gaussian() -> None:
    lg = LinearGaussian()
    z = torch.randn(32, lg.dz)
    x = z @ lg.W.T + lg.b + lg.sigma * torch.randn(32, lg.dx)
    p, prior, q = lg.distributions()
    exact = lg.exact_log_px(x)
    est = log_likelihood(p * prior, q, {"x": x}, k=5000, rows=4096)
    assert est.shape == (32,)
    assert float((est - exact).abs().max()) < 0.05
    assert abs(float(est.mean() - exact.mean())) < 0.01
    few = log_likelihood(p * prior, q, {"x": x}, k=3)
    assert float(few.mean()) < float(est.mean())  # a few draws: a looser bound on average


@pytest.mark.parametrize("option", ["k", "chunk", "batch_size", "rows"])
def test_non_positive_options_are_named(option: str) -> None:
    p, prior, q, _, _ = _model()
    with pytest.raises(ObjectiveError, match=f"{option} must be a positive integer"):
        log_likelihood(p * prior, q, _data(), **{"k": 5, option: 0})


def test_proposal_variables_must_be_in_the_joint() -> None:
    p, _, q, _, _ = _model()
    with pytest.raises(ObjectiveError, match="lacks"):
        log_likelihood(p, q, _data(), k=5)
