"""Reusable networks for conditioning distributions."""

from deepgm.nn.conv import ConvDecoder, ConvEncoder
from deepgm.nn.mlp import MLP, LogitsHead, NormalHead, OneHotInputs, activation

__all__ = ["ConvEncoder", "ConvDecoder", "MLP", "NormalHead", "LogitsHead", "OneHotInputs", "activation"]
