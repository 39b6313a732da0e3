"""Energy-based models and RBMs as trainable models: an objective of :mod:`deepgm.losses.energy`, the
distribution, sampling, and test metrics that name their estimator.

* :class:`EnergyModel` — an :class:`~deepgm.distributions.EnergyDistribution` trained by any energy
  objective. ``evaluate`` reports the mean objective and test energy; for 2-D data the exact-on-a-grid
  test NLL (``test_nll_grid``: the normaliser by the midpoint rule on a grid over the test data's range);
  for other data sample-based metrics (MNIST-FID for 28×28 images) of MCMC draws.
* :class:`JEMModel` — JEM (Grathwohl et al. 2019): a classifier ``p(y|x) = softmax(f(x))`` whose logits
  are also the energy ``E(x) = -logsumexp_y f(x)[y]`` of an :class:`EnergyModel`; ``evaluate`` adds the
  classifier's test accuracy, label NLL and calibration (ECE) to the energy model's metrics, and
  ``generate(n, y=labels)`` draws from ``p(x|y) ∝ p(y|x) p(x)``.
* :class:`RBMModel` — an :class:`~deepgm.distributions.RBM` trained by CD-k or PCD; ``evaluate`` reports
  the AIS test log-likelihood (``test_loglik_ais``, with its chains and temperatures), and the exact one
  (``test_loglik_exact``) when a layer is small enough to enumerate. It keeps the training data's pixel
  means (a buffer) for AIS's base-rate model.

>>> import torch
>>> from deepgm.distributions import RBM
>>> from deepgm.losses import ContrastiveDivergence
>>> _ = torch.manual_seed(0)
>>> rbm = RBM(["x"], visible=6, hidden=3)
>>> model = RBMModel(rbm, ContrastiveDivergence(rbm, init="data", steps=1).mean())
>>> _ = model.train_step({"x": torch.bernoulli(torch.full((16, 6), 0.3))})
>>> scores = model.evaluate({"x": torch.ones(4, 6)}, ais_chains=10, ais_temperatures=100)
>>> scores["likelihood"], scores["ais_chains"], round(scores["test_loglik_ais"] - scores["test_loglik_exact"], 1)
('AIS (Salakhutdinov & Murray 2008), 10 chains, 100 temperatures', 10, 0.0)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch

from deepgm.distributions.energy import EnergyDistribution
from deepgm.distributions.families import Categorical
from deepgm.distributions.mcmc import MCMCSampler, ReplayBuffer
from deepgm.distributions.rbm import RBM, ais_log_partition
from deepgm.errors import MissingVariableError, ParameterError, ShapeError
from deepgm.losses.energy import ContrastiveDivergence
from deepgm.losses.expr import Loss
from deepgm.metrics.calibration import ECE_ESTIMATOR, expected_calibration_error
from deepgm.models.evaluation import generator_metrics, image_shape_of, save_sample_figure
from deepgm.models.model import Model

if TYPE_CHECKING:
    from deepgm.data.prepared import DataInfo

__all__ = ["EnergyModel", "JEMModel", "RBMModel", "grid_bounds", "base_rate_logits_from_sums"]

Batch = Mapping[str, torch.Tensor]
EXACT_IN_EVALUATE = 2 ** 16  # evaluate adds the exact log-likelihood up to this many enumerated states


def grid_bounds(x: torch.Tensor, margin: float = 0.25) -> list[tuple[float, float]]:
    """A box around the points ``x`` ``(N, D)``: each dimension's range widened by ``margin`` of its width
    on both sides (where a grid normaliser integrates).

    >>> grid_bounds(torch.tensor([[0.0, -1.0], [2.0, 1.0]]), margin=0.5)
    [(-1.0, 3.0), (-2.0, 2.0)]
    """
    lo, hi = x.min(0).values, x.max(0).values
    pad = (hi - lo).clamp(min=1e-3) * margin
    return [(float(a), float(b)) for a, b in zip(lo - pad, hi + pad)]


def _buffer_of(loss: Loss) -> ReplayBuffer | None:
    for node in loss.walk():
        if isinstance(node, ContrastiveDivergence) and node.buffer is not None:
            return node.buffer
    return None


class EnergyModel(Model):
    """Trains ``p`` (an energy-based distribution) on the objective ``loss`` (module docstring).

    ``generate`` runs ``sampler`` (default: the distribution's) from the persistent chains of a PCD
    objective when it has filled its buffer (the states it trained with), else from fresh starts.
    ``grid_points``: cells per dimension of the grid normaliser of 2-D data."""

    def __init__(self, p: EnergyDistribution, loss: Loss, sampler: MCMCSampler | None = None,
                 grid_points: int = 300, **model_kwargs: Any) -> None:
        if not isinstance(p, EnergyDistribution):
            raise TypeError(f"EnergyModel needs an EnergyDistribution, got {type(p).__name__}")
        super().__init__(loss, [p], **model_kwargs)
        self.sampler = sampler or p.sampler
        self.grid_points = grid_points

    @property
    def energy_dist(self) -> EnergyDistribution:
        """The trained distribution."""
        return self.distributions[0]  # type: ignore[return-value]

    def generate(self, n: int, **conditions: torch.Tensor) -> torch.Tensor:
        """``n`` MCMC draws of ``x`` (one per condition row when conditions are given)."""
        p = self.energy_dist
        buf = _buffer_of(self.loss)
        with self.evaluating():
            if conditions:
                conds = [conditions[c] for c in p.cond_var]
                n = len(conds[0])
            else:
                conds = []
            if buf is not None and bool(buf.filled):
                x0 = buf.states[torch.randint(0, buf.capacity, (n,), device=buf.states.device)]
            else:
                x0 = p.initial_states(n)
            return p.run_chain(x0, conds, self.sampler)

    @torch.no_grad()
    def energies(self, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """``E(x)`` of the rows of ``x`` (unconditional distributions), in batches, eval mode."""
        with self.evaluating():
            return torch.cat([self.energy_dist.energy_rows(c) for c in torch.split(x, batch_size)])

    def grid_log_normalizer(self, x: torch.Tensor) -> tuple[torch.Tensor, list[tuple[float, float]]]:
        """``log Z`` on a grid around the 2-D points ``x`` (:func:`grid_bounds`), and the box."""
        box = grid_bounds(x)
        with self.evaluating():
            return self.energy_dist.grid_log_normalizer(box, self.grid_points), box

    def evaluate(self, test_data: Batch, *, k: int = 1000, info: DataInfo | None = None) -> dict[str, Any]:
        """``test_loss`` (the mean objective), ``test_energy``; 2-D data: ``test_nll_grid`` and
        ``log_z_grid``; other unconditional data: sample metrics of ``min(1000, N)`` draws."""
        p = self.energy_dist
        x = test_data[p.var[0]]
        out: dict[str, Any] = dict(super().evaluate(test_data))
        if p.cond_var:
            out["likelihood"] = "unnormalised (conditional energy): no test likelihood"
            return out
        e = self.energies(x)
        out["test_energy"] = float(e.mean())
        if x.dim() == 2 and x.shape[1] == 2:
            log_z, box = self.grid_log_normalizer(x)
            out.update({"test_nll_grid": float(e.mean() + log_z), "log_z_grid": float(log_z),
                        "likelihood": f"normaliser by the midpoint rule on a {self.grid_points}x{self.grid_points} "
                                      f"grid over {[[round(a, 2), round(b, 2)] for a, b in box]}"})
            return out
        samples = self.generate(min(1000, len(x)))
        metrics = generator_metrics(samples, x, info)
        out.update({f"sample_{k}" if k == "note" else k: v for k, v in metrics.items()})
        out["likelihood"] = "unnormalised: no test likelihood (the normaliser is not computed above 2 dimensions)"
        return out

    def figures(self, out_dir: Path, test_data: Batch, info: DataInfo) -> list[Path]:
        """``samples.png`` (64 draws) for images; ``density.png`` (``exp(-E) / Z`` on a grid, 1000 draws) in 2-D."""
        from deepgm import viz

        p = self.energy_dist
        x = test_data[p.var[0]]
        if p.cond_var:
            return []
        if x.dim() == 2 and x.shape[1] == 2:
            log_z, box = self.grid_log_normalizer(x)
            lim = max(max(abs(a), abs(b)) for a, b in box)
            return [viz.save_density_2d(lambda pts: -self.energies(pts) - log_z, out_dir / "density.png",
                                        samples=self.generate(1000), lim=lim)]
        if image_shape_of(info, x) is not None:
            path = save_sample_figure(self.generate(64), out_dir / "samples.png", info)
            return [path] if path is not None else []
        return []


class JEMModel(EnergyModel):
    """JEM (Grathwohl et al. 2019): the classifier ``classifier`` (``p(y|x)``, a :class:`Categorical` whose
    logits ``f(x)`` come from a network) read as the energy-based model ``p`` with ``E(x) = -logsumexp_y
    f(x)[y]``, trained on ``loss`` (typically ``mean(-log p(y|x) + CD[E_p])``: see the zoo's ``jem``).

    Every parameter of ``classifier`` must be one of ``p``'s (one network: its logits are the energy's).
    ``evaluate`` reports :class:`EnergyModel`'s metrics (of ``p(x)``; MNIST-FID of draws from the
    replay buffer for 28×28 images) and the classifier's ``test_accuracy``, ``test_error``,
    ``test_nll_labels`` (mean ``-log p(y|x)``, nats) and ``test_ece`` (:func:`expected_calibration_error`
    with ``ece_bins`` bins, named in ``calibration``). ``generate(n, y=labels)`` runs the sampler on the
    energy of ``p(x|y) ∝ p(y|x) p(x)``, ``E(x) - log p(y|x) = -f(x)[y]``.

    >>> from torch import nn
    >>> from deepgm.losses import LogProb
    >>> f = nn.Linear(2, 3)
    >>> p = EnergyDistribution(var=["x"], energy=lambda x: -f(x).logsumexp(-1), event_shape=[2])
    >>> JEMModel(p, Categorical(var=["y"], cond_var=["x"], net=nn.Linear(2, 3)), -LogProb(p).mean())
    Traceback (most recent call last):
    ...
    ValueError: JEMModel: the classifier p(y|x) has parameters of its own; JEM reads its logits f(x) as the \
