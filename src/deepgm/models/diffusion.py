"""DDPM (Ho et al. 2020): the variational bound of a hierarchical latent-variable model, its simplified
noise-prediction objective, and a model that trains on either and reports the bound in bits/dim and
MNIST-FID.

With the distributions of :class:`~deepgm.distributions.diffusion.DiffusionProcess`, the negative bound
on ``log p(x)`` per data point is

    D_KL[q(x_T|x)||p(x_T)] + Σ_{t=2}^{T} E_{q(x_t|x,t)}[D_KL[q(x_{t-1}|x_t,x,t)||p(x_{t-1}|x_t,t)]]
        - E_{q(x_1|x)}[log p(x|x_1)]

(``L_T + Σ L_{t-1} + L_0``). Every KL is between Gaussians with diagonal scales, in closed form;
:func:`diffusion_bound` writes the sum over ``t`` exactly (``exact=True``: one term per step, each with
one draw of ``x_t``) or as ``(T - 1) E_{q(t)}[...]`` with ``t ~ U{2..T}`` drawn per data point (the
training estimate). :func:`diffusion_simple` is ``E_{t,ε} ‖ε - ε_θ(√ᾱ_t x_0 + √(1-ᾱ_t) ε, t)‖²``,
``t ~ U{1..T}``, the noise-prediction model ``p(eps|x_t,t) = N(ε_θ(x_t, t), I)``.

>>> import torch
>>> from deepgm.distributions.diffusion import DiffusionProcess, NoiseSchedule
>>> class Zero(torch.nn.Module):
...     def forward(self, xt, t):
...         return torch.zeros_like(xt)
>>> process = DiffusionProcess(NoiseSchedule.linear(10), Zero(), dim=4)
>>> print(diffusion_simple(process))
E_{q(t,eps)}[E_{q(x_t|x,t,eps)}[||eps - E_{p(eps|x_t,t)}[eps]||^2]]
>>> bound = diffusion_bound(process, exact=True)
>>> bound(x=torch.full((3, 4), 0.5)).shape  # nats per data point
torch.Size([3])
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch

from deepgm.distributions.diffusion import DiffusionProcess, ddim_timesteps
from deepgm.errors import ConfigError
from deepgm.losses.core import KL, E, LogProb
from deepgm.losses.expr import Loss
from deepgm.losses.gan import BatchE
from deepgm.losses.terms import SquaredError, SumOver
from deepgm.models.evaluation import save_sample_figure
from deepgm.models.model import Model

if TYPE_CHECKING:
    from deepgm.data.prepared import DataInfo

__all__ = ["DDPM", "diffusion_bound", "diffusion_bound_terms", "diffusion_simple"]

Objective = Literal["simple", "bound"]
Sampler = Literal["ancestral", "ddim"]


def diffusion_bound_terms(process: DiffusionProcess, exact: bool = False) -> dict[str, Loss]:
    """The bound's three parts, per data point in nats: ``"L_T"`` (analytic), ``"L_t"`` (the sum over
    ``t = 2..T`` of the analytic KLs, exact over ``t`` or estimated with one ``t ~ U{2..T}``; absent when
    T = 1) and ``"L_0"`` (the discretised decoder's negative log-probability)."""
    p = process
    terms: dict[str, Loss] = {"L_T": KL(p.q_T, p.prior)}
    if p.steps > 1:
        kl_t = E(p.q_t, KL(p.posterior, p.reverse, analytic=True))
        terms["L_t"] = (SumOver("t", range(2, p.steps + 1), kl_t, batch_like="x") if exact
                        else (p.steps - 1) * BatchE(p.time, kl_t, batch_like="x"))
    terms["L_0"] = -E(p.q_1, LogProb(p.decoder))
    return terms


def diffusion_bound(process: DiffusionProcess, exact: bool = False) -> Loss:
    """``-ELBO = L_T + Σ_{t=2}^{T} L_{t-1} + L_0`` per data point, in nats (see the module docstring)."""
    terms = diffusion_bound_terms(process, exact)
    total = terms["L_T"] + terms["L_t"] if "L_t" in terms else terms["L_T"]
    return total - E(process.q_1, LogProb(process.decoder))


def diffusion_simple(process: DiffusionProcess) -> Loss:
    """``E_{t ~ U{1..T}, ε ~ N(0,I)} ‖ε - ε_θ(√ᾱ_t x_0 + √(1-ᾱ_t) ε, t)‖²`` per data point."""
    p = process
    return BatchE(p.time_all * p.noise, E(p.noised, SquaredError(p.noise_model)), batch_like="x")


class DDPM(Model):
    """A denoising diffusion model trained on ``objective`` — ``"simple"`` (the noise-prediction loss,
    Ho et al.'s default) or ``"bound"`` (the bound's one-``t`` estimate, nats per image) — averaged over
    the batch.

    :meth:`generate` draws with ``sampler`` (``"ancestral"`` through all T steps, or ``"ddim"`` over
    ``sample_steps`` of them, stochastic for ``eta > 0``); :meth:`evaluate` reports the bound in bits/dim on
    the first ``bound_images`` test images (exact over all ``t``, or with ``bound_t`` draws of ``t`` per
    image) and MNIST-FID of ``fid_samples`` draws against the test images.
    """

    def __init__(self, process: DiffusionProcess, objective: Objective = "simple", *, sampler: Sampler = "ddim",
                 sample_steps: int | None = None, eta: float = 0.0, clip: bool = True, bound_images: int = 100,
                 bound_t: int | None = None, fid_samples: int = 1000, **model_kwargs: Any) -> None:
        if objective not in ("simple", "bound"):
            raise ConfigError("DDPM", "objective", "'simple' or 'bound'", objective)
        if sampler not in ("ancestral", "ddim"):
            raise ConfigError("DDPM", "sampler", "'ancestral' or 'ddim'", sampler)
        if sample_steps is not None:
            ddim_timesteps(process.steps, sample_steps)  # refuses steps outside [1, T]
        simple = diffusion_simple(process).mean()
        bound = diffusion_bound(process).mean()
        super().__init__(simple if objective == "simple" else bound,
                         [process.noise_model, process.reverse, process.decoder], **model_kwargs)
        self.process, self.objective = process, objective
        self.sampler, self.sample_steps, self.eta, self.clip = sampler, sample_steps, eta, clip
        self.bound_images, self.bound_t, self.fid_samples = bound_images, bound_t, fid_samples

    @property
    def dim(self) -> int:
        """Values per data point (784 for MNIST)."""
        return self.process.dim

    @torch.no_grad()
    def generate(self, n: int, steps: int | None = None, sampler: Sampler | None = None,
                 batch_size: int = 500) -> torch.Tensor:
        """``n`` draws ``(n, dim)`` in [0, 1]; ``steps`` (fewer than T: DDIM over a strided subsequence)
        and ``sampler`` override the model's defaults."""
        sampler = sampler or ("ddim" if steps is not None else self.sampler)
        if sampler == "ddim" and steps is None:
            steps = self.sample_steps
        out = []
        with self.evaluating():
            for i in range(0, n, batch_size):
                m = min(batch_size, n - i)
                if sampler == "ancestral":
                    if steps is not None and steps != self.process.steps:
                        raise ConfigError("DDPM", "steps", f"T = {self.process.steps} for ancestral sampling "
                                                           f"(fewer steps: sampler='ddim')", steps)
                    out.append(self.process.sample_ancestral(m, clip=self.clip))
                else:
                    out.append(self.process.sample_ddim(m, steps, eta=self.eta, clip=self.clip))
        return torch.cat(out)

    def sampler_text(self, steps: int | None = None) -> str:
        """How :meth:`generate` draws, in words (for reports)."""
        T = self.process.steps
        if steps is None and self.sampler == "ancestral":
            return f"ancestral, all T={T} steps"
        k = steps if steps is not None else (self.sample_steps or T)
        return f"DDIM (eta={self.eta:g}), {k} of T={T} steps"

    @torch.no_grad()
    def bound(self, x: torch.Tensor, t_draws: int | None = None, batch_size: int = 100) -> dict[str, float]:
        """The mean of each part of the bound over the data ``x`` in nats per image (``"L_T"``, ``"L_t"``,
        ``"L_0"``, ``"total"``): the sum over ``t`` exact (``t_draws=None``) or the mean of ``t_draws``
        one-``t`` estimates per image."""
        terms = diffusion_bound_terms(self.process, exact=t_draws is None)
        sums = dict.fromkeys(terms, 0.0)
        with self.evaluating():
            for i in range(0, len(x), batch_size):
                part = {"x": x[i:i + batch_size]}
                for name, term in terms.items():
                    reps = t_draws if (name == "L_t" and t_draws is not None) else 1
                    value = sum(float(term(part).sum()) for _ in range(reps)) / reps
                    sums[name] += value
        out = {name: v / len(x) for name, v in sums.items()}
        out["total"] = sum(out.values())
        return out

    def bits(self, nats: float) -> float:
        """Nats per image as bits per dimension."""
        return nats / (self.dim * math.log(2))

    def evaluate(self, test_data: Mapping[str, torch.Tensor], *, k: int = 1000,
                 info: DataInfo | None = None) -> dict[str, Any]:
        """``test_bits_per_dim_bound`` (and nats, each term in bits/dim) on the first ``bound_images`` test
        images, the estimator named; ``test_loss``, the training objective's mean over the test images;
        ``mnist_fid``/``mnist_is`` of ``fid_samples`` draws against the test images when they are 28×28
        (``k`` is not used: the bound needs no importance samples)."""
        x = test_data["x"]
        with torch.no_grad(), self.evaluating():
            loss = sum(float(self._value({"x": x[i:i + 500]}, {})) * len(x[i:i + 500])
                       for i in range(0, len(x), 500))
        xb = x[: self.bound_images]
        parts = self.bound(xb, self.bound_t)
        T = self.process.steps
        how = ("exact sum over t = 2..T" if self.bound_t is None else
               f"{self.bound_t} uniform draws of t in 2..T per image, (T-1)·mean")
        out: dict[str, Any] = {
            "test_bits_per_dim_bound": self.bits(parts["total"]), "test_nll_bound": parts["total"],
            "bound_estimator": f"variational bound L_T + sum_t L_(t-1) + L_0 (T={T}): L_T analytic; L_(t-1) "
                               f"analytic Gaussian KLs, {how}, one draw of x_t each; L_0 the discretised decoder "
                               f"at one draw of x_1", "bound_images": len(xb),
            "bound_terms_bits_per_dim": {name: self.bits(v) for name, v in parts.items() if name != "total"},
            "test_loss": loss / len(x), "test_loss_objective": self.objective,
        }
        from deepgm.metrics.mnist import fits_mnist_classifier, mnist_scores

        if self.fid_samples and fits_mnist_classifier(x):
            samples = self.generate(self.fid_samples)
            out.update(mnist_scores(samples, x))
            out.update({"fid_samples": self.fid_samples, "fid_reference_images": len(x),
                        "sampler": self.sampler_text()})
        return out

    def figures(self, out_dir: Path, test_data: Mapping[str, torch.Tensor], info: DataInfo) -> list[Path]:
        """``samples.png``: 64 draws of the model's sampler."""
        path = save_sample_figure(self.generate(64), out_dir / "samples.png", info)
        return [path] if path is not None else []
