"""Reusable networks: MLPs and parameter heads, convolutional encoders and decoders, discriminator layers,
and the MNIST classifier behind MNIST-FID/IS."""

from deepgm.nn.classifier import MNISTClassifier
from deepgm.nn.conv import ConvDecoder, ConvEncoder
from deepgm.nn.gan import MinibatchDiscrimination
from deepgm.nn.mlp import MLP, AsLoc, Concat, LogitsHead, NormalHead, OneHotInputs, activation

__all__ = ["ConvEncoder", "ConvDecoder", "MLP", "NormalHead", "LogitsHead", "AsLoc", "Concat", "OneHotInputs",
           "activation", "MinibatchDiscrimination", "MNISTClassifier"]