energy E(x) = -logsumexp_y f(x)[y], so every parameter of p(y|x) must be one of p(x)'s
    """

    def __init__(self, p: EnergyDistribution, classifier: Categorical, loss: Loss, sampler: MCMCSampler | None = None,
                 ece_bins: int = 15, **model_kwargs: Any) -> None:
        if not isinstance(classifier, Categorical):
            raise TypeError(f"JEMModel needs a Categorical classifier p(y|x), got {type(classifier).__name__}")
        if not isinstance(p, EnergyDistribution):
            raise TypeError(f"JEMModel needs an EnergyDistribution, got {type(p).__name__}")
        if p.cond_var or list(classifier.cond_var) != list(p.var):
            raise ValueError(f"JEMModel: the classifier must be conditioned on exactly {p.var} and the energy on "
                             f"nothing; got {classifier.prob_text} and {p.prob_text}")
        own = {id(w) for w in p.parameters()}
        if any(id(w) not in own for w in classifier.parameters()):
            raise ValueError(f"JEMModel: the classifier {classifier.prob_text} has parameters of its own; JEM reads "
                             f"its logits f(x) as the energy E(x) = -logsumexp_y f(x)[y], so every parameter of "
                             f"{classifier.prob_text} must be one of {p.prob_text}'s")
        if isinstance(ece_bins, bool) or not isinstance(ece_bins, int) or ece_bins < 1:
            raise ValueError(f"JEMModel: ece_bins must be an integer of at least 1, got {ece_bins!r}")
        super().__init__(p, loss, sampler=sampler, **model_kwargs)
        self.classifier = classifier
        self.ece_bins = ece_bins

    @property
    def label_var(self) -> str:
        """The name of the label variable (``"y"``)."""
        return self.classifier.var[0]

    @torch.no_grad()
    def class_log_probs(self, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """``log p(y|x)`` of every class ``(N, K)`` at the rows of ``x``, in batches, eval mode."""
        name = self.energy_dist.var[0]
        with self.evaluating():
            parts = [cast(torch.distributions.OneHotCategorical, self.classifier.dist({name: c})).logits
                     for c in torch.split(x, batch_size)]
        return torch.cat(parts)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """The most probable class of each row of ``x``."""
        return self.class_log_probs(x).argmax(-1)

    def _labels(self, data: Batch, n: int, k: int) -> torch.Tensor:
        """The labels of ``data``, checked: present, integer class indices ``(n,)`` in ``[0, k)``."""
        name = self.label_var
        if name not in data:
            raise MissingVariableError(f"JEMModel: evaluate needs the labels '{name}' (class indices in [0, {k})) "
                                       f"beside '{self.energy_dist.var[0]}'; the test data hold "
                                       f"{', '.join(sorted(data)) or 'nothing'}")
        y = data[name]
        if not torch.is_tensor(y) or y.is_floating_point() or y.dtype == torch.bool or tuple(y.shape) != (n,):
            what = f"{tuple(y.shape)} {str(y.dtype).replace('torch.', '')}" if torch.is_tensor(y) else \
                type(y).__name__
            raise ShapeError(f"JEMModel: the labels '{name}' must be integer class indices of shape ({n},), one "
                             f"per row of '{self.energy_dist.var[0]}'; got {what}")
        if n and (int(y.min()) < 0 or int(y.max()) >= k):
            raise ParameterError(f"JEMModel: the labels '{name}' must be class indices in [0, {k}); got values in "
                                 f"[{int(y.min())}, {int(y.max())}]")
        return y.long()

    def evaluate(self, test_data: Batch, *, k: int = 1000, info: DataInfo | None = None) -> dict[str, Any]:
        """:meth:`EnergyModel.evaluate`'s metrics of ``p(x)`` and the classifier's: ``test_accuracy``,
        ``test_error``, ``test_nll_labels``, ``test_ece`` (``calibration`` names the estimator)."""
        name = self.energy_dist.var[0]
        if name not in test_data:
            raise MissingVariableError(f"JEMModel: evaluate needs the images '{name}' and labels '{self.label_var}'; "
                                       f"the test data hold {', '.join(sorted(test_data)) or 'nothing'}")
        x = test_data[name]
        log_p = self.class_log_probs(x)
        y = self._labels(test_data, len(x), log_p.shape[-1])
        out = super().evaluate(test_data, k=k, info=info)
        acc = float((log_p.argmax(-1) == y).double().mean())
        out.update({"test_accuracy": acc, "test_error": 1.0 - acc,
                    "test_nll_labels": float(-log_p.gather(1, y[:, None]).double().mean()),
                    "test_ece": expected_calibration_error(log_p.exp(), y, self.ece_bins),
                    "calibration": ECE_ESTIMATOR.format(bins=self.ece_bins)})
        return out

    def generate(self, n: int, **conditions: torch.Tensor) -> torch.Tensor:
        """``n`` draws of ``p(x)`` (:meth:`EnergyModel.generate`), or with ``y=labels`` one draw of
        ``p(x|y)`` per label: the sampler on ``E(x) - log p(y|x)``, from the replay buffer's chains."""
        y = conditions.get(self.label_var)
        if y is None:
            return super().generate(n)
        p, name = self.energy_dist, self.energy_dist.var[0]
        buf = _buffer_of(self.loss)

        def energy(x: torch.Tensor) -> torch.Tensor:
            return p.energy_rows(x) - self.classifier.log_prob({name: x, self.label_var: y})

        with self.evaluating():
            if buf is not None and bool(buf.filled):
                x0 = buf.states[torch.randint(0, buf.capacity, (len(y),), device=buf.states.device)]
            else:
                x0 = p.initial_states(len(y))
            return self.sampler.run(energy, x0)

    def figures(self, out_dir: Path, test_data: Batch, info: DataInfo) -> list[Path]:
        """:meth:`EnergyModel.figures`, and for images ``samples_by_class.png``: 8 draws of ``p(x|y)`` of
        every class, a column per class."""
        from deepgm import viz

        paths = super().figures(out_dir, test_data, info)
        x = test_data[self.energy_dist.var[0]]
        shape = image_shape_of(info, x)
        if shape is None:
            return paths
        k = int(self.class_log_probs(x[:1]).shape[-1])
        y = torch.arange(8 * k, device=x.device) % k
        samples = self.generate(len(y), **{self.label_var: y}).clamp(0, 1)
        return [*paths, viz.save_samples(samples, out_dir / "samples_by_class.png", image_shape=shape, nrow=k)]


