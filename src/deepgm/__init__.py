"""deepgm: deep generative models on PyTorch, written as their maths."""

__version__ = "0.1.0"
