#!/usr/bin/env python
"""Reference sequence models for deepgm's sequential benchmarks (issue 11).

Three hand-made references that ``benchmarks/sequential.py`` trains with one torch optimizer loop:

* :class:`TorchDMM`: the Deep Markov Model (Krishnan, Shalit & Sontag, AAAI 2017) in plain PyTorch, with the
  layer sizes of Pyro's DMM tutorial (z 100, emission 100, transition 200, backward RNN 600).
* :class:`PyroDMM`: the same model and guide written with Pyro primitives; its loss is Pyro's
  ``TraceMeanField_ELBO().differentiable_loss``. Its ``.module`` has the same layout as :class:`TorchDMM`, so a
  ``TorchDMM`` state dict loads into it.
* :class:`TorchVRNN`: the VRNN (Chung et al., NeurIPS 2015), LSTM hidden 128, z 32, features 128, with the ELBO
  (analytic KL), the sequence IWAE bound and the FIVO bound (Maddison et al., NeurIPS 2017).

Data contract: ``x`` float (B, T, 88) 0/1 piano rolls, ``mask`` float (B, T), 1 on real steps, sequences
left-aligned. Every ``loss`` returns the negative bound summed over real steps and over the batch; ``beta``
multiplies the KL terms. Padded steps contribute nothing.

Pyro is imported only inside :class:`PyroDMM`, so this file imports without it. Self-check (random data and,
when present, 20 JSB Chorales sequences)::

    .venv-bench/bin/python benchmarks/sequential_refs.py
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

X_DIM = 88
# the DMM's scales are softplus(.) + MIN_SCALE, as in deepgm's DMM (Pyro's tutorial has no floor: a scale that
# underflows to 0 makes the KL infinite, the NaN its users report); the same in all three implementations
MIN_SCALE = 1e-3


# ----------------------------------------------------------------------------------------------- helpers
def check_batch(x: Tensor, mask: Tensor, beta: float = 1.0) -> tuple[Tensor, Tensor]:
    """Validate ``x`` (B, T, 88) and ``mask`` (B, T); return both cut to the batch's longest sequence."""
    if x.dim() != 3 or x.shape[-1] != X_DIM:
        raise ValueError(f"x: expected shape (B, T, {X_DIM}), got {tuple(x.shape)}")
    if mask.shape != x.shape[:2]:
        raise ValueError(f"mask: expected shape {tuple(x.shape[:2])} (x.shape[:2]), got {tuple(mask.shape)}")
    if not (math.isfinite(beta) and beta >= 0):
        raise ValueError(f"beta: expected a finite number >= 0, got {beta}")
    t_max = int(mask.sum(1).max().item())
    if t_max < 1:
        raise ValueError("mask: expected at least one real time step in the batch")
    return x[:, :t_max], mask[:, :t_max]


