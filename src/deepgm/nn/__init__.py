"""Reusable networks: MLPs and parameter heads, convolutional encoders and decoders, discriminator layers,
and the MNIST classifier behind MNIST-FID/IS.

>>> import torch
>>> head = NormalHead(MLP([4, 16], "relu"), 16, 2)  # a body, then the loc and scale layers
>>> params = head(torch.zeros(3, 4))
>>> sorted(params), params["loc"].shape, bool((params["scale"] > 0).all())
(['loc', 'scale'], torch.Size([3, 2]), True)
"""

from deepgm.nn.classifier import MNISTClassifier
from deepgm.nn.conv import ConvDecoder, ConvEncoder
from deepgm.nn.gan import MinibatchDiscrimination
from deepgm.nn.made import MADE, MaskedLinear
from deepgm.nn.masked import GatedBlock, GatedPixelCNNNetwork, MaskedConv2d, PixelCNNNetwork
from deepgm.nn.mlp import MLP, AsLoc, Concat, LogitsHead, NormalHead, OneHotInputs, activation, call
from deepgm.nn.nade import nade_logits
from deepgm.nn.sequence import (
    BackwardRNN,
    Combiner,
    ForwardRNN,
    GatedTransition,
    GRUState,
    LSTMStep,
    RNNStep,
    reverse_padded,
)
from deepgm.nn.unet import UNet, timestep_embedding

__all__ = ["UNet", "timestep_embedding",
           "ConvEncoder", "ConvDecoder", "MLP", "NormalHead", "LogitsHead", "AsLoc", "Concat", "OneHotInputs",
           "activation", "MinibatchDiscrimination", "MNISTClassifier", "BackwardRNN", "ForwardRNN", "Combiner",
           "GatedTransition", "GRUState", "LSTMStep", "RNNStep", "reverse_padded", "call",
           "MADE", "MaskedLinear", "nade_logits",
           "MaskedConv2d", "PixelCNNNetwork", "GatedBlock", "GatedPixelCNNNetwork"]
