"""Sequential latent-variable models (VRNN, DMM, SRNN, TD-VAE): training, evaluation per time step, sampling.

A :class:`SequenceModel` trains its objective (an :class:`~deepgm.losses.IterativeLoss`, usually the
negative ELBO averaged over the sequences of a batch) and reports on held-out sequences what their users
compare: the negative ELBO and a particle estimate of the negative log-likelihood, each **per time step**
— the total over all test sequences divided by the number of real (unpadded) test time steps.
Sequences are batch-first and padded, with a 0/1 ``mask`` of real steps.

:func:`generate_sequences` is the ancestral sampler of any such model: at each step it draws the
generative distributions in order (e.g. ``z_t ~ p(z_t|h)``, ``x_t ~ p(x_t|z_t,h)``, ``h' = f(x_t,z_t,h)``)
and carries the state to the next step.

>>> import torch
>>> from deepgm.distributions import Deterministic, Normal
>>> walk = Normal(var=["x"], cond_var=["h"], loc="h", scale=0.0 + 1e-3)
>>> carry = Deterministic(var=["h_new"], cond_var=["x"], loc="x")
>>> out = generate_sequences([walk, carry], n=2, length=3, update_value={"h_new": "h"},
...                          initial={"h": torch.ones(1)})
>>> out["x"].shape, bool((out["x"] - 1).abs().max() < 0.01)
(torch.Size([2, 3, 1]), True)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from deepgm.distributions.base import Distribution
from deepgm.distributions.env import Env
from deepgm.errors import DeepGMError, ShapeError
from deepgm.losses.expr import Loss
from deepgm.models.model import Model

if TYPE_CHECKING:
    from deepgm.data.prepared import DataInfo

__all__ = ["SequenceModel", "generate_sequences", "check_sequences", "trim_to_longest"]

Batch = Mapping[str, torch.Tensor]


def check_sequences(data: Batch, owner: str, var: str = "x", mask_var: str = "mask") -> None:
    """Refuse data that are not padded batch-first sequences with a matching 0/1 mask."""
    if var not in data or mask_var not in data:
        raise ShapeError(f"{owner} needs sequences as {{'{var}': (N, T, ...), '{mask_var}': (N, T)}}, got keys "
                         f"{sorted(data)}")
    x, mask = data[var], data[mask_var]
    if x.dim() < 3 or mask.shape != x.shape[:2]:
        raise ShapeError(f"{owner}: '{var}' must be (N, T, features...) and '{mask_var}' (N, T) with the same N and "
                         f"T, got {tuple(x.shape)} and {tuple(mask.shape)}")


def trim_to_longest(batch: Mapping[str, Any], mask_var: str = "mask") -> dict[str, Any]:
    """The batch cut after its longest sequence's last real step (every tensor with the mask's ``(N, T)``
    leading shape), so that no step is computed for padding alone: one host synchronisation."""
    mask = batch.get(mask_var)
    if not torch.is_tensor(mask) or mask.dim() != 2:
        return dict(batch)
    n, t = mask.shape
    longest = int(mask.sum(1).max())
    if longest >= t:
        return dict(batch)
    return {k: v[:, :longest] if torch.is_tensor(v) and v.dim() >= 2 and v.shape[:2] == (n, t) else v
            for k, v in batch.items()}


@torch.no_grad()
def generate_sequences(steps: Sequence[Distribution], n: int, length: int, update_value: Mapping[str, str],
                       initial: Mapping[str, torch.Tensor], keep: Sequence[str] | None = None,
                       start: Mapping[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """``n`` sequences of ``length`` steps: at each step every distribution of ``steps`` is drawn in order
    (each sees the state and what the earlier ones drew), then ``update_value`` carries the state.
    ``initial`` holds one row per state variable (repeated ``n`` times); ``start`` holds ``n`` rows of a
    state per sequence (e.g. a belief after observed frames). Returns the drawn variables named in
    ``keep`` (default: all drawn) stacked batch-first."""
    state: dict[str, torch.Tensor] = {name: v.expand(n, *v.shape) for name, v in initial.items()}
    for name, v in (start or {}).items():
        if v.shape[0] != n:
            raise ShapeError(f"generate_sequences: start value '{name}' must have n={n} rows, got {tuple(v.shape)}")
        state[name] = v
    out: dict[str, list[torch.Tensor]] = {}
    for _ in range(length):
        env = Env(state)
        for d in steps:
            d.draw_into(env, (), n, True)
        for name in keep if keep is not None else [v for d in steps for v in d.var]:
            out.setdefault(name, []).append(env.get(name, "generate_sequences"))
        state = {**state, **{old: env.get(new, "generate_sequences") for new, old in update_value.items()}}
    return {v: torch.stack(vals, 1) for v, vals in out.items()}


class SequenceModel(Model):
    """A :class:`~deepgm.models.Model` of padded batch-first sequences ``{"x": (N, T, ...), "mask": (N, T)}``.

    ``elbo`` is the per-sequence ELBO (an expression giving one value per sequence, masked),
    ``bounds`` maps a name to a function ``k -> expression`` of a per-sequence lower bound on
    ``log p(x_{1:T})`` with ``k`` particles (``"smc"``: FIVO's particle filter, ``"iwae"``: the sequence
    IWAE); ``sampler(n, length) -> (n, length, ...)`` draws sequences. :meth:`evaluate` reports each
    per time step (the negative ``elbo`` as ``test_<elbo_name>_per_step``). ``extra_figures`` maps a
    figure's name to a function of the test data giving the sequences it shows (e.g. TD-VAE's jumpy
    predictions).
    """

    def __init__(self, loss: Loss, distributions: Sequence[Distribution], *, elbo: Loss,
                 bounds: Mapping[str, Callable[[int], Loss]] | None = None,
                 sampler: Callable[[int, int], torch.Tensor] | None = None, eval_batch: int = 64,
                 elbo_name: str = "neg_elbo", max_particles: int = 100,
                 extra_figures: Mapping[str, Callable[[Batch], torch.Tensor]] | None = None,
                 **model_options: Any) -> None:
        super().__init__(loss, distributions, **model_options)
        self.elbo = elbo
        self.bounds = dict(bounds or {})
        self._sampler = sampler
        self.eval_batch = eval_batch
        self.elbo_name = elbo_name
        self.max_particles = max_particles  # evaluate's k is cut to this (its cost grows as k × steps)
        self.extra_figures = dict(extra_figures or {})
        self._bound_cache: dict[tuple[str, int], Loss] = {}

    def _value(self, inputs: Mapping[str, Any], params: Mapping[str, Any], target: Any = None) -> torch.Tensor:
        return super()._value(trim_to_longest(inputs), params, target)

    def _bound(self, name: str, k: int) -> Loss:
        key = (name, k)
        if key not in self._bound_cache:
            self._bound_cache[key] = self.bounds[name](k)
        return self._bound_cache[key]

    @torch.no_grad()
    def sequence_totals(self, data: Batch, expr: Loss, batch: int | None = None) -> float:
        """``Σ`` over the sequences of ``data`` of ``expr`` (one value per sequence), in batches."""
        check_sequences(data, type(self).__name__)
        n, size = len(data["x"]), batch or self.eval_batch
        total = 0.0
        for i in range(0, n, size):
            part = trim_to_longest({k: v[i:i + size] for k, v in data.items()})
            total += float(expr._eval(Env(part)).sum())
        return total

    @torch.no_grad()
    def evaluate(self, test_data: Batch, *, k: int = 100, info: DataInfo | None = None) -> dict[str, Any]:
        """Test negative ELBO per time step and, for each bound, the negative bound per time step with ``k``
        particles (at most ``max_particles``; an estimate of the NLL per time step, from above in
        expectation), over all test sequences; ``time_steps`` is the number of real test steps they are
        divided by."""
        with self.evaluating():
            steps = float(test_data["mask"].sum())
            elbo = self.sequence_totals(test_data, self.elbo)
            out: dict[str, Any] = {"time_steps": int(steps), "sequences": len(test_data["x"]),
                                   f"test_{self.elbo_name}_per_step": -elbo / steps}
            k = min(k, self.max_particles)
            eval_batch = max(1, self.eval_batch // max(1, k // 4))
            for name in self.bounds:
                total = self.sequence_totals(test_data, self._bound(name, k), eval_batch)
                out[f"test_nll_{name}_per_step"] = -total / steps
            if self.bounds:
                out["particles"] = k
            out["note"] = ("per time step: the total over the test sequences divided by the number of real test "
                           "time steps")
            return out

    def generate(self, n: int, length: int = 64) -> torch.Tensor:
        """``n`` sampled sequences of ``length`` steps, batch-first."""
        if self._sampler is None:
            raise DeepGMError(f"{type(self).__name__}: this model draws no unconditional sequences (it predicts "
                              f"from observed ones: see its figures)")
        with self.evaluating():
            return self._sampler(n, length)

    def figures(self, out_dir: Path, test_data: Batch, info: DataInfo) -> list[Path]:
        """Sampled sequences (``samples.png``) and the ``extra_figures``: piano rolls for 88-key data,
        frame strips for video."""
        from deepgm.models.evaluation import save_sequence_figure

        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        if self._sampler is not None:
            length = int(test_data["mask"].sum(1).max()) if "mask" in test_data else 64
            written.append(save_sequence_figure(self.generate(8, min(length, 128)), out_dir / "samples.png"))
        with self.evaluating():
            for name, fn in self.extra_figures.items():
                written.append(save_sequence_figure(fn(dict(test_data)), out_dir / f"{name}.png"))
        return written