def reverse_padded(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse each sequence of batch-first ``x`` within its own length; padded steps stay where they are.

    >>> reverse_padded(torch.arange(6.0).view(2, 3, 1), torch.tensor([3, 2]))[..., 0]
    tensor([[2., 1., 0.],
            [4., 3., 5.]])
    """
    t = torch.arange(x.shape[1], device=x.device)[None, :]
    idx = lengths.to(t.dtype)[:, None] - 1 - t
    idx = torch.where(idx >= 0, idx, t)
    return x.gather(1, idx[..., None].expand(-1, -1, x.shape[-1]))


def normal_kl(q_loc: Tensor, q_scale: Tensor, p_loc: Tensor, p_scale: Tensor) -> Tensor:
    """KL(N(q_loc, q_scale) || N(p_loc, p_scale)), elementwise.

    >>> float(normal_kl(torch.zeros(1), torch.ones(1), torch.zeros(1), torch.ones(1)))
    0.0
    """
    var_ratio = (q_scale / p_scale).pow(2)
    return 0.5 * (var_ratio + ((q_loc - p_loc) / p_scale).pow(2) - 1.0 - var_ratio.log())


def normal_log_prob(z: Tensor, loc: Tensor, scale: Tensor) -> Tensor:
    """log N(z; loc, scale), elementwise."""
    return -0.5 * ((z - loc) / scale).pow(2) - scale.log() - 0.5 * math.log(2 * math.pi)


def bernoulli_log_prob(logits: Tensor, x: Tensor) -> Tensor:
    """log Bernoulli(x; logits) summed over the last dim.

    >>> round(float(bernoulli_log_prob(torch.tensor([0.0, 100.0]), torch.tensor([1.0, 1.0]))), 4)
    -0.6931
    """
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


def pad_sequences(seqs: Sequence[np.ndarray]) -> tuple[Tensor, Tensor]:
    """Pad (T_i, 88) arrays into ``x`` (B, T_max, 88) float32 and ``mask`` (B, T_max) float32, left-aligned."""
    t_max = max(len(s) for s in seqs)
    x = torch.zeros(len(seqs), t_max, X_DIM)
    mask = torch.zeros(len(seqs), t_max)
    for i, s in enumerate(seqs):
        x[i, : len(s)] = torch.as_tensor(np.asarray(s, dtype=np.float32))
        mask[i, : len(s)] = 1.0
    return x, mask


# ----------------------------------------------------------------------------------------------- DMM
class Emitter(nn.Module):
    """p(x_t | z_t) = Bernoulli(logits): z -> 100 -> 100 -> 88 with ReLUs."""

    def __init__(self, z_dim: int, emission_dim: int) -> None:
        super().__init__()
        self.lin_z_h = nn.Linear(z_dim, emission_dim)
        self.lin_h_h = nn.Linear(emission_dim, emission_dim)
        self.lin_h_x = nn.Linear(emission_dim, X_DIM)

    def forward(self, z: Tensor) -> Tensor:
        return self.lin_h_x(F.relu(self.lin_h_h(F.relu(self.lin_z_h(z)))))


class GatedTransition(nn.Module):
    """p(z_t | z_{t-1}) = Normal(loc, scale) with a gate between an identity-initialised linear map and an MLP."""

    def __init__(self, z_dim: int, transition_dim: int) -> None:
        super().__init__()
        self.lin_gate_z_h = nn.Linear(z_dim, transition_dim)
        self.lin_gate_h_z = nn.Linear(transition_dim, z_dim)
        self.lin_prop_z_h = nn.Linear(z_dim, transition_dim)
        self.lin_prop_h_z = nn.Linear(transition_dim, z_dim)
        self.lin_z_loc = nn.Linear(z_dim, z_dim)
        self.lin_scale = nn.Linear(z_dim, z_dim)
        with torch.no_grad():
            self.lin_z_loc.weight.copy_(torch.eye(z_dim))
            self.lin_z_loc.bias.zero_()

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        gate = torch.sigmoid(self.lin_gate_h_z(F.relu(self.lin_gate_z_h(z))))
        proposed = self.lin_prop_h_z(F.relu(self.lin_prop_z_h(z)))
        loc = (1 - gate) * self.lin_z_loc(z) + gate * proposed
        return loc, F.softplus(self.lin_scale(F.relu(proposed))) + MIN_SCALE


class Combiner(nn.Module):
    """q(z_t | z_{t-1}, h_t) = Normal(loc, scale) with hc = (tanh(Lh z_{t-1}) + h_t) / 2."""

    def __init__(self, z_dim: int, rnn_dim: int) -> None:
        super().__init__()
        self.lin_z_h = nn.Linear(z_dim, rnn_dim)
        self.lin_loc = nn.Linear(rnn_dim, z_dim)
        self.lin_scale = nn.Linear(rnn_dim, z_dim)

    def forward(self, z_prev: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        hc = 0.5 * (torch.tanh(self.lin_z_h(z_prev)) + h)
        return self.lin_loc(hc), F.softplus(self.lin_scale(hc)) + MIN_SCALE


class DMMNet(nn.Module):
    """All DMM parameters (shared layout of :class:`TorchDMM` and ``PyroDMM.module``)."""

    def __init__(self, z_dim: int = 100, emission_dim: int = 100, transition_dim: int = 200, rnn_dim: int = 600):
        super().__init__()
        self.z_dim = z_dim
        self.emitter = Emitter(z_dim, emission_dim)
        self.trans = GatedTransition(z_dim, transition_dim)
        self.combiner = Combiner(z_dim, rnn_dim)
        self.rnn = nn.RNN(X_DIM, rnn_dim, nonlinearity="relu", batch_first=True)
        self.z_0 = nn.Parameter(torch.zeros(z_dim))
        self.z_q_0 = nn.Parameter(torch.zeros(z_dim))
        self.h_0 = nn.Parameter(torch.zeros(1, 1, rnn_dim))

    def backward_states(self, x: Tensor, mask: Tensor) -> Tensor:
        """h_t (B, T, rnn_dim): the RNN run over x_T..x_t of each sequence (reversed within its length)."""
        lengths = mask.sum(1).long()
        out, _ = self.rnn(reverse_padded(x, lengths), self.h_0.expand(1, x.shape[0], -1).contiguous())
        return reverse_padded(out, lengths)


class TorchDMM(DMMNet):
    """Deep Markov Model in plain PyTorch; ``loss`` is the summed negative ELBO (one reparameterised sample).

    >>> _ = torch.manual_seed(0)
    >>> m = TorchDMM(z_dim=4, emission_dim=5, transition_dim=6, rnn_dim=7)
    >>> bool(m.loss(torch.zeros(2, 3, 88), torch.tensor([[1.0, 1, 1], [1, 0, 0]])).isfinite())
    True
    """

    def loss(self, x: Tensor, mask: Tensor, beta: float = 1.0) -> Tensor:
        x, mask = check_batch(x, mask, beta)
        h = self.backward_states(x, mask)
        batch = x.shape[0]
        z_p = self.z_0.expand(batch, -1)
        z_q = self.z_q_0.expand(batch, -1)
        elbo = x.new_zeros(())
        # per-step views by unbind: one backward node, not a (B, T, ·) zero-filled gradient per h[:, t]
        for x_t, h_t, m_t in zip(x.unbind(1), h.unbind(1), mask.unbind(1), strict=True):
            p_loc, p_scale = self.trans(z_p)
            q_loc, q_scale = self.combiner(z_q, h_t)
            z = q_loc + q_scale * torch.randn_like(q_loc)
            kl = normal_kl(q_loc, q_scale, p_loc, p_scale).sum(-1)
            log_px = bernoulli_log_prob(self.emitter(z), x_t)
            elbo = elbo + (m_t * (log_px - beta * kl)).sum()
            z_p = z_q = z
        return -elbo


class PyroDMM:
    """The DMM as a Pyro model and guide; ``loss`` is ``TraceMeanField_ELBO().differentiable_loss``.

    ``module`` (a :class:`DMMNet`) holds every parameter, so ``torch.optim.Adam(m.module.parameters())`` trains it.
    """

    _count = 0

    def __init__(self, z_dim: int = 100, emission_dim: int = 100, transition_dim: int = 200, rnn_dim: int = 600):
        import pyro
        from pyro.infer import TraceMeanField_ELBO

        pyro.clear_param_store()
        PyroDMM._count += 1
        self.name = f"dmm{PyroDMM._count}"  # unique per instance: no stale param-store entries are shared
        self.module = DMMNet(z_dim, emission_dim, transition_dim, rnn_dim)
        self.elbo = TraceMeanField_ELBO()

    @staticmethod
    def _kl_weight(beta: float) -> Any:
        from pyro import poutine

        # poutine.scale refuses 0; a zero KL weight is a masked-out latent site instead.
        return poutine.scale(scale=beta) if beta > 0 else poutine.mask(mask=False)

    def model(self, x: Tensor, mask: Tensor, beta: float = 1.0) -> None:
        import pyro
        import pyro.distributions as dist

        net = self.module
        pyro.module(self.name, net)
        real = mask > 0
        z_prev = net.z_0.expand(x.shape[0], -1)
        with pyro.plate("sequences", x.shape[0]):
            for t in range(x.shape[1]):
                loc, scale = net.trans(z_prev)
                with self._kl_weight(beta):
                    z = pyro.sample(f"z_{t}", dist.Normal(loc, scale).to_event(1).mask(real[:, t]))
                logits = net.emitter(z)
                pyro.sample(f"x_{t}", dist.Bernoulli(logits=logits).to_event(1).mask(real[:, t]), obs=x[:, t])
                z_prev = z

    def guide(self, x: Tensor, mask: Tensor, beta: float = 1.0) -> None:
        import pyro
        import pyro.distributions as dist

        net = self.module
        pyro.module(self.name, net)
        real = mask > 0
        h = net.backward_states(x, mask)
        z_prev = net.z_q_0.expand(x.shape[0], -1)
        with pyro.plate("sequences", x.shape[0]):
            for t in range(x.shape[1]):
                loc, scale = net.combiner(z_prev, h[:, t])
                with self._kl_weight(beta):
                    z_prev = pyro.sample(f"z_{t}", dist.Normal(loc, scale).to_event(1).mask(real[:, t]))

    def loss(self, x: Tensor, mask: Tensor, beta: float = 1.0) -> Tensor:
        """Differentiable summed negative ELBO computed by Pyro (analytic KL)."""
        x, mask = check_batch(x, mask, beta)
        out: Tensor = self.elbo.differentiable_loss(self.model, self.guide, x, mask, beta)
        return out


# ----------------------------------------------------------------------------------------------- VRNN
def _gaussian_head(width: int, z_dim: int) -> tuple[nn.Linear, nn.Linear]:
    return nn.Linear(width, z_dim), nn.Linear(width, z_dim)


class TorchVRNN(nn.Module):
    """VRNN in plain PyTorch with the ELBO (``loss``), sequence IWAE (``iwae_loss``) and FIVO (``fivo_loss``).

    >>> _ = torch.manual_seed(0)
    >>> m = TorchVRNN()
    >>> x, mask = torch.zeros(2, 3, 88), torch.tensor([[1.0, 1, 1], [1, 0, 0]])
    >>> [bool(v.isfinite()) for v in (m.loss(x, mask), m.iwae_loss(x, mask, 3), m.fivo_loss(x, mask, 3))]
    [True, True, True]
    """

    def __init__(self, h_dim: int = 128, z_dim: int = 32, feat_dim: int = 128) -> None:
        super().__init__()
        self.h_dim, self.z_dim = h_dim, z_dim
        self.phi_x = nn.Sequential(nn.Linear(X_DIM, feat_dim), nn.ReLU())
        self.phi_z = nn.Sequential(nn.Linear(z_dim, feat_dim), nn.ReLU())
        self.prior_net = nn.Sequential(nn.Linear(h_dim, feat_dim), nn.ReLU())
        self.prior_loc, self.prior_scale = _gaussian_head(feat_dim, z_dim)
        self.enc_net = nn.Sequential(nn.Linear(feat_dim + h_dim, feat_dim), nn.ReLU())
        self.enc_loc, self.enc_scale = _gaussian_head(feat_dim, z_dim)
        self.dec_net = nn.Sequential(nn.Linear(feat_dim + h_dim, feat_dim), nn.ReLU())
        self.dec_logits = nn.Linear(feat_dim, X_DIM)
        self.cell = nn.LSTMCell(2 * feat_dim, h_dim)

    def step(self, x_t: Tensor, m_t: Tensor, h: Tensor, c: Tensor, weights: bool = False
             ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """One time step for rows (N, ·): returns (log p(x|z), KL(q||p) — or, with ``weights``,
        log p(z) - log q(z) — , h', c').

        ``z`` is one reparameterised draw from q; rows with ``m_t == 0`` keep their state (h, c).
        """
        fx = self.phi_x(x_t)
        hp = self.prior_net(h)
        p_loc, p_scale = self.prior_loc(hp), F.softplus(self.prior_scale(hp)) + 1e-4
        he = self.enc_net(torch.cat([fx, h], -1))
        q_loc, q_scale = self.enc_loc(he), F.softplus(self.enc_scale(he)) + 1e-4
        z = q_loc + q_scale * torch.randn_like(q_loc)
        fz = self.phi_z(z)
        log_px = bernoulli_log_prob(self.dec_logits(self.dec_net(torch.cat([fz, h], -1))), x_t)
        if weights:
            term = (normal_log_prob(z, p_loc, p_scale) - normal_log_prob(z, q_loc, q_scale)).sum(-1)
        else:
            term = normal_kl(q_loc, q_scale, p_loc, p_scale).sum(-1)
        h_new, c_new = self.cell(torch.cat([fx, fz], -1), (h, c))
        keep = m_t[:, None] > 0
        return log_px, term, torch.where(keep, h_new, h), torch.where(keep, c_new, c)

    def _initial_state(self, rows: int, like: Tensor) -> tuple[Tensor, Tensor]:
        return like.new_zeros(rows, self.h_dim), like.new_zeros(rows, self.h_dim)

    def loss(self, x: Tensor, mask: Tensor, beta: float = 1.0) -> Tensor:
        """Summed negative ELBO, analytic KL(q || prior) per step."""
        x, mask = check_batch(x, mask, beta)
        h, c = self._initial_state(x.shape[0], x)
        elbo = x.new_zeros(())
        for x_t, m_t in zip(x.unbind(1), mask.unbind(1), strict=True):
            log_px, kl, h, c = self.step(x_t, m_t, h, c)
            elbo = elbo + (m_t * (log_px - beta * kl)).sum()
        return -elbo

    @staticmethod
    def _particles(x: Tensor, mask: Tensor, k: int) -> tuple[Tensor, Tensor]:
        if not (isinstance(k, int) and k >= 1):
            raise ValueError(f"k: expected an int >= 1 (number of particles), got {k!r}")
        batch, steps = mask.shape
        return (x[:, None].expand(batch, k, steps, X_DIM).reshape(batch * k, steps, X_DIM),
                mask[:, None].expand(batch, k, steps).reshape(batch * k, steps))

    def iwae_loss(self, x: Tensor, mask: Tensor, k: int) -> Tensor:
        """Negative sequence IWAE bound, summed over the batch: -Σ_b log mean_k exp Σ_t log w_{b,k,t}."""
        x, mask = check_batch(x, mask)
        xs, ms = self._particles(x, mask, k)
        h, c = self._initial_state(xs.shape[0], xs)
        log_w = xs.new_zeros(xs.shape[0])
        for x_t, m_t in zip(xs.unbind(1), ms.unbind(1), strict=True):
            log_px, log_ratio, h, c = self.step(x_t, m_t, h, c, weights=True)
            log_w = log_w + m_t * (log_px + log_ratio)
        bound = torch.logsumexp(log_w.view(-1, k), -1) - math.log(k)
        return -bound.sum()

    def fivo_loss(self, x: Tensor, mask: Tensor, k: int, ess_threshold: float = 0.5) -> Tensor:
        """Negative FIVO bound (particle filter, systematic resampling when ESS < ess_threshold·k), batch sum.

        Per sequence the bound is the sum, over resampling epochs, of log mean_k of the weights accumulated in
        the epoch. Resampling happens after a real step that has a real successor; ancestor indices come from
        detached weights (no gradient through resampling).
        """
        if not (0.0 <= ess_threshold <= 1.0):
            raise ValueError(f"ess_threshold: expected a number in [0, 1], got {ess_threshold}")
        x, mask = check_batch(x, mask)
        xs, ms = self._particles(x, mask, k)
        batch, steps = mask.shape
        h, c = self._initial_state(xs.shape[0], xs)
        log_w = xs.new_zeros(batch, k)
        bound = xs.new_zeros(batch)
        x_steps, m_steps = xs.unbind(1), ms.unbind(1)
        for t in range(steps):
            log_px, log_ratio, h, c = self.step(x_steps[t], m_steps[t], h, c, weights=True)
            log_w = log_w + (m_steps[t] * (log_px + log_ratio)).view(batch, k)
            if t + 1 == steps:
                break
            log_norm = torch.log_softmax(log_w.detach(), -1)
            ess = 1.0 / log_norm.mul(2).exp().sum(-1)
            resample = (ess < ess_threshold * k) & (mask[:, t + 1] > 0)
            if not bool(resample.any()):
                continue
            bound = bound + torch.where(resample, torch.logsumexp(log_w, -1) - math.log(k), 0.0)
            ancestors = systematic_resample(log_norm)
            ancestors = torch.where(resample[:, None], ancestors, torch.arange(k, device=x.device))
            flat = (ancestors + k * torch.arange(batch, device=x.device)[:, None]).reshape(-1)
            h, c = h[flat], c[flat]
            log_w = torch.where(resample[:, None], 0.0, log_w)
        bound = bound + torch.logsumexp(log_w, -1) - math.log(k)
        return -bound.sum()


def systematic_resample(log_weights: Tensor) -> Tensor:
    """Ancestor indices (B, k) by systematic resampling from normalised log-weights (B, k); one uniform per row.

    >>> systematic_resample(torch.tensor([[0.0, -1e9, -1e9]]))
    tensor([[0, 0, 0]])
    """
    batch, k = log_weights.shape
    cdf = log_weights.exp().cumsum(-1)
    cdf = cdf / cdf[:, -1:]
    u = (torch.rand(batch, 1, device=log_weights.device) + torch.arange(k, device=log_weights.device)) / k
    return torch.searchsorted(cdf.contiguous(), u.contiguous()).clamp(max=k - 1)


# ----------------------------------------------------------------------------------------------- self-check
def _load_jsb(n: int) -> tuple[Tensor, Tensor] | None:
    path = Path(os.environ.get("DEEPGM_DATA", "/work/shared/data")) / "polyphonic" / "JSB_Chorales.mat"
    if not path.exists():
        return None
    from scipy.io import loadmat

    return pad_sequences(list(loadmat(str(path))["traindata"][0][:n]))


def _seeded(fn: Callable[[], Tensor], seed: int) -> float:
    torch.manual_seed(seed)
    with torch.no_grad():
        return float(fn())


def _check_model(name: str, params: list[nn.Parameter], loss_fn: Callable[[], Tensor], batch: int) -> None:
    first = loss_fn()
    assert torch.isfinite(first), f"{name}: loss not finite"
    first.backward()
    grads = [p.grad for p in params if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads), f"{name}: bad gradients"
    opt = torch.optim.Adam(params, lr=1e-3)
    before = statistics.mean(_seeded(loss_fn, s) for s in range(3))
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        opt.zero_grad()
        (loss_fn() / batch).backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    after = statistics.mean(_seeded(loss_fn, s) for s in range(3))
    print(f"  {name:<10} loss/seq {before / batch:9.3f} -> {after / batch:9.3f} after 5 Adam steps "
          f"({'down' if after < before else 'NOT DOWN'}); step {statistics.median(times) * 1e3:8.1f} ms (median of 5)")
    assert after < before, f"{name}: 5 Adam steps did not reduce the loss"


def _run_checks(label: str, x: Tensor, mask: Tensor) -> None:
    print(f"[{label}] x {tuple(x.shape)}, real steps {int(mask.sum())}")
    torch.manual_seed(0)
    tdmm = TorchDMM()
    pdmm = PyroDMM()
    pdmm.module.load_state_dict(tdmm.state_dict())
    torch.manual_seed(0)
    vrnn = TorchVRNN()
    n_t = sum(p.numel() for p in tdmm.parameters())
    n_p = sum(p.numel() for p in pdmm.module.parameters())
    print(f"  parameters: TorchDMM {n_t}, PyroDMM {n_p}, TorchVRNN {sum(p.numel() for p in vrnn.parameters())}")
    assert n_t == n_p

    # garbage in padded positions must not change any loss (same seed -> same noise)
    x_bad = x + (1 - mask)[..., None]  # padded steps become all-ones (still valid 0/1 data)
    for nm, fn in [("TorchDMM", tdmm.loss), ("PyroDMM", pdmm.loss), ("VRNN", vrnn.loss)]:
        a, b = _seeded(lambda: fn(x, mask), 1), _seeded(lambda: fn(x_bad, mask), 1)
        assert abs(a - b) <= 1e-4 * abs(a), (nm, a, b)
    a = _seeded(lambda: vrnn.fivo_loss(x, mask, 4), 1)
    assert abs(a - _seeded(lambda: vrnn.fivo_loss(x_bad, mask, 4), 1)) <= 1e-4 * abs(a)
    print("  padding: values in padded steps leave every loss unchanged")

    same = [(_seeded(lambda: tdmm.loss(x, mask, 0.5), s), _seeded(lambda: pdmm.loss(x, mask, 0.5), s))
            for s in range(20)]
    print(f"  DMM same weights, beta=0.5: mean over 20 evaluations Torch {statistics.mean(a for a, _ in same):.3f}, "
          f"Pyro {statistics.mean(b for _, b in same):.3f}; max |diff| at equal seeds "
          f"{max(abs(a - b) for a, b in same):.2e}")
    assert abs(statistics.mean(a for a, _ in same) - statistics.mean(b for _, b in same)) < 1e-3 * abs(same[0][0])
    z0 = (_seeded(lambda: tdmm.loss(x, mask, 0.0), 3), _seeded(lambda: pdmm.loss(x, mask, 0.0), 3))
    print(f"  DMM beta=0: Torch {z0[0]:.3f}, Pyro {z0[1]:.3f}")

    fivo0 = _seeded(lambda: vrnn.fivo_loss(x, mask, 4, ess_threshold=0.0), 2)
    iwae = _seeded(lambda: vrnn.iwae_loss(x, mask, 4), 2)
    assert abs(fivo0 - iwae) <= 1e-4 * abs(iwae), (fivo0, iwae)
    n = 10
    elbo = statistics.mean(_seeded(lambda: vrnn.loss(x, mask), s) for s in range(n))
    iw16 = statistics.mean(_seeded(lambda: vrnn.iwae_loss(x, mask, 16), s) for s in range(n))
    fv16 = statistics.mean(_seeded(lambda: vrnn.fivo_loss(x, mask, 16), s) for s in range(n))
    print(f"  VRNN FIVO(ess_threshold=0) == IWAE at equal seed ({fivo0:.3f}); mean over {n}: -ELBO {elbo:.3f}, "
          f"-IWAE16 {iw16:.3f}, -FIVO16 {fv16:.3f}")
    assert iw16 <= elbo + 1e-3 * abs(elbo)

    batch = x.shape[0]
    _check_model("TorchDMM", list(tdmm.parameters()), lambda: tdmm.loss(x, mask), batch)
    _check_model("PyroDMM", list(pdmm.module.parameters()), lambda: pdmm.loss(x, mask), batch)
    _check_model("VRNN", list(vrnn.parameters()), lambda: vrnn.loss(x, mask), batch)
    _check_model("VRNN-IWAE", list(vrnn.parameters()), lambda: vrnn.iwae_loss(x, mask, 4), batch)
    _check_model("VRNN-FIVO", list(vrnn.parameters()), lambda: vrnn.fivo_loss(x, mask, 4), batch)


def main() -> None:
    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(0)
    lengths = torch.tensor([10, 7, 4, 1])
    mask = (torch.arange(10)[None] < lengths[:, None]).float()
    x = (torch.rand(4, 10, X_DIM, generator=gen) < 0.1).float() * mask[..., None]
    _run_checks("random B=4 T=10", x, mask)
    jsb = _load_jsb(20)
    if jsb is None:
        print("[JSB] skipped: JSB_Chorales.mat not found under $DEEPGM_DATA/polyphonic")
    else:
        _run_checks("JSB 20 train sequences", *jsb)
    print(f"self-check passed in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    main()
