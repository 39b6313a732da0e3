"""Expected calibration error on cases whose answer is known: a hand-computed example, and calibrated
synthetic predictions (ECE near 0 within Monte-Carlo error) beside overconfident ones."""

from __future__ import annotations

import pytest
import torch

from deepgm.metrics import ECE_ESTIMATOR, calibration_bins, expected_calibration_error


def test_ece_of_a_hand_computed_example() -> None:
    # confidences 0.9 (bin (13/15, 14/15]), 0.78 (bin (11/15, 12/15]), 0.55 twice (bin (8/15, 9/15]), 0.95
    probs = torch.tensor([[0.9, 0.1], [0.22, 0.78], [0.55, 0.45], [0.45, 0.55], [0.95, 0.05]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 0, 0, 0])  # right, wrong, right, wrong, right
    # bins: {0.9 right}: |1 - 0.9|; {0.78 wrong}: |0 - 0.78|; {0.55, 0.55: one right}: |0.5 - 0.55|;
    # {0.95 right}: |1 - 0.95|
    expected = (0.1 + 0.78 + 2 * 0.05 + 0.05) / 5
    assert expected_calibration_error(probs, labels) == pytest.approx(expected, abs=1e-12)
    b = calibration_bins(probs, labels)
    assert b.counts.sum() == 5 and b.counts[8] == 2 and b.accuracy[8] == pytest.approx(0.5)
    assert len(b.edges) == 16 and ECE_ESTIMATOR.format(bins=15).startswith("ECE, 15 equal-width")


def test_ece_with_one_bin_is_the_gap_of_mean_confidence_and_accuracy() -> None:
    g = torch.Generator().manual_seed(0)
    probs = torch.softmax(torch.randn(200, 4, generator=g) * 2, -1)
    labels = torch.randint(0, 4, (200,), generator=g)
    conf, pred = probs.max(-1)
    ref = abs(float((pred == labels).double().mean()) - float(conf.double().mean()))
    assert expected_calibration_error(probs, labels, bins=1) == pytest.approx(ref, abs=1e-9)


def test_calibrated_predictions_have_ece_near_zero_and_overconfident_ones_do_not() -> None:
    g = torch.Generator().manual_seed(0)
    n, k = 40_000, 5
    probs = torch.softmax(torch.randn(n, k, generator=g) * 1.5, -1)
    labels = torch.multinomial(probs, 1, generator=g)[:, 0]  # y ~ p: calibrated by construction
    ece = expected_calibration_error(probs, labels)
    assert ece < 0.015  # Monte-Carlo error with 15 bins of ~2,700 draws each is ~0.005
    sharp = torch.softmax(torch.log(probs) * 3, -1)  # the same argmax, confidence pushed towards 1
    assert expected_calibration_error(sharp, labels) > 0.1


@pytest.mark.parametrize(
    ("probs", "labels", "match"),
    [
        (torch.tensor([[0.5, 0.5]]), torch.tensor([2]), r"labels must be class indices in \[0, 2\)"),
        (torch.tensor([[0.7, 0.7]]), torch.tensor([0]), "sum to 1"),
        (torch.tensor([[0.5, 0.5]]), torch.tensor([0.0]), "labels must be an integer tensor"),
        (torch.tensor([0.5, 0.5]), torch.tensor([0]), r"probs must be a float tensor \(N, K\)"),
        (torch.tensor([[0.5, 0.5]]), torch.tensor([0, 1]), "1 rows of probs but 2 labels"),
    ],
)
def test_bad_inputs_say_what_was_expected(probs: torch.Tensor, labels: torch.Tensor, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        expected_calibration_error(probs, labels)
    with pytest.raises(ValueError, match="bins must be an integer of at least 1"):
        expected_calibration_error(torch.tensor([[0.5, 0.5]]), torch.tensor([0]), bins=0)
