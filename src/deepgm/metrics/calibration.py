"""Calibration of a classifier's predicted probabilities: how far its confidence is from its accuracy.

* :func:`calibration_bins` — the reliability diagram's numbers: the predictions sorted by their confidence
  (the largest class probability) into ``bins`` equal-width bins of ``[0, 1]``, each bin's count, mean
  confidence and accuracy;
* :func:`expected_calibration_error` — ECE (Naeini et al. 2015; Guo et al. 2017), the count-weighted mean
  gap ``Σ_b (n_b / N) |acc_b - conf_b|`` over those bins (15 by default, the usual choice).

A classifier that is right on 3 of 4 predictions made at confidence 0.75 is calibrated:

>>> probs = torch.tensor([[0.75, 0.25]] * 4)
>>> expected_calibration_error(probs, torch.tensor([0, 0, 0, 1]))
0.0
>>> expected_calibration_error(probs, torch.tensor([1, 1, 1, 1]))  # confidence 0.75, accuracy 0
0.75
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["CalibrationBins", "calibration_bins", "expected_calibration_error", "ECE_ESTIMATOR"]

ECE_ESTIMATOR = "ECE, {bins} equal-width confidence bins (Guo et al. 2017)"
"""How :func:`expected_calibration_error` estimates ECE, for a metrics report (``.format(bins=15)``)."""


@dataclass(frozen=True)
class CalibrationBins:
    """Per bin ``b`` of ``[0, 1]`` (``edges[b] < confidence <= edges[b + 1]``; the first bin holds 0 too):
    ``counts`` the predictions in it, ``confidence`` their mean confidence and ``accuracy`` the share
    of them that is right (both 0 in an empty bin)."""

    edges: torch.Tensor
    counts: torch.Tensor
    confidence: torch.Tensor
    accuracy: torch.Tensor


def _checked(probs: torch.Tensor, labels: torch.Tensor, bins: int) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValueError(f"calibration: bins must be an integer of at least 1, got {bins!r}")
    if not torch.is_tensor(probs) or probs.dim() != 2 or not probs.is_floating_point():
        shape = tuple(probs.shape) if torch.is_tensor(probs) else type(probs).__name__
        raise ValueError(f"calibration: probs must be a float tensor (N, K) of class probabilities, got {shape}")
    if not torch.is_tensor(labels) or labels.dim() != 1 or labels.is_floating_point() or labels.dtype == torch.bool:
        shape = tuple(labels.shape) if torch.is_tensor(labels) else type(labels).__name__
        raise ValueError(f"calibration: labels must be an integer tensor (N,) of class indices, got {shape}")
    n, k = probs.shape
    if len(labels) != n:
        raise ValueError(f"calibration: {n} rows of probs but {len(labels)} labels")
    if n == 0:
        raise ValueError("calibration: no predictions (probs has 0 rows)")
    p = probs.detach().double().cpu()
    if not bool(torch.isfinite(p).all()) or bool((p < 0).any()) or \
            not bool(torch.allclose(p.sum(-1), torch.ones(n, dtype=p.dtype), atol=1e-4)):
        raise ValueError("calibration: every row of probs must be finite, non-negative and sum to 1 "
                         "(softmax the logits first)")
    y = labels.detach().cpu().long()
    if int(y.min()) < 0 or int(y.max()) >= k:
        raise ValueError(f"calibration: labels must be class indices in [0, {k}), got values in "
                         f"[{int(y.min())}, {int(y.max())}]")
    return p, y


def calibration_bins(probs: torch.Tensor, labels: torch.Tensor, bins: int = 15) -> CalibrationBins:
    """The reliability diagram of the predictions ``probs`` ``(N, K)`` (rows sum to 1) of the true classes
    ``labels`` ``(N,)`` in ``bins`` equal-width confidence bins (:class:`CalibrationBins`).

    >>> b = calibration_bins(torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7]]), torch.tensor([0, 1, 1]), bins=2)
    >>> b.counts.tolist(), b.accuracy.tolist()  # (0, 0.5]: none; (0.5, 1]: all three, two right
    ([0, 3], [0.0, 0.6666666666666666])
    """
    p, y = _checked(probs, labels, bins)
    conf, pred = p.max(-1)
    right = (pred == y).double()
    idx = (torch.ceil(conf * bins).long() - 1).clamp(0, bins - 1)
    counts = torch.bincount(idx, minlength=bins)
    safe = counts.clamp(min=1).double()
    return CalibrationBins(edges=torch.linspace(0, 1, bins + 1, dtype=torch.float64), counts=counts,
                           confidence=torch.bincount(idx, conf, minlength=bins) / safe,
                           accuracy=torch.bincount(idx, right, minlength=bins) / safe)


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, bins: int = 15) -> float:
    """ECE of the predictions ``probs`` ``(N, K)`` of the classes ``labels`` ``(N,)``: the count-weighted mean
    of ``|accuracy - confidence|`` over ``bins`` equal-width confidence bins (:func:`calibration_bins`),
    in ``[0, 1]``. A ``ValueError`` names what is wrong with the inputs (rows that are not
    probabilities, labels out of range, mismatched lengths)."""
    b = calibration_bins(probs, labels, bins)
    weights = b.counts.double() / b.counts.sum()
    return float((weights * (b.accuracy - b.confidence).abs()).sum())
