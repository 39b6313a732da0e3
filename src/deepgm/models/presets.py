"""Common models in one line: a VAE, variational inference, maximum likelihood."""

from __future__ import annotations

from typing import Any

from deepgm.distributions.base import Distribution
from deepgm.losses.bounds import ELBO
from deepgm.losses.core import KL, E, LogProb
from deepgm.losses.expr import Loss
from deepgm.models.model import Model

__all__ = ["VAE", "VI", "ML"]


class VAE(Model):
    """A VAE: ``mean(D_KL[q(z|x)||p(z)] - E_{q(z|x)}[log p(x|z)]) + regularizer`` (the negative ELBO with
    the KL analytic where available)."""

    def __init__(self, encoder: Distribution, decoder: Distribution, prior: Distribution,
                 regularizer: Loss | None = None, **model_kwargs: Any) -> None:
        loss = (KL(encoder, prior) - E(encoder, LogProb(decoder))).mean()
        if regularizer is not None:
            loss = loss + regularizer
        super().__init__(loss, [encoder, decoder, prior], **model_kwargs)


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
