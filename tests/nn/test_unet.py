"""The diffusion U-Net and the MLP noise predictor: shapes in and out, refused shapes with errors naming
what was expected, the time embedding's closed form, and that the network uses its time input."""

from __future__ import annotations

import math

import pytest
import torch

from deepgm.errors import ShapeError
from deepgm.nn import UNet, timestep_embedding
from deepgm.nn.unet import MLPNoisePredictor


def test_unet_maps_mnist_batches_to_their_own_shape() -> None:
    net = UNet(in_channels=1, base_channels=8, channel_mults=(1, 2, 2), attention=True)
    x = torch.randn(3, 1, 28, 28)
    assert net(x, torch.tensor([1, 500, 1000])).shape == (3, 1, 28, 28)
    assert net(x, torch.tensor([[1], [2], [3]])).shape == (3, 1, 28, 28)  # (B, 1) steps, as deepgm passes t


def test_unet_refuses_a_wrong_image_shape_naming_the_expected_one() -> None:
    net = UNet(base_channels=8)
    with pytest.raises(ShapeError, match=r"x must have shape \(B, 1, 28, 28\), got \(2, 784\)"):
        net(torch.randn(2, 784), torch.tensor([1, 2]))
    with pytest.raises(ShapeError, match=r"\(B, 1, 28, 28\), got \(2, 3, 28, 28\)"):
        net(torch.randn(2, 3, 28, 28), torch.tensor([1, 2]))


def test_unet_refuses_steps_that_do_not_match_the_batch() -> None:
    net = UNet(base_channels=8)
    with pytest.raises(ShapeError, match=r"t must have shape \(2,\) or \(2, 1\).*got \(3,\)"):
        net(torch.randn(2, 1, 28, 28), torch.tensor([1, 2, 3]))


def test_unet_refuses_an_image_size_its_levels_cannot_halve() -> None:
    with pytest.raises(ShapeError, match="divisible by 4"):
        UNet(base_channels=8, channel_mults=(1, 2, 2), image_size=(30, 30))


def test_unet_output_depends_on_the_step_once_trained_away_from_zero() -> None:
    torch.manual_seed(0)
    net = UNet(base_channels=8, channel_mults=(1, 2), image_size=(8, 8))
    x = torch.randn(2, 1, 8, 8)
    assert net(x, torch.tensor([1, 1])).abs().max() == 0  # zero-initialised output layer
    torch.nn.init.normal_(net.conv_out.weight)
    a, b = net(x, torch.tensor([1, 1])), net(x, torch.tensor([900, 900]))
    assert not torch.allclose(a, b)


def test_timestep_embedding_is_sines_and_cosines_of_geometric_frequencies() -> None:
    t = torch.tensor([3.0])
    emb = timestep_embedding(t, 6)
    freqs = [10000 ** (-k / 3) for k in range(3)]
    expected = [math.sin(3 * f) for f in freqs] + [math.cos(3 * f) for f in freqs]
    assert emb.shape == (1, 6) and torch.allclose(emb[0], torch.tensor(expected), atol=1e-6)


def test_mlp_noise_predictor_checks_its_inputs() -> None:
    net = MLPNoisePredictor(3, hidden=(8,))
    assert net(torch.randn(4, 3), torch.ones(4, 1, dtype=torch.long)).shape == (4, 3)
    with pytest.raises(ShapeError, match=r"x must have shape \(N, 3\), got \(4, 2\)"):
        net(torch.randn(4, 2), torch.ones(4, dtype=torch.long))
    with pytest.raises(ShapeError, match="one step per row"):
        net(torch.randn(4, 3), torch.ones(5, dtype=torch.long))
