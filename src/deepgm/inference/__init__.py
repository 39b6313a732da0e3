"""Bayesian inference with implicit models: a simulator is the likelihood.

:class:`LFVI` (likelihood-free variational inference with an implicit posterior and a density-ratio
discriminator), :func:`rejection_abc` (the baseline), and the stochastic Lotka–Volterra simulator
(:class:`LotkaVolterra`, Gillespie's algorithm vectorised over parameter sets).
"""

from deepgm.inference.abc import ABCResult, rejection_abc
from deepgm.inference.lfvi import LFVI
from deepgm.inference.lotka_volterra import LV_TRUE_LOG_THETA, LotkaVolterra, gillespie_lotka_volterra, lv_summaries

__all__ = ["LFVI", "ABCResult", "rejection_abc", "LotkaVolterra", "gillespie_lotka_volterra",
           "lv_summaries", "LV_TRUE_LOG_THETA"]
