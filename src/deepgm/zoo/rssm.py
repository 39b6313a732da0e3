"""A recurrent state-space model (RSSM; PlaNet, Hafner et al. 2019) as a world model's memory over V's latents.

A belief-state alternative to World Models' MDN-RNN (seed 002, "shaping belief states"): the observations
are V's latents ``o_t = z_t`` (vectors, not pixels). A deterministic state ``h`` and a stochastic state
``s`` step as

    h_{t+1} = GRU(h_t, φ([s_t, a_t])),   prior p(s_t|h_t),   posterior q(s_t|h_t, o_t),
    observation p(o_t|h_t, s_t) = N(μ, σ²),   termination p(d_t|h_{t+1}) = Bern(·)

(``h_0`` learned; every scale ``softplus(·) + floor``). On a batch of
:func:`~deepgm.models.world.latent_batches` the observations are ``o_0 = z[:, 0]`` and
``o_{t+1} = z_next[:, t]``; ``d_t = done[:, t]`` ends the episode after ``a_t``, and ``p(d_t|h_{t+1})`` reads
only ``h_{t+1}``, a function of ``z_{≤t}`` and ``a_{≤t}`` (the end's ``z_next`` is a repeated latent, not an
observation: it is not scored). The objective, to minimise, is the negative ELBO with free nats ``F``:

    L = -1/N Σ_b [ Σ_{t=0}^{T} w_t ( E_q log p(o_t|h_t, s_t) - max(D_KL[q(s_t|h_t,o_t) || p(s_t|h_t)], F) )
                   + Σ_{t<T} m_t (1 + (ω - 1) d_t) E_q log p(d_t|h_{t+1})
                   - β/K Σ_{k=1}^{K} Σ_{t>k} w_t E max(D_KL[sg q(s_t|h_t,o_t) || p(s_t|g^k_t)], F) ]

where ``m = mask``, ``w_0 = m_0``, ``w_{t+1} = m_t (1 - d_t)`` (a next latent is scored on live steps that did
not end the episode), ``N = Σ m`` (live transitions), ``ω`` = ``done_weight`` and, with ``overshooting = K > 0``,
latent overshooting (PlaNet §4): ``g^k_t`` is the deterministic state at ``t`` after ``k`` open-loop steps of
the prior from the filtered state at ``t - k - 1`` (:class:`~deepgm.nn.rssm.OpenLoopRollout`; PlaNet's
distance ``d = k + 1``, the ELBO's own KL being ``d = 1``), compared with the posterior under a stop-gradient
``sg`` (as PlaNet's code), each distance weighted ``β/K`` (``β`` = ``overshooting_weight``).

Held out, :meth:`RSSM.next_latent_scores` reports the ELBO of the next latents ``z_next`` in nats per latent
dimension over the steps that score one: ``Σ_{t≥1} w_t (E_q log p(o_t|h_t,s_t) - D_KL[q||p]) / (D Σ_t w_t)`` —
no free nats; the sum over a sequence is a lower bound on ``log p(z_1..z_T | z_0, a)`` under the model that
:meth:`~RSSM.observe` and :meth:`~RSSM.imagine` step, the quantity whose exact value the MDN-RNN reports.

The RSSM is a :class:`~deepgm.models.world.LatentDynamics`: its state is ``(h,)``; :meth:`~RSSM.observe` draws
``s ~ q(s|h, z)`` and steps ``h`` with the action; :meth:`~RSSM.features` is ``h`` (the controller sees
``[z_t, h_t]``, from which ``q(s_t|h_t, z_t)`` is computed); :meth:`~RSSM.imagine` draws ``s' ~ p(s|h)`` and the
next latent ``z' ~ p(o|h, s')`` with both variances scaled by the temperature ``τ`` (standard deviations by
``√τ``: ``τ = 0`` is the deterministic path through the means), ``z'`` the observation's mean with
``mean=True``, and ``p(done) = p(d|h)`` (trained with ends weighted ``ω`` times, the head's odds are ``ω`` times
too high: they are divided by ``ω``, here and in the held-out cross-entropy).

>>> import torch
>>> model = build_rssm(RSSMConfig(deterministic=8, stochastic=3, hidden=8), z_dim=4, action_dim=1)
>>> print(model.loss)  # doctest: +NORMALIZE_WHITESPACE
-E_{q(h,s,h_next|o,a)}[sum(w_obs * (log p(o|h,s) - max(D_KL[q(s|h,o)||p(s|h)], 3))) + sum(w_done * log
p(done|h_next))]
>>> batch = {"z": torch.randn(2, 5, 4), "a": torch.randn(2, 5, 1), "z_next": torch.randn(2, 5, 4),
...          "done": torch.zeros(2, 5), "mask": torch.ones(2, 5)}
>>> loss = model.train_step(batch)
>>> state = model.observe(model.initial_state(2), torch.zeros(2, 4), torch.zeros(2, 1))
>>> z_next, p_done = model.imagine(state, temperature=0.5)
>>> z_next.shape, p_done.shape, model.features(state).shape
(torch.Size([2, 4]), torch.Size([2]), torch.Size([2, 8]))
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from deepgm.distributions import Bernoulli, Binding, Distribution, Env, Normal
from deepgm.errors import ConfigError, ObjectiveError, ShapeError
from deepgm.losses import KL, E, LogProb, Loss, Parameter, maximum
from deepgm.models import Model
from deepgm.models.sequential import trim_to_longest
from deepgm.models.world import State
from deepgm.nn import MLP, LogitsHead, NormalHead
from deepgm.nn.rssm import OpenLoopRollout, PosteriorHead, RSSMFilter, RSSMTransition, StopGradient
from deepgm.zoo.options import at_least, between, check_config, non_negative, option, positive

__all__ = ["RSSMConfig", "RSSM", "build_rssm", "Rollout"]

Batch = Mapping[str, torch.Tensor]


@dataclass
class RSSMConfig:
    """Options of the RSSM (sizes as PlaNet's: a train step at B=32, T=50 on V's 64-D latents is about as
    fast on a CPU as the MDN-RNN's of 256 LSTM units, so the CPU defaults are the paper's)."""

    deterministic: int = option(200, at_least(1))  # GRU state h
    stochastic: int = option(30, at_least(1))  # s
    hidden: int = option(200, at_least(1))  # the dense layers of transition, prior, posterior, heads
    overshooting: int = option(0, at_least(0))  # K: latent overshooting over k = 1..K open-loop steps (0: off)
    overshooting_weight: float = option(1.0, non_negative())  # β: the K distances' KL terms weigh β/K each
    free_nats: float = option(3.0, non_negative())  # F: each step's KL is not pushed below F nats
    min_std: float = option(0.1, positive())  # the floor of the prior's and posterior's scales
    min_obs_std: float = option(0.01, positive())  # the floor of the observation model's scale
    done_weight: float = option(1.0, between(1.0, math.inf))  # ω: ends weigh ω times (1: the plain likelihood)
    lr: float = option(1e-3, positive())
    grad_clip: float = option(100.0, positive())  # global gradient norm
    seq_len: int = option(50, at_least(2))  # training windows of this many transitions (the caller's batches)


class Rollout(Distribution):
    """States drawn together by a network that samples as it runs (a filter's trajectory ``h_{0:T}, s_{0:T}``,
    an open-loop rollout of the prior): ``net(*conditions, reparam=...)`` returns the values of ``var`` in
    order. Its density is not needed (the objective scores each step's factors), so it has none here."""

    has_density = False

    def __init__(self, var: Sequence[str], cond_var: Sequence[str], net: nn.Module, name: str = "q") -> None:
        super().__init__(var, cond_var, name)
        self.net = net

    def new_bindings(self, env: Env, sample_shape: tuple[int, ...], batch_n: int | None,
                     reparam: bool) -> tuple[Binding, ...]:
        if sample_shape or any(env.sdims.get(n, 0) for n in self.cond_var):
            raise ObjectiveError(f"{self.owner}: draws one trajectory per sequence; it takes no sample dimensions")
        values = self.net(*[env.get(n, self) for n in self.cond_var], reparam=reparam)
        if len(values) != len(self.var):
            raise ShapeError(f"{self.owner}: its network returned {len(values)} values for {self.var}")
        return tuple((v, value, 0, env.new_version()) for v, value in zip(self.var, values, strict=True))


class CalibratedLogits(nn.Module):
    """A termination head trained with ends weighted ``ω`` times predicts odds ``ω`` times too high
    (``q/(1-q) = ω p/(1-p)``): ``{"logits": logit - log ω}`` are those of the probability ``p`` itself."""

    def __init__(self, head: nn.Module, weight: float) -> None:
        super().__init__()
        self.head, self.shift = head, math.log(weight)

    def forward(self, h: torch.Tensor) -> dict[str, torch.Tensor]:
        logits: torch.Tensor = self.head(h)["logits"]
        return {"logits": logits - self.shift if self.shift else logits}


class RSSM(Model):
    """The RSSM of the module docstring: a :class:`~deepgm.models.Model` trained by ``train_step`` on
    :func:`~deepgm.models.world.latent_batches` batches, and a :class:`~deepgm.models.world.LatentDynamics`."""

    def __init__(self, cfg: RSSMConfig, z_dim: int, action_dim: int) -> None:
        det, sto, hid = cfg.deterministic, cfg.stochastic, cfg.hidden
        transition = RSSMTransition(sto, action_dim, det, hid)
        posterior = PosteriorHead(det, z_dim, hid, sto, cfg.min_std)
        prior_net = NormalHead(MLP([det, hid], "elu", out_activation="elu"), hid, sto, min_scale=cfg.min_std)
        obs_net = NormalHead(MLP([det + sto, hid], "elu", out_activation="elu"), hid, z_dim,
                             min_scale=cfg.min_obs_std)
        # (..., H) -> (..., 1) -> (...): the probability that the episode ends
        done_net = LogitsHead(nn.Sequential(MLP([det, hid, 1], "elu"), nn.Flatten(-2)))
        rnn = RSSMFilter(transition, posterior)

        trajectory = Rollout(var=["h", "s", "h_next"], cond_var=["o", "a"], net=rnn, name="q")
        q = Normal(var=["s"], cond_var=["h", "o"], net=posterior, name="q")
        prior = Normal(var=["s"], cond_var=["h"], net=prior_net, name="p")
        decoder = Normal(var=["o"], cond_var=["h", "s"], net=obs_net, name="p")
        p_done = Bernoulli(var=["done"], cond_var=["h_next"], net=done_net, event_ndim=0, name="p")

        def clipped(kl: Loss) -> Loss:
            return maximum(kl, cfg.free_nats) if cfg.free_nats > 0 else kl

        w_obs, w_done = Parameter("w_obs"), Parameter("w_done")
        per_step = (w_obs * (LogProb(decoder) - clipped(KL(q, prior)))).sum() + (w_done * LogProb(p_done)).sum()
        dists: list[Distribution] = [trajectory, q, prior, decoder, p_done]
        if cfg.overshooting > 0:
            rollout = Rollout(var=["g"], cond_var=["h", "a"], name="p_{open}",
                              net=OpenLoopRollout(transition, prior_net, cfg.overshooting))
            q_sg = Normal(var=["s"], cond_var=["h", "o"], net=StopGradient(posterior), name="sg[q]")
            p_open = Normal(var=["s"], cond_var=["g"], net=prior_net, name="p")
            per_step = per_step - E(rollout, (Parameter("w_os") * clipped(KL(q_sg, p_open))).sum())
            dists += [rollout, q_sg, p_open]
        super().__init__(-E(trajectory, per_step), dists, optimizer=torch.optim.Adam,
                         optimizer_params={"lr": cfg.lr, "eps": 1e-4}, clip_grad_norm=cfg.grad_clip)
        self.z_dim, self.action_dim, self.feature_dim = z_dim, action_dim, det
        self.config = cfg
        self.rnn, self.transition, self.posterior = rnn, transition, posterior
        self.prior_net, self.obs_net = prior_net, obs_net
        self.done_net = CalibratedLogits(done_net, cfg.done_weight)  # p(done|h), undoing done_weight
        # what the held-out scores evaluate, in one Env with the trajectory drawn once
        p_end = Bernoulli(var=["done"], cond_var=["h_next"], net=self.done_net, event_ndim=0, name="p")
        self._step_elbo = E(trajectory, LogProb(decoder) - KL(q, prior))
        self._done_log_prob = E(trajectory, LogProb(p_end))

    # -- batches ----------------------------------------------------------------------------------------
    def prepare(self, batch: Batch) -> dict[str, torch.Tensor]:
        """The objective's inputs from a :func:`~deepgm.models.world.latent_batches` batch (cut after its
        longest sequence): the observations ``o`` (B, T+1, D), the actions ``a``, ``done``, and the weights
        ``w_obs`` (B, T+1), ``w_done`` (B, T) and, with overshooting, ``w_os`` (K, B, T+1), each over ``N``."""
        _check_batch(batch, self.z_dim, self.action_dim)
        b = trim_to_longest({k: batch[k] for k in ("z", "a", "z_next", "done", "mask")})
        z, z_next, done, mask = b["z"], b["z_next"], b["done"], b["mask"]
        if mask.shape[1] == 0:  # trimmed to nothing
            raise ShapeError("RSSM: the batch's 'mask' marks no live step (every sequence is empty)")
        n = mask.sum().clamp(min=1.0)
        w_obs = torch.cat([mask[:, :1], mask * (1 - done)], 1) / n
        out = {"o": torch.cat([z[:, :1], z_next], 1), "a": b["a"], "done": done, "w_obs": w_obs,
               "w_done": mask * (1 + (self.config.done_weight - 1) * done) / n}
        k = self.config.overshooting
        if k > 0:  # the target at t of distance k counts when t > k (its rollout starts at a posterior state)
            t = torch.arange(w_obs.shape[1], device=w_obs.device)
            later = (t > torch.arange(1, k + 1, device=w_obs.device).unsqueeze(1)).to(w_obs.dtype)  # (K, T+1)
            out["w_os"] = later.unsqueeze(1) * w_obs * (self.config.overshooting_weight / k)
        return out

    def _value(self, inputs: Mapping[str, Any], params: Mapping[str, Any], target: Any = None) -> torch.Tensor:
        if "w_obs" not in inputs:  # a latent_batches batch (prepared inputs pass as they are)
            inputs = self.prepare(inputs)
        return super()._value(inputs, params, target)

    # -- held-out scores --------------------------------------------------------------------------------
    @torch.no_grad()
    def score_sums(self, batch: Batch) -> dict[str, float]:
        """Totals on one batch (one draw of the posterior trajectory): the ELBO of the scored next latents
        (nats, summed over their dimensions and steps), how many steps score one, the log-probability of
        ``done`` on live steps and how many live steps there are."""
        inputs = self.prepare(batch)
        with self.evaluating():
            env = Env(inputs)
            elbo = self._step_elbo._eval(env)[:, 1:]  # (B, T): the terms of o_1..o_T, i.e. of z_next
            lp_done = self._done_log_prob._eval(env)
        trimmed = trim_to_longest({"done": batch["done"], "mask": batch["mask"]})
        live = trimmed["mask"]
        scored = live * (1 - trimmed["done"])
        return {"next_latent_elbo": float((elbo * scored).sum()), "scored_steps": float(scored.sum()),
                "done_log_prob": float((lp_done * live).sum()), "live_steps": float(live.sum())}

    def next_latent_scores(self, batch: Batch) -> dict[str, float]:
        """On one batch: the ELBO of the next latent in nats per latent dimension over the steps that score
        one (live, not the episode's end) and the cross-entropy of ``done`` in nats per live step."""
        sums = self.score_sums(batch)
        return _scores(sums, self.z_dim)

    def evaluate(self, test_data: Batch, *, k: int = 1, info: Any = None) -> dict[str, Any]:
        """:meth:`next_latent_scores` over all of ``test_data`` (one batch dict of many sequences, taken
        64 at a time), each total averaged over ``k`` draws of the posterior trajectories."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"RSSM.evaluate: k must be an integer of at least 1, got {k!r}")
        totals: dict[str, float] = {}
        n = len(test_data["z"])
        for _ in range(k):
            for i in range(0, n, 64):
                for name, v in self.score_sums({key: x[i:i + 64] for key, x in test_data.items()}).items():
                    totals[name] = totals.get(name, 0.0) + v
        return {**_scores(totals, self.z_dim), "scored_steps": int(totals["scored_steps"] / k), "draws": k}

    # -- LatentDynamics ---------------------------------------------------------------------------------
    def initial_state(self, n: int) -> State:
        """``(h_0,)`` for ``n`` sequences, ``h_0`` (n, deterministic) the learned first state."""
        h0 = self.rnn.h0
        return (h0.expand(n, h0.shape[0]).contiguous(),)

    def observe(self, state: State, z: torch.Tensor, a: torch.Tensor) -> State:
        """``s ~ q(s|h, z)``, then ``h' = GRU(h, φ([s, a]))``: the state ``(h',)`` before the next latent."""
        h = state[0]
        if z.shape != (h.shape[0], self.z_dim) or a.shape != (h.shape[0], self.action_dim):
            raise ShapeError(f"RSSM.observe: z must be ({h.shape[0]}, {self.z_dim}) and a ({h.shape[0]}, "
                             f"{self.action_dim}) for a state of {h.shape[0]} sequences, got {tuple(z.shape)} and "
                             f"{tuple(a.shape)}")
        loc, scale = self.posterior.step(h, self.posterior.embed(z))
        s = loc + scale * torch.randn_like(loc)
        return (self.transition.step(h, s, self.transition.action_features(a)),)

    def features(self, state: State) -> torch.Tensor:
        """``h`` (n, deterministic), the deterministic state: beside it the controller sees ``z``, and the
        belief over ``s``, ``q(s|h, z)``, is a function of the two."""
        return state[0]

    def imagine(self, state: State, temperature: float = 1.0, mean: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """``s' ~ N(μ_p, τ σ_p²)`` from the prior ``p(s|h)``, the next latent ``z' ~ N(μ_o, τ σ_o²)`` from
        ``p(o|h, s')`` (its mean ``μ_o`` with ``mean=True``) and ``p(done|h)``: ``(n, D)`` and ``(n,)``."""
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not (
                math.isfinite(temperature) and temperature >= 0):
            raise ValueError(f"RSSM.imagine: temperature must be a finite number of at least 0, got {temperature!r}")
        h = state[0]
        root = math.sqrt(temperature)
        prior = self.prior_net(h)
        s = prior["loc"] + root * prior["scale"] * torch.randn_like(prior["loc"]) if root else prior["loc"]
        obs = self.obs_net(h, s)
        z = obs["loc"] if mean or not root else obs["loc"] + root * obs["scale"] * torch.randn_like(obs["loc"])
        return z, torch.sigmoid(self.done_net(h)["logits"])


def _scores(sums: Mapping[str, float], z_dim: int) -> dict[str, float]:
    return {"next_latent_elbo_per_dim": sums["next_latent_elbo"] / max(sums["scored_steps"], 1.0) / z_dim,
            "done_cross_entropy": -sums["done_log_prob"] / max(sums["live_steps"], 1.0)}


def _check_batch(batch: Batch, z_dim: int, action_dim: int) -> None:
    """Refuse a batch that is not ``{"z": (B,T,D), "a": (B,T,A), "z_next": (B,T,D), "done": (B,T), "mask": (B,T)}``."""
    keys = ("z", "a", "z_next", "done", "mask")
    missing = [k for k in keys if k not in batch]
    if missing:
        raise ShapeError(f"RSSM needs batches {{'z': (B, T, {z_dim}), 'a': (B, T, {action_dim}), 'z_next': (B, T, "
                         f"{z_dim}), 'done': (B, T), 'mask': (B, T)}}; missing {missing} (got {sorted(batch)})")
    z, mask = batch["z"], batch["mask"]
    if mask.dim() != 2 or mask.shape[1] < 1:
        raise ShapeError(f"RSSM: 'mask' must be (B, T), got {tuple(mask.shape)}")
    bt = tuple(mask.shape)
    want = {"z": (*bt, z_dim), "a": (*bt, action_dim), "z_next": (*bt, z_dim), "done": bt}
    for k, shape in want.items():
        if tuple(batch[k].shape) != shape:
            raise ShapeError(f"RSSM: '{k}' must be {shape} (B, T from 'mask'), got {tuple(batch[k].shape)}")
    if not z.is_floating_point():
        raise ShapeError(f"RSSM: 'z' must be floating point, got {z.dtype}")


def build_rssm(cfg: RSSMConfig, z_dim: int, action_dim: int) -> RSSM:
    """The RSSM of ``cfg`` over ``z_dim`` latents and ``action_dim`` actions (options checked first)."""
    check_config(cfg)
    for name, value in (("z_dim", z_dim), ("action_dim", action_dim)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError("build_rssm", name, "an integer of at least 1", value)
    return RSSM(cfg, z_dim, action_dim)
