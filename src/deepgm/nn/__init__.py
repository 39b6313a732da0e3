"""Reusable networks for conditioning distributions."""

from deepgm.nn.mlp import MLP, LogitsHead, NormalHead, OneHotInputs, activation

__all__ = ["MLP", "NormalHead", "LogitsHead", "OneHotInputs", "activation"]
