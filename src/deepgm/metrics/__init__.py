"""Evaluation: sample quality (FID, IS, mode coverage, precision/recall), representation quality and
disentanglement, accuracies, classifiers' calibration (ECE). :mod:`deepgm.metrics.mnist` scores 28×28 images
with the MNIST classifier shipped in the package. (Likelihoods are estimated by the models:
:func:`deepgm.models.log_likelihood`.)"""

from deepgm.metrics.calibration import (
    ECE_ESTIMATOR,
    CalibrationBins,
    calibration_bins,
    expected_calibration_error,
)
from deepgm.metrics.gan import (
    fid,
    frechet_distance,
    gaussian_statistics,
    inception_features,
    inception_score,
    load_mnist_classifier,
    mode_coverage,
    precision_recall,
)
from deepgm.metrics.latent import (
    accuracy,
    active_units,
    cluster_accuracy,
    discrete_mutual_information,
    factorvae_score,
    mutual_information_gap,
)
from deepgm.metrics.mnist import CLASSIFIER_WEIGHTS, fits_mnist_classifier, mnist_classifier, mnist_scores
from deepgm.nn.classifier import MNISTClassifier

__all__ = ["active_units", "mutual_information_gap", "factorvae_score", "accuracy", "cluster_accuracy",
           "discrete_mutual_information", "fid", "frechet_distance", "gaussian_statistics", "inception_score",
           "mode_coverage", "precision_recall", "MNISTClassifier", "load_mnist_classifier", "inception_features",
           "CLASSIFIER_WEIGHTS", "fits_mnist_classifier", "mnist_classifier", "mnist_scores",
           "expected_calibration_error", "calibration_bins", "CalibrationBins", "ECE_ESTIMATOR"]