class RBMModel(Model):
    """Trains an :class:`RBM` on ``loss`` (CD-k or PCD: :class:`ContrastiveDivergence`) and reports the AIS
    test log-likelihood (module docstring). ``ais_chains``/``ais_temperatures`` are the defaults of
    :meth:`evaluate`; ``init_visible_bias``: set the visible biases to the logits of the first batch's
    smoothed pixel means before the first step (Hinton's practical guide); ``binarize``: grey levels in
    [0, 1] given to ``train_step`` are binarised by a fresh Bernoulli draw (dynamic binarisation), and
    those given to ``evaluate`` by a draw with a fixed seed (binary data pass unchanged)."""

    data_sum: torch.Tensor
    data_count: torch.Tensor

    def __init__(self, rbm: RBM, loss: Loss, ais_chains: int = 100, ais_temperatures: int = 14_500,
                 init_visible_bias: bool = False, binarize: bool = False, **model_kwargs: Any) -> None:
        if not isinstance(rbm, RBM):
            raise TypeError(f"RBMModel needs an RBM, got {type(rbm).__name__}")
        super().__init__(loss, [rbm], **model_kwargs)
        self.ais_chains, self.ais_temperatures = ais_chains, ais_temperatures
        self.init_visible_bias, self.binarize = init_visible_bias, binarize
        self.register_buffer("data_sum", torch.zeros(rbm.visible, dtype=torch.float64))
        self.register_buffer("data_count", torch.zeros((), dtype=torch.float64))

    @property
    def rbm(self) -> RBM:
        """The trained RBM."""
        return self.distributions[0]  # type: ignore[return-value]

    def train_step(self, inputs: Mapping[str, Any], **params: Any) -> float | dict[str, float]:
        """One step of the objective; the batch's pixels are counted for the base-rate model of AIS."""
        x = inputs[self.rbm.var[0]] if isinstance(inputs, Mapping) else None
        if torch.is_tensor(x) and self.binarize and not _is_binary(x):
            x = torch.bernoulli(x.float().clamp(0, 1))
            inputs = {**inputs, self.rbm.var[0]: x}
        if torch.is_tensor(x):
            if self.init_visible_bias and float(self.data_count) == 0:
                rows = x.detach().reshape(-1, self.rbm.visible).float()
                with torch.no_grad():
                    self.rbm.visible_bias.copy_(base_rate_logits_from_sums(rows.sum(0), len(rows)))
            self.data_sum += x.detach().reshape(-1, self.rbm.visible).sum(0).to(self.data_sum)
            self.data_count += x.reshape(-1, self.rbm.visible).shape[0]
        return super().train_step(inputs, **params)

    def base_logits(self) -> torch.Tensor | None:
        """The base-rate model's visible logits from the training pixels seen so far (None before any)."""
        if float(self.data_count) == 0:
            return None
        return base_rate_logits_from_sums(self.data_sum, float(self.data_count))

    def generate(self, n: int, **conditions: torch.Tensor) -> torch.Tensor:
        """``n`` draws: the RBM's Gibbs chains (its sampler's sweeps) from independent pixels."""
        with self.evaluating():
            return self.rbm.sample(batch_n=n)[self.rbm.var[0]]

    def evaluate(self, test_data: Batch, *, k: int = 1000, info: DataInfo | None = None,
                 ais_chains: int | None = None, ais_temperatures: int | None = None) -> dict[str, Any]:
        """``test_loglik_ais`` (mean ``-F(v) - log Ẑ`` in nats, ``log Ẑ`` by AIS), ``log_z_ais`` with its
        ±3 s.e. interval, ``ais_chains``, ``ais_temperatures``; ``test_loglik_exact`` and ``log_z_exact``
        when the smaller layer has at most 16 units; ``test_loss`` the mean objective."""
        rbm = self.rbm
        x = test_data[rbm.var[0]].reshape(-1, rbm.visible)
        binarized = self.binarize and not _is_binary(x)
        if binarized:
            x = torch.bernoulli(x.float().clamp(0, 1), generator=torch.Generator(x.device).manual_seed(0))
            test_data = {**test_data, rbm.var[0]: x}
        chains = ais_chains or self.ais_chains
        temps = ais_temperatures or self.ais_temperatures
        out: dict[str, Any] = dict(super().evaluate(test_data))
        with self.evaluating():
            ais = ais_log_partition(rbm, chains, temps, self.base_logits())
            f = torch.cat([rbm.free_energy(c).detach() for c in torch.split(x, 1000)])
        out.update({"test_loglik_ais": float(-f.mean() - ais.log_z), "log_z_ais": ais.log_z,
                    "log_z_ais_3se": [ais.log_z_lo, ais.log_z_hi], "ais_chains": chains,
                    "ais_temperatures": temps, "test_free_energy": float(f.mean()),
                    "likelihood": f"AIS (Salakhutdinov & Murray 2008), {chains} chains, {temps} temperatures"})
        if binarized:
            out["test_binarized"] = "grey levels binarised by one Bernoulli draw (seed 0)"
        if 2 ** min(rbm.visible, rbm.hidden) <= EXACT_IN_EVALUATE:
            log_z = float(rbm.log_partition_exact())
            out.update({"test_loglik_exact": float(-f.mean() - log_z), "log_z_exact": log_z})
        if not math.isfinite(out["log_z_ais_3se"][0]):
            out["log_z_ais_3se"][0] = None  # JSON has no -inf
        return out

    def figures(self, out_dir: Path, test_data: Batch, info: DataInfo) -> list[Path]:
        """``samples.png``: 64 draws (images), else none."""
        x = test_data[self.rbm.var[0]]
        if image_shape_of(info, x) is None:
            return []
        path = save_sample_figure(self.generate(64), out_dir / "samples.png", info)
        return [path] if path is not None else []


def _is_binary(x: torch.Tensor) -> bool:
    return bool(((x == 0) | (x == 1)).all())


def base_rate_logits_from_sums(total: torch.Tensor, count: float, pseudo_count: float = 5.0) -> torch.Tensor:
    """:func:`~deepgm.distributions.rbm.base_rate_logits` from the pixel sums ``total`` of ``count`` examples.

    >>> base_rate_logits_from_sums(torch.tensor([5.0, 0.0]), 5.0).tolist()
    [1.0986123085021973, -1.0986123085021973]
    """
    p = (total.double() + 0.5 * pseudo_count) / (count + pseudo_count)
    return (torch.log(p) - torch.log1p(-p)).float()

