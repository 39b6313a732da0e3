"""Score-function (REINFORCE) gradients for expectations over non-reparameterisable latents.

The gradient of ``E_{z~Bernoulli(θ)}[z] = θ`` is 1; the score-function estimate, from 10,000 draws:

>>> import torch
>>> from deepgm.distributions import Bernoulli
>>> from deepgm.losses import Parameter
>>> theta = torch.nn.Parameter(torch.tensor(0.3))
>>> q = Bernoulli(var=["z"], probs=theta, name="q")
>>> _ = torch.manual_seed(0)
>>> est = REINFORCE(q, Parameter("z"), sample_shape=10_000)  # f(z) = z
>>> est().backward()
>>> round(float(theta.grad), 1)
1.0
>>> m = RunningMean(decay=0.5)  # the "ema" baseline: the average before each update
>>> [float(m(torch.tensor(v))) for v in (4.0, 2.0, 0.0)], float(m.value)
([4.0, 4.0, 3.0], 1.5)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from deepgm.distributions.base import Distribution, as_sample_shape
from deepgm.distributions.env import Env
from deepgm.errors import ObjectiveError
from deepgm.losses.core import Expectation, _check_dist, mean_over_samples
from deepgm.losses.expr import Loss, as_loss

__all__ = ["REINFORCE", "RunningMean"]


class RunningMean(nn.Module):
    """An exponential moving average of a scalar with ``decay``, in buffers: a model that owns it (through
    the objective's ``own_modules``) carries it in its ``state_dict`` and checkpoints, moves it with
    ``.to(device)``, and it moves only in training mode (``eval()`` freezes it)."""

    value: torch.Tensor
    initialised: torch.Tensor

    def __init__(self, decay: float) -> None:
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"RunningMean: decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.register_buffer("value", torch.zeros(()))
        self.register_buffer("initialised", torch.zeros((), dtype=torch.bool))

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        """The average before this update (``current`` itself the first time); in training mode the
        average then moves to ``decay · average + (1 - decay) · current``."""
        current = current.detach()
        if self.value.device != current.device:
            self.to(current.device)
        before = torch.where(self.initialised, self.value.to(current.dtype), current)
        if self.training:
            self.value.copy_(torch.where(self.initialised, self.decay * before + (1 - self.decay) * current,
                                         current))
            self.initialised.fill_(True)
        return before


class REINFORCE(Expectation):
    """``E_{q(z|x)}[f]`` whose gradient is the score-function estimator
    ``∇ E_q[f] ≈ ∇f + (f - b) ∇ log q(z|x)`` with ``z`` drawn without reparameterisation.

    ``baseline`` ``b`` reduces variance: ``None`` (0), a number, an expression evaluated on the same
    inputs (a learned baseline; it is trained to fit ``f`` by adding ``(f - b)²`` to the objective with
    ``fit_baseline=True``), or ``"ema"``: a running mean of ``f`` with ``decay`` (a :class:`RunningMean`
    the objective owns: it is saved with the model and updated only in training mode, not by ``eval_step``).
    The value of the expression is the plain Monte Carlo estimate of ``E_q[f]``.
    """

    def __init__(self, q: Distribution, f: Loss | float, baseline: Loss | float | str | None = None,
                 sample_shape: int | Sequence[int] = (), decay: float = 0.9, fit_baseline: bool = True) -> None:
        self.q = _check_dist(q, "REINFORCE")
        self.f = as_loss(f)
        if isinstance(baseline, str) and baseline != "ema":
            raise ObjectiveError(f"REINFORCE: baseline must be None, a number, an expression or 'ema', "
                                 f"got {baseline!r}")
        self.baseline = baseline
        self.sample_shape = as_sample_shape(sample_shape, "REINFORCE: sample_shape", ObjectiveError)
        self.decay = decay
        self.fit_baseline = fit_baseline
        self.running_mean = RunningMean(decay) if baseline == "ema" else None

    def _baseline(self, env: Env, f: torch.Tensor) -> tuple[Any, Any]:
        b = self.baseline
        if b is None:
            return 0.0, 0.0
        if self.running_mean is not None:
            return self.running_mean(f.detach().mean()), 0.0
        if isinstance(b, Loss):
            v = b._eval(env)
            fit = ((f.detach() - v) ** 2) if self.fit_baseline and torch.is_tensor(v) and v.requires_grad else 0.0
            return v.detach() if torch.is_tensor(v) else v, fit
        return float(b), 0.0

    def _eval(self, env: Env) -> Any:
        scope = env.child()
        self.q.draw_into(scope, self.sample_shape, None, reparam=False)
        f = self.f._eval(scope)
        if not torch.is_tensor(f):
            return f
        log_q = self.q.log_prob_at(scope)
        b, fit = self._baseline(env, f)
        advantage = f.detach() - b
        score = advantage * log_q
        out = f + score - score.detach()
        if torch.is_tensor(fit):
            out = out + fit - fit.detach()
        return mean_over_samples(out, self.sample_shape)

    def children(self) -> tuple[Loss, ...]:
        return (self.f,) + ((self.baseline,) if isinstance(self.baseline, Loss) else ())

    def own_modules(self) -> tuple[nn.Module, ...]:
        return (self.running_mean,) if self.running_mean is not None else ()

    def _render(self, latex: bool) -> str:
        inner = self.f._render(latex)
        if latex:
            return rf"\mathbb{{E}}^{{\mathrm{{SF}}}}_{{{self.q.prob_text}}}\left[{inner}\right]"
        return f"E^SF_{{{self.q.prob_text}}}[{inner}]"
