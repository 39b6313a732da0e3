"""Evaluation: likelihoods, representation quality and disentanglement, accuracies."""

from deepgm.metrics.gan import (
    MNISTClassifier,
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
from deepgm.models.likelihood import log_likelihood

__all__ = ["log_likelihood", "active_units", "mutual_information_gap", "factorvae_score", "accuracy",
           "cluster_accuracy", "discrete_mutual_information", "fid", "frechet_distance", "gaussian_statistics",
           "inception_score", "mode_coverage", "precision_recall", "MNISTClassifier", "load_mnist_classifier",
           "inception_features"]
