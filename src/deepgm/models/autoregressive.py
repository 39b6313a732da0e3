"""Models of binary images with an autoregressive likelihood: exact ones trained by maximum likelihood
(:class:`AutoregressiveModel`: NADE, MADE, PixelCNN, Gated PixelCNN) and the VAE with a PixelCNN decoder
(:class:`PixelVAE`).

Their pixels are binary. MNIST and Fashion-MNIST come binarised from :func:`deepgm.data.load_splits`
(each training batch a fresh draw ``x ~ Bernoulli(grey levels)``, the test images binarised once with the
fixed seed ``TEST_BINARIZE_SEED``); data in [0, 1] that arrive grey (the 8×8 digits) are binarised by
the model in the same way — a fresh draw for every training batch, one draw with that fixed seed for
evaluation — and ``evaluate`` says which happened (``binarisation``).

:meth:`AutoregressiveModel.evaluate` reports the exact test NLL in nats (``test_nll_exact``, also
``test_nll``) and bits/dim, naming the estimator: the exact log-likelihood, or for an order-agnostic MADE
the exact log-likelihood of the ensemble of ``eval_masks`` masks (``log (1/M) Σ_m p_m(x)``).

>>> import torch
>>> from deepgm.distributions import NADE
>>> model = AutoregressiveModel(NADE(var=["x"], dim=4, hidden=8))
>>> for w in model.parameters():  # zero weights: every conditional is ½
...     _ = torch.nn.init.zeros_(w)
>>> m = model.evaluate({"x": torch.tensor([[0.0, 1.0, 1.0, 0.0]])})
>>> m["estimator"], round(m["test_nll_exact"], 3), round(m["test_bits_per_dim"], 3)  # 4 ln 2 nats: 1 bit per value
('exact log-likelihood', 2.773, 1.0)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from deepgm.data.prepared import TEST_BINARIZE_SEED
from deepgm.distributions.autoregressive import Autoregressive, BinaryMADE
from deepgm.distributions.pixelcnn import PixelAutoregressive
from deepgm.errors import DeepGMError
from deepgm.models.evaluation import conditions_of, image_shape_of, rows, save_sample_figure
from deepgm.models.presets import ML, VAE

if TYPE_CHECKING:
    from deepgm.data.prepared import DataInfo

__all__ = ["AutoregressiveModel", "PixelVAE", "binarized"]

Batch = Mapping[str, torch.Tensor]


def _is_binary(x: torch.Tensor) -> bool:
    return bool(((x == 0) | (x == 1)).all())


def binarized(batch: Batch, name: str, seed: int | None = None) -> tuple[dict[str, torch.Tensor], bool]:
    """``batch`` with ``batch[name]`` binarised when it holds grey levels in [0, 1]: a fresh Bernoulli draw
    (``seed`` None) or one from a generator seeded with ``seed``; and whether it was binarised. Values
    outside [0, 1] are left as they are (the distribution refuses them, naming the variable).

    >>> out, done = binarized({"x": torch.tensor([[0.0, 1.0]])}, "x")
    >>> done, out["x"].tolist()
    (False, [[0.0, 1.0]])
    """
    x = batch.get(name)
    if not torch.is_tensor(x) or not x.is_floating_point() or _is_binary(x):
        return dict(batch), False
    if not bool(((x >= 0) & (x <= 1)).all()):
        return dict(batch), False
    g = torch.Generator(device=x.device).manual_seed(seed) if seed is not None else None
    return {**batch, name: torch.bernoulli(x, generator=g)}, True


def _binary_likelihood(p: Any) -> bool:
    return not (isinstance(p, PixelAutoregressive) and p.likelihood == "logistic")


class AutoregressiveModel(ML):
    """``ML(p)`` for an exact autoregressive ``p`` (:class:`~deepgm.distributions.Autoregressive`):
    minimise ``-mean(log p(x))``; an order-agnostic :class:`~deepgm.distributions.BinaryMADE` gets its next
    masks before every training step, and is evaluated with the ensemble of ``eval_masks`` masks."""

    def __init__(self, p: Autoregressive, eval_masks: int = 1, **model_kwargs: Any) -> None:
        if not isinstance(p, Autoregressive):
            raise TypeError(f"AutoregressiveModel needs a deepgm.distributions.Autoregressive, got {type(p).__name__}")
        if eval_masks < 1:
            raise ValueError(f"AutoregressiveModel: eval_masks must be >= 1, got {eval_masks}")
        super().__init__(p, **model_kwargs)
        self.eval_masks = eval_masks

    @property
    def p(self) -> Autoregressive:
        """The distribution ``p(x[|c])``."""
        return self.distributions[0]  # type: ignore[return-value]

    def _prepared(self, inputs: Batch, seed: int | None = None) -> dict[str, torch.Tensor]:
        if not _binary_likelihood(self.p):
            return dict(inputs)
        return binarized(inputs, self.p.var[0], seed)[0]

    def train_step(self, inputs: Mapping[str, Any], **params: Any) -> float | dict[str, float]:
        p = self.p
        if isinstance(p, BinaryMADE):
            p.next_training_masks()
        return super().train_step(self._prepared(inputs), **params)

    def eval_step(self, inputs: Mapping[str, Any], **params: Any) -> float:
        return super().eval_step(self._prepared(inputs), **params)

    @torch.no_grad()
    def generate(self, n: int, **conditions: torch.Tensor) -> torch.Tensor:
        """``n`` draws of ``x`` (one per condition row when conditions are given; a model conditioned on one
        class label alone draws the classes ``0, 1, …`` in turn when none is given)."""
        p = self.p
        if not conditions and len(p.cond_var) == 1 and p.n_classes:
            conditions = {p.cond_var[0]: torch.arange(n, device=next(p.parameters()).device) % p.n_classes}
        with self.evaluating():
            out = self.p.sample(dict(conditions), batch_n=None if conditions else n)
        return out[self.p.var[0]]

    @torch.no_grad()
    def log_likelihood(self, x: torch.Tensor, batch_size: int = 500, masks: int | None = None,
                       **conditions: torch.Tensor) -> torch.Tensor:
        """The exact ``log p(x)`` of every row of ``x`` (eval mode); an order-agnostic MADE's is that of its
        ensemble of ``masks`` masks (default ``eval_masks``)."""
        p, name = self.p, self.p.var[0]
        n_masks = self.eval_masks if masks is None else masks
        with self.evaluating():
            parts = []
            for i in range(0, len(x), batch_size):
                inputs = {name: x[i:i + batch_size], **{k: v[i:i + batch_size] for k, v in conditions.items()}}
                if isinstance(p, BinaryMADE) and p.order_agnostic:
                    parts.append(p.ensemble_log_prob(inputs, n_masks))
                else:
                    parts.append(p.log_prob(inputs))
        return torch.cat(parts)

    def estimator(self) -> str:
        """How :meth:`evaluate` computes the likelihood, in words."""
        p = self.p
        if isinstance(p, BinaryMADE) and p.order_agnostic:
            return f"exact log-likelihood of the ensemble of {self.eval_masks} masks (log-mean-exp over masks)"
        return "exact log-likelihood"

    def evaluate(self, test_data: Batch, *, k: int = 1000, info: DataInfo | None = None) -> dict[str, Any]:
        """``test_nll_exact`` (= ``test_nll``, ``-mean log p(x)`` in nats) and ``test_bits_per_dim`` over
        ``test_data``, the estimator and the binarisation named; ``test_loss`` is the training objective
        (for an order-agnostic MADE: one mask's NLL). ``k`` is not used: the likelihood is exact."""
        name = self.p.var[0]
        data, fixed = binarized(test_data, name, TEST_BINARIZE_SEED) if _binary_likelihood(self.p) else \
            (dict(test_data), False)
        conds = conditions_of(data, self.p.cond_var)
        log_likelihood: Callable[..., torch.Tensor] = self.log_likelihood  # conditions as keywords
        nll = float(-log_likelihood(data[name], **conds).mean())
        bits = nll / (self.p.dim * math.log(2))
        out: dict[str, Any] = {"test_nll_exact": nll, "test_nll": nll, "test_bits_per_dim": bits,
                               "likelihood": "exact", "estimator": self.estimator()}
        if isinstance(self.p, BinaryMADE) and self.p.order_agnostic:
            out["eval_masks"] = self.eval_masks
            out["test_loss"] = float(-log_likelihood(data[name], masks=1, **conds).mean())
        else:
            out["test_loss"] = nll
        out["binarisation"] = (f"fixed: binarised by the model with seed {TEST_BINARIZE_SEED} (the data were grey)"
                               if fixed else "as given (binary test images: deepgm.data binarises MNIST's once, "
                               f"with seed {TEST_BINARIZE_SEED}; training batches dynamically)")
        return out

    def figures(self, out_dir: Path, test_data: Batch, info: DataInfo) -> list[Path]:
        """``samples.png``: 64 draws (at the first 64 test conditions, for a conditional model) for images."""
        x = test_data[self.p.var[0]]
        if image_shape_of(info, x) is None:
            return []
        conds = conditions_of(test_data, self.p.cond_var, 64)
        generate: Callable[..., torch.Tensor] = self.generate  # conditions as keywords
        path = save_sample_figure(generate(rows(conds, 64), **conds), out_dir / "samples.png", info)
        return [path] if path is not None else []


class PixelVAE(VAE):
    """A VAE whose decoder is an autoregressive image distribution conditioned on ``z`` (Gulrajani et al.
    2017's PixelVAE, with a PixelCNN decoder): the ordinary negative ELBO; grey inputs are binarised as
    :class:`AutoregressiveModel` does; :meth:`evaluate` uses at most ``max_eval_k`` importance samples
    (each costs a pass of the PixelCNN over the test set)."""

    def __init__(self, encoder: Any, decoder: Any, prior: Any, max_eval_k: int = 100, **kwargs: Any) -> None:
        if not isinstance(decoder, Autoregressive):
            raise DeepGMError(f"PixelVAE: the decoder must be an autoregressive distribution, got "
                              f"{type(decoder).__name__}")
        super().__init__(encoder, decoder, prior, **kwargs)
        self.max_eval_k = max_eval_k

    def _prepared(self, inputs: Mapping[str, Any], seed: int | None = None) -> dict[str, Any]:
        if not _binary_likelihood(self.decoder):
            return dict(inputs)
        return binarized(inputs, self._x(), seed)[0]

    def train_step(self, inputs: Mapping[str, Any], **params: Any) -> float | dict[str, float]:
        return super().train_step(self._prepared(inputs), **params)

    def eval_step(self, inputs: Mapping[str, Any], **params: Any) -> float:
        return super().eval_step(self._prepared(inputs), **params)

    def evaluate(self, test_data: Batch, *, k: int = 1000, info: DataInfo | None = None) -> dict[str, Any]:
        """The VAE's metrics (test ELBO, importance-sampled NLL with ``min(k, max_eval_k)`` draws)."""
        used = min(k, self.max_eval_k)
        out = super().evaluate(self._prepared(test_data, TEST_BINARIZE_SEED), k=used, info=info)
        out["estimator"] = f"importance sampling with {used} draws from q(z|x) (a bound in expectation)"
        return out

    def figures(self, out_dir: Path, test_data: Batch, info: DataInfo) -> list[Path]:
        return super().figures(out_dir, self._prepared(test_data, TEST_BINARIZE_SEED), info)
