"""A flow trained by maximum likelihood, with sampling and exact likelihoods for evaluation."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from deepgm.flows.distribution import Flow
from deepgm.losses.core import LogProb
from deepgm.losses.expr import Loss
from deepgm.models.evaluation import conditions_of, image_shape_of, rows, save_sample_figure
from deepgm.models.model import Model
from deepgm.models.presets import ML

if TYPE_CHECKING:
    from deepgm.data.prepared import DataInfo

__all__ = ["FlowModel", "half_mask"]

HALVES = ("bottom", "top", "left", "right")


def half_mask(shape: tuple[int, int, int], hide: str) -> torch.Tensor:
    """A flat mask over images of ``shape (C, H, W)``: 1 where observed, 0 on the ``hide`` half
    (``bottom``, ``top``, ``left`` or ``right``).

    >>> half_mask((1, 2, 2), "bottom").tolist()
    [1.0, 1.0, 0.0, 0.0]
    """
    _, h, w = shape
    halves = {"bottom": (slice(h // 2, None), slice(None)), "top": (slice(None, h // 2), slice(None)),
              "left": (slice(None), slice(None, w // 2)), "right": (slice(None), slice(w // 2, None))}
    if hide not in halves:
        raise ValueError(f"hide must be one of {', '.join(HALVES)}, got {hide!r}")
    m = torch.ones(shape)
    m[(slice(None), *halves[hide])] = 0
    return m.reshape(-1)


class FlowModel(ML):
    """``ML(flow)``: minimise ``-mean(log p(x)) [+ regularizer]`` (the regulariser is evaluated after the
    log-density, e.g. FFJORD's kinetic energy of that solve); ``generate``, ``log_likelihood`` (exact) and
    ``bits_per_dim`` serve evaluation and plots; :meth:`evaluate` reports the exact test NLL and bits/dim,
    :meth:`figures` draws samples (images) or the density (2-D points)."""

    def __init__(self, flow: Flow, regularizer: Loss | None = None, **model_kwargs: Any) -> None:
        if not isinstance(flow, Flow):
            raise TypeError(f"FlowModel needs a deepgm.flows.Flow, got {type(flow).__name__}")
        loss = -LogProb(flow).mean()
        if regularizer is not None:
            loss = loss + regularizer
        Model.__init__(self, loss, [flow], **model_kwargs)  # ML's objective plus the regulariser

    @property
    def flow(self) -> Flow:
        """The flow ``p(x)``."""
        return self.distributions[0]  # type: ignore[return-value]

    @torch.no_grad()
    def generate(self, n: int, **conditions: torch.Tensor) -> torch.Tensor:
        """``n`` draws of ``x`` (one per condition row when conditions are given)."""
        with self.evaluating():
            out = self.flow.sample(dict(conditions), batch_n=None if conditions else n)
        return out[self.flow.var[0]]

    @torch.no_grad()
    def log_likelihood(self, x: torch.Tensor, batch_size: int = 500, **conditions: torch.Tensor) -> torch.Tensor:
        """The exact ``log p(x)`` of every data point (eval mode: deterministic preprocessing)."""
        with self.evaluating():
            parts = []
            for i in range(0, len(x), batch_size):
                cond = {k: v[i:i + batch_size] for k, v in conditions.items()}
                parts.append(self.flow.log_prob({self.flow.var[0]: x[i:i + batch_size], **cond}))
        return torch.cat(parts)

    def bits_per_dim(self, x: torch.Tensor, **conditions: torch.Tensor) -> float:
        """``-mean log p(x) / (D ln 2)``."""
        log_likelihood: Callable[..., torch.Tensor] = self.log_likelihood  # conditions as keywords
        return self._bits(float(-log_likelihood(x, **conditions).mean()))

    def _bits(self, nll: float) -> float:
        return nll / (math.prod(self.flow.event_shape) * math.log(2))

    def evaluate(self, test_data: Mapping[str, torch.Tensor], *, k: int = 1000,
                 info: DataInfo | None = None) -> dict[str, Any]:
        """``test_nll`` (exact, ``-mean log p(x)`` in nats) and ``test_bits_per_dim`` over ``test_data``
        (``k`` is not used: the likelihood is exact)."""
        x = test_data[self.flow.var[0]]
        log_likelihood: Callable[..., torch.Tensor] = self.log_likelihood  # conditions as keywords
        nll = float(-log_likelihood(x, **conditions_of(test_data, self.flow.cond_var)).mean())
        return {"test_nll": nll, "test_bits_per_dim": self._bits(nll), "likelihood": "exact"}

    def figures(self, out_dir: Path, test_data: Mapping[str, torch.Tensor], info: DataInfo) -> list[Path]:
        """``samples.png`` (64 draws) for images; ``density.png`` (``log p`` on a grid, 1000 draws over it)
        for 2-D points."""
        from deepgm import viz

        x = test_data[self.flow.var[0]]
        if self.flow.cond_var:
            conds = conditions_of(test_data, self.flow.cond_var, 64)
            samples = self.generate(rows(conds, 0), **conds) if conds else None
        else:
            samples = self.generate(64)
        if image_shape_of(info, x) is not None and samples is not None:
            path = save_sample_figure(samples, out_dir / "samples.png", info)
            return [path] if path is not None else []
        if x.dim() == 2 and x.shape[1] == 2 and not self.flow.cond_var:
            return [viz.save_density_2d(lambda pts: self.log_likelihood(pts), out_dir / "density.png",
                                        samples=self.generate(1000))]
        return []

    def inpaint_figure(self, x: torch.Tensor, shape: tuple[int, int, int], hide: str, path: Path, steps: int = 300,
                       lr: float = 0.05, step_size: float = 0.01) -> dict[str, Any]:
        """Fill the ``hide`` half of the images ``x`` (of ``shape``): the conditional mode (``steps`` of Adam
        at ``lr``) and a posterior draw (as many MALA steps from it, initial ``step_size``). Writes the grid
        of truth, observed (grey fill), mode and draw, a row each, to ``path``; returns the MALA acceptance
        and the mean ``log p`` of each row."""
        from deepgm import viz
        from deepgm.flows import inpaint, inpaint_sample

        mask = half_mask(shape, hide)
        mode = inpaint(self.flow, x, mask, steps=steps, lr=lr)
        sampled, acceptance = inpaint_sample(self.flow, x, mask, steps=steps, step_size=step_size, init=mode)
        masked = x * mask + 0.5 * (1 - mask)
        viz.save_image_grid(viz.upscale(torch.cat([x, masked, mode, sampled]), shape), path, nrow=len(x))
        rows = (("truth", x), ("observed, grey fill", masked), ("mode", mode), ("sample", sampled))
        return {"hidden": hide, "images": len(x), "mala_acceptance": acceptance,
                "mean_log_likelihood": {k: float(self.log_likelihood(v).mean()) for k, v in rows},
                "grid": str(path), "rows": ["truth", "observed", "mode (Adam)", "sample (MALA)"]}
