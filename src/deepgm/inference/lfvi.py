"""Likelihood-free variational inference (Tran, Ranganath & Blei 2017) for a simulator ``p(y|θ)`` whose
likelihood cannot be evaluated, amortised over data.

The posterior is implicit: ``θ = f(y, ε)``, ``ε ~ N(0, I)``, a network. Its joint with the data,
``q(y, θ) = p(y) q(θ|y)``, is compared with the model's ``p(y, θ) = p(θ) p(y|θ)`` by a discriminator
``D(y, θ)`` trained by logistic regression (``p`` labelled 1), so at its optimum
``D = log p(y, θ)/q(y, θ) = log p(θ|y)/q(θ|y)``. The sampler minimises

    ``E_{p(y)} D_KL[q(θ|y) || p(θ|y)] = E_{q(y,θ)}[-D(y, θ)]``,

which is the negative ELBO up to the constant ``log p(y)``, averaged over simulated data. Both sides
share each simulated ``y``: ``(y, θ)`` from the simulator against ``(y, f(y, ε))``. It is written with the
library's pieces: :class:`~deepgm.losses.gan.KLGAN` between two joints over ``(y, θ)`` and a
:class:`~deepgm.models.gan.GAN` that trains sampler and discriminator in turn; the batches are
simulations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from deepgm.distributions import Deterministic, Empirical, Normal
from deepgm.losses.gan import KLGAN
from deepgm.models.gan import GAN
from deepgm.nn import MLP, AsLoc, Concat

__all__ = ["LFVI"]


class LFVI:
    """Amortised LFVI (see the module docstring).

    ``simulate(θ (B, d)) → y (B, m)`` (rows with non-finite values are dropped), ``sample_prior(B) → θ``.
    ``y_loc``/``y_scale`` standardise the data for the networks (estimated from a pilot batch when not
    given). ``simulations`` counts the simulator calls, the pilot's included."""

    def __init__(self, simulate: Callable[[torch.Tensor], torch.Tensor], sample_prior: Callable[[int], torch.Tensor],
                 theta_dim: int, y_dim: int, *, noise_dim: int | None = None, hidden: Sequence[int] = (64, 64),
                 lr: float = 3e-4, d_lr: float = 1e-3, d_steps: int = 3, y_loc: torch.Tensor | None = None,
                 y_scale: torch.Tensor | None = None, pilot: int = 1000) -> None:
        self.simulate, self.sample_prior = simulate, sample_prior
        self.theta_dim, self.y_dim = theta_dim, y_dim
        self.simulations = 0
        if y_loc is None or y_scale is None:
            _, y = self.draw(pilot)
            y_loc = y.mean(0) if y_loc is None else y_loc
            y_scale = y.std(0).clamp_min(1e-6) if y_scale is None else y_scale
        self.y_loc, self.y_scale = y_loc.float(), y_scale.float()
        k = noise_dim or theta_dim
        self.sampler = AsLoc(MLP([y_dim + k, *hidden, theta_dim], "relu"))  # θ = f(y, ε)
        f = Deterministic(var=["theta"], cond_var=["y", "eps"], net=self.sampler, name="q")
        noise = Normal(var=["eps"], loc=0.0, scale=1.0, features_shape=[k], name="p_eps")
        self.posterior = (f * noise).marginalize_var("eps")  # q(θ|y)
        model_side = Empirical(var=["y"], name="p") * Empirical(var=["theta"], name="p")  # simulated (y, θ)
        fitted_side = Empirical(var=["y"], name="p") * self.posterior  # (y, θ ~ q(θ|y))
        self.discriminator = Concat(MLP([y_dim + theta_dim, *hidden, 1], "leaky_relu"))  # D(y, θ)
        self.objective = KLGAN(model_side, fitted_side, self.discriminator)
        self.model = GAN(self.objective.mean(), self.posterior, x_var="theta", d_steps=d_steps,
                         optimizer_params={"lr": lr}, d_optimizer_params={"lr": d_lr})

    def draw(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` prior draws and their simulations (non-finite rows dropped), counted in ``simulations``."""
        theta = self.sample_prior(n)
        y = self.simulate(theta).reshape(n, -1).float()
        self.simulations += n
        ok = torch.isfinite(y).all(1)
        return theta[ok].float(), y[ok]

    def _standardise(self, y: torch.Tensor) -> torch.Tensor:
        return (y.float() - self.y_loc) / self.y_scale

    def step(self, batch_size: int = 256) -> dict[str, float]:
        """One discriminator/sampler round on ``batch_size`` fresh simulations; the losses."""
        theta, y = self.draw(batch_size)
        return self._train_step(self._standardise(y), theta)

    def _train_step(self, y: torch.Tensor, theta: torch.Tensor) -> dict[str, float]:
        out = self.model.train_step({"y": y, "theta": theta})
        return out if isinstance(out, dict) else {"loss": float(out)}

    def fit(self, steps: int, batch_size: int = 256) -> list[dict[str, float]]:
        """``steps`` rounds of :meth:`step` (fresh simulations every round); the history of losses."""
        return [self.step(batch_size) for _ in range(steps)]

    def fit_pool(self, simulations: int, steps: int, batch_size: int = 256,
                 generator: torch.Generator | None = None) -> list[dict[str, float]]:
        """Simulate ``simulations`` pairs ``(θ, y)`` once, then train for ``steps`` rounds on minibatches drawn
        from that pool (with replacement): for a fixed simulation budget, many more steps than :meth:`fit`.
        The expectation over ``p(y, θ)`` becomes one over the pool's empirical distribution."""
        theta, y = self.draw(simulations)
        if len(theta) == 0:
            raise ValueError("LFVI.fit_pool: every simulation returned non-finite values")
        y = self._standardise(y)
        history = []
        for _ in range(steps):
            idx = torch.randint(0, len(theta), (batch_size,), generator=generator)
            history.append(self._train_step(y[idx], theta[idx]))
        return history

    @torch.no_grad()
    def sample(self, y_obs: torch.Tensor, n: int) -> torch.Tensor:
        """``n`` draws ``θ ~ q(θ|y_obs)`` for one observation ``y_obs (m,)``: ``(n, d)``."""
        y = self._standardise(y_obs.reshape(1, -1)).expand(n, -1)
        self.model.eval()
        try:
            return self.posterior.sample({"y": y}, batch_n=n)["theta"]
        finally:
            self.model.train()
