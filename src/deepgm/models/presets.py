"""Common models in one line: a VAE, variational inference, maximum likelihood."""

from __future__ import annotations

from typing import Any

import torch

from deepgm.distributions.base import Distribution
from deepgm.distributions.family import Family
from deepgm.losses.bounds import ELBO
from deepgm.losses.core import KL, E, LogProb
from deepgm.losses.expr import Loss
from deepgm.models.likelihood import log_likelihood
from deepgm.models.model import Model

__all__ = ["VAE", "VI", "ML"]


class VAE(Model):
    """A latent-variable model ``p(x|z)p(z)`` with an encoder ``q(z|x)``.

    The objective defaults to the negative ELBO with the KL analytic where available,
    ``mean(D_KL[q(z|x)||p(z)] - E_{q(z|x)}[log p(x|z)]) + regularizer``; pass ``loss`` for another one
    (IWAE, β-VAE...). ``generate``, ``reconstruct``, ``encode``, ``elbo`` and ``log_likelihood`` serve
    evaluation and plots.
    """

    def __init__(self, encoder: Distribution, decoder: Distribution, prior: Distribution,
                 regularizer: Loss | None = None, loss: Loss | None = None,
                 extra: tuple[Distribution, ...] = (), **model_kwargs: Any) -> None:
        if loss is None:
            loss = (KL(encoder, prior) - E(encoder, LogProb(decoder))).mean()
        if regularizer is not None:
            loss = loss + regularizer
        super().__init__(loss, [encoder, decoder, prior, *extra], **model_kwargs)

    @property
    def joint(self) -> Distribution:
        """``p(x,z) = p(x|z)p(z)``."""
        return self.decoder * self.prior

    @property
    def encoder(self) -> Distribution:
        """``q(z|x)``."""
        return self.distributions[0]  # type: ignore[return-value]

    @property
    def decoder(self) -> Distribution:
        """``p(x|z)``."""
        return self.distributions[1]  # type: ignore[return-value]

    @property
    def prior(self) -> Distribution:
        """``p(z)``."""
        return self.distributions[2]  # type: ignore[return-value]

    def _x(self) -> str:
        return self.decoder.var[0]

    def _z(self) -> str:
        return self.encoder.var[0]

    def _decode(self, inputs: dict[str, torch.Tensor], mean: bool) -> torch.Tensor:
        d = self.decoder
        if mean and isinstance(d, Family):
            return d.mean(inputs)
        return d.sample(inputs)[self._x()]

    @torch.no_grad()
    def generate(self, n: int, mean: bool = True, **conditions: torch.Tensor) -> torch.Tensor:
        """``n`` draws ``z ~ p(z)`` decoded: the decoder's mean (``mean=True``) or a draw of ``x``."""
        z = self.prior.sample(dict(conditions), batch_n=n)
        return self._decode({**conditions, **z}, mean)

    @torch.no_grad()
    def decode(self, z: torch.Tensor, mean: bool = True, **conditions: torch.Tensor) -> torch.Tensor:
        """The decoder's mean (or a draw) at latent values ``z``."""
        return self._decode({self._z(): z, **conditions}, mean)

    @torch.no_grad()
    def encode(self, x: torch.Tensor, **conditions: torch.Tensor) -> torch.Tensor:
        """The encoder's mean of ``z`` given ``x``."""
        q = self.encoder
        inputs = {self._x(): x, **conditions}
        return q.mean(inputs) if isinstance(q, Family) else q.sample(inputs)[self._z()]

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, **conditions: torch.Tensor) -> torch.Tensor:
        """Decode the encoder's mean of ``z``."""
        return self.decode(self.encode(x, **conditions), **conditions)

    @torch.no_grad()
    def elbo(self, x: torch.Tensor, **conditions: torch.Tensor) -> torch.Tensor:
        """The ELBO of every data point (one draw)."""
        return ELBO(self.joint, self.encoder)({self._x(): x, **conditions})

    def log_likelihood(self, x: torch.Tensor, k: int = 5000, chunk: int = 500,
                       batch_size: int = 100, **conditions: torch.Tensor) -> torch.Tensor:
        """Importance-sampled ``log p(x)`` of every data point with ``k`` draws from the encoder."""
        parts = []
        for i in range(0, len(x), batch_size):
            cond = {k_: v[i:i + batch_size] for k_, v in conditions.items()}
            parts.append(log_likelihood(self.joint, self.encoder, {self._x(): x[i:i + batch_size], **cond},
                                        k=k, chunk=chunk))
        return torch.cat(parts)


class VI(Model):
    """Variational inference: maximise ``ELBO = E_q[log p(x,z) - log q(z|x)]`` of the joint ``p`` against
    ``q``, i.e. minimise ``-mean(ELBO)``."""

    def __init__(self, p: Distribution, q: Distribution, sample_shape: int = 1, **model_kwargs: Any) -> None:
        loss = -ELBO(p, q, sample_shape=sample_shape if sample_shape > 1 else ()).mean()
        super().__init__(loss, [p, q], **model_kwargs)


class ML(Model):
    """Maximum likelihood: minimise ``-mean(log p(x))``."""

    def __init__(self, p: Distribution, **model_kwargs: Any) -> None:
        super().__init__(-LogProb(p).mean(), [p], **model_kwargs)
