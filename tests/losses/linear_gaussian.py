"""A linear-Gaussian latent model whose log p(x) is exact: z ~ N(0, I), x|z ~ N(Wz + b, σ² I)."""

from __future__ import annotations

import torch
from torch import nn

from deepgm.distributions import Normal


class LinearGaussian(nn.Module):
    """Parameters of the generative model and a (deliberately imperfect) linear encoder."""

    def __init__(self, dx: int = 4, dz: int = 2, sigma: float = 0.5) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(1)
        self.W = torch.randn(dx, dz, generator=g)
        self.b = torch.randn(dx, generator=g)
        self.sigma = sigma
        self.dx, self.dz = dx, dz

    def exact_log_px(self, x: torch.Tensor) -> torch.Tensor:
        """log N(x; b, W Wᵀ + σ² I)."""
        cov = self.W @ self.W.T + self.sigma**2 * torch.eye(self.dx)
        return torch.distributions.MultivariateNormal(self.b, cov).log_prob(x)

    def exact_posterior(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(A, Σ) with p(z|x) = N(A (x - b), Σ)."""
        prec = torch.eye(self.dz) + self.W.T @ self.W / self.sigma**2
        cov = torch.linalg.inv(prec)
        return cov @ self.W.T / self.sigma**2, cov

    def distributions(self, exact_q: bool = False) -> tuple[Normal, Normal, Normal]:
        """p(x|z), p(z), q(z|x); q is exact when asked, else a perturbed mean-field guess."""
        model = self

        class Decoder(nn.Module):
            def forward(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
                loc = z @ model.W.T + model.b
                return {"loc": loc, "scale": torch.full_like(loc, model.sigma)}

        A, cov = self.exact_posterior()
        if not exact_q:
            A = A * 0.7
        scale = cov.diagonal().sqrt() * (1.0 if exact_q else 1.3)
        q_a = nn.Parameter(A.clone())

        class Encoder(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.A = q_a

            def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
                loc = (x - model.b) @ self.A.T
                return {"loc": loc, "scale": scale.expand_as(loc)}

        p = Normal(var=["x"], cond_var=["z"], net=Decoder(), name="p")
        prior = Normal(var=["z"], loc=0.0, scale=1.0, features_shape=[self.dz], name="p_{prior}")
        q = Normal(var=["z"], cond_var=["x"], net=Encoder(), name="q")
        return p, prior, q
