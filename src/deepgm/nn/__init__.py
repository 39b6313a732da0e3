"""Reusable networks for conditioning distributions."""

from deepgm.nn.mlp import MLP, LogitsHead, NormalHead, activation

__all__ = ["MLP", "NormalHead", "LogitsHead", "activation"]
