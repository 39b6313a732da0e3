"""Common models in one line: a VAE, variational inference, maximum likelihood.

Maximum likelihood of a Normal's mean: one gradient step of size 1 from 0 lands on the sample mean.

>>> import torch
>>> from deepgm.distributions import Normal
>>> p = Normal(var=["x"], loc=torch.nn.Parameter(torch.zeros(1)), scale=1.0)
>>> model = ML(p, optimizer=torch.optim.SGD, optimizer_params={"lr": 1.0})
>>> _ = model.train_step({"x": torch.tensor([[1.0], [2.0], [6.0]])})
>>> p.params()["loc"].tolist()
[3.0]

A VAE whose encoder is the exact posterior of ``z ~ N(0, 1)``, ``x|z ~ N(z, 1)`` (``N(z; x/2, ½)``):
its ELBO is ``log p(x) = -½ log 4π - x²/4``, and so is the importance-sampled likelihood.

>>> class Encoder(torch.nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.loc = torch.nn.Linear(1, 1)
...         torch.nn.init.constant_(self.loc.weight, 0.5)
...         torch.nn.init.zeros_(self.loc.bias)
...     def forward(self, x):
...         return {"loc": self.loc(x), "scale": torch.full_like(x, 0.5 ** 0.5)}
>>> q = Normal(var=["z"], cond_var=["x"], net=Encoder(), name="q")
>>> vae = VAE(q, Normal(var=["x"], cond_var=["z"], loc="z", scale=1.0),
...           Normal(var=["z"], loc=0.0, scale=1.0, features_shape=[1]))
>>> str(vae.loss)
'mean(D_KL[q(z|x)||p(z)] - E_{q(z|x)}[log p(x|z)])'
>>> scores = vae.evaluate({"x": torch.tensor([[0.0], [2.0]])}, k=10)  # -mean of -1.2655 and -2.2655
>>> round(scores["test_elbo"], 4), round(scores["test_nll"], 4)
(-1.7655, 1.7655)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from deepgm.distributions.base import Distribution
from deepgm.distributions.family import Family
from deepgm.losses.bounds import ELBO
from deepgm.losses.core import KL, E, LogProb
from deepgm.losses.expr import Loss
from deepgm.models.evaluation import conditions_of, image_shape_of, rows
from deepgm.models.likelihood import log_likelihood
from deepgm.models.model import Model

if TYPE_CHECKING:
    from deepgm.data.prepared import DataInfo

__all__ = ["VAE", "VI", "ML"]


class VAE(Model):
    """A latent-variable model ``p(x|z)p(z)`` with an encoder ``q(z|x)``.

    The objective defaults to the negative ELBO with the KL analytic where available,
    ``mean(D_KL[q(z|x)||p(z)] - E_{q(z|x)}[log p(x|z)]) + regularizer``; pass ``loss`` for another one
    (IWAE, β-VAE...). ``generate``, ``reconstruct``, ``encode``, ``elbo`` and ``log_likelihood`` serve
    evaluation and plots; :meth:`evaluate` reports the test ELBO and the importance-sampled NLL,
    :meth:`figures` draws samples, reconstructions, a latent traversal and the latent map. Variables of
    the test data that the encoder or decoder is conditioned on (a CVAE's ``y``) are passed to both.
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
        decode: Callable[..., torch.Tensor] = self.decode  # conditions as keywords
        return decode(self.encode(x, **conditions), **conditions)

    @torch.no_grad()
    def elbo(self, x: torch.Tensor, **conditions: torch.Tensor) -> torch.Tensor:
        """The ELBO of every data point (one draw)."""
        return ELBO(self.joint, self.encoder)({self._x(): x, **conditions})

    def log_likelihood(self, x: torch.Tensor, k: int = 5000, chunk: int | None = None,
                       batch_size: int | None = None, **conditions: torch.Tensor) -> torch.Tensor:
        """Importance-sampled ``log p(x)`` of every data point with ``k`` draws from the encoder.

        ``chunk`` (draws per data point) and ``batch_size`` (data points) of one pass are chosen by
        :func:`~deepgm.models.likelihood.log_likelihood` unless given; they change the speed and the order in
        which the draws are made, not the estimator.
        """
        return log_likelihood(self.joint, self.encoder, {self._x(): x, **conditions}, k=k, chunk=chunk,
                              batch_size=batch_size)


    def conditions(self, data: Mapping[str, torch.Tensor], n: int | None = None) -> dict[str, torch.Tensor]:
        """The tensors of ``data`` that the encoder or decoder is conditioned on besides ``x`` and ``z``."""
        own = {self._x(), self._z()}
        names = [c for c in (*self.encoder.cond_var, *self.decoder.cond_var) if c not in own]
        return conditions_of(data, names, n)

    def evaluate(self, test_data: Mapping[str, torch.Tensor], *, k: int = 1000,
                 info: DataInfo | None = None) -> dict[str, Any]:
        """``test_elbo`` (one draw per example) and ``test_nll`` = ``-mean log p(x)`` importance-sampled
        with ``k`` draws from the encoder (also under ``test_nll_k{k}``), averaged over ``test_data``."""
        x, conds = test_data[self._x()], self.conditions(test_data)
        with self.evaluating():
            log_likelihood: Callable[..., torch.Tensor] = self.log_likelihood  # conditions as keywords
            nll = float(-log_likelihood(x, k=k, **conds).mean())  # first: `deepgm eval`'s seeded draws
            elbo = float(self.elbo(x, **conds).mean())
        return {"test_elbo": elbo, "test_nll": nll, f"test_nll_k{k}": nll, "k": k,
                "likelihood": "importance sampling"}

    def figures(self, out_dir: Path, test_data: Mapping[str, torch.Tensor], info: DataInfo) -> list[Path]:
        """``samples.png``, ``reconstructions.png`` and ``latent_traversal.png`` for images (small ones
        upscaled), and ``latent_map.png`` (the test encodings, coloured by ``y`` when there is one)."""
        from deepgm import viz

        x = test_data[self._x()]
        shape = image_shape_of(info, x)
        out: list[Path] = []
        with self.evaluating():
            if shape is not None:
                c64 = self.conditions(test_data, 64)
                generate: Callable[..., torch.Tensor] = self.generate  # conditions as keywords
                samples = generate(rows(c64, 64), **c64)
                out.append(viz.save_samples(samples, out_dir / "samples.png", image_shape=shape))
                c8 = self.conditions(test_data, 8)
                out.append(viz.save_reconstructions(viz.upscale(x[:8], shape), viz.upscale(self.reconstruct(
                    x[:8], **c8), shape), out_dir / "reconstructions.png", n=8))
                c1 = self.conditions(test_data, 1)
                z0 = self.encode(x[:1], **c1)[0]

                def decode(z: torch.Tensor) -> torch.Tensor:
                    cond = {c: v.expand(len(z), *v.shape[1:]) for c, v in c1.items()}
                    at: Callable[..., torch.Tensor] = self.decode  # conditions as keywords
                    return viz.upscale(at(z, **cond), shape)

                big = tuple(viz.upscale(x[:1], shape).shape[1:])
                out.append(viz.save_latent_traversal(decode, z0, out_dir / "latent_traversal.png",
                                                     dims=list(range(min(8, z0.numel()))), image_shape=big))
            z = self.encode(x, **self.conditions(test_data))
            out.append(viz.save_latent_map_2d(z, test_data.get("y"), out_dir / "latent_map.png"))
        return out


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
