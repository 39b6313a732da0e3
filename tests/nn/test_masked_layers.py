"""Masked convolutions, the PixelCNN networks and MADE's masks: the autoregressive property checked by
autograd (the output at a pixel has zero gradient with respect to that pixel and every later one), the
plain PixelCNN's blind spot against the Gated PixelCNN's full view of the past, and MADE's resampled masks."""

from __future__ import annotations

import pytest
import torch

import deepgm.flows
import deepgm.nn
from deepgm.errors import ShapeError
from deepgm.nn import MADE, GatedPixelCNNNetwork, MaskedConv2d, PixelCNNNetwork


def _gradient_map(net: torch.nn.Module, shape: tuple[int, int, int], i: int, j: int,
                  cond: torch.Tensor | None = None) -> torch.Tensor:
    """|d out[0, :, i, j] / d x| summed over channels: (H, W)."""
    x = torch.rand(1, *shape, dtype=torch.float64, requires_grad=True)
    out = net(x) if cond is None else net(x, cond)
    out[0, :, i, j].sum().backward()
    assert x.grad is not None
    return x.grad[0].abs().sum(0)


def _later(h: int, w: int, i: int, j: int, inclusive: bool = True) -> torch.Tensor:
    """A mask of the pixels at (``inclusive``) and after (i, j) in raster order."""
    idx = torch.arange(h * w).reshape(h, w)
    return idx >= i * w + j if inclusive else idx > i * w + j


@pytest.mark.parametrize("mask_type", ["A", "B"])
def test_masked_conv_sees_only_earlier_pixels_and_itself_only_for_type_b(mask_type: str) -> None:
    torch.manual_seed(0)
    conv = MaskedConv2d(1, 3, 3, mask_type).double()  # type: ignore[arg-type]
    g = _gradient_map(conv, (1, 4, 4), 2, 1)
    assert (g[_later(4, 4, 2, 1, inclusive=False)] == 0).all()
    assert (g[2, 1] != 0) == (mask_type == "B")
    assert g[1, 0] != 0 and g[1, 2] != 0 and g[2, 0] != 0  # the kernel's earlier neighbours are seen


@pytest.mark.parametrize("make", [
    lambda: PixelCNNNetwork(1, 2, channels=6, layers=3, kernel=3, first_kernel=5),
    lambda: GatedPixelCNNNetwork(1, 2, channels=6, layers=3, kernel=3, first_kernel=5),
], ids=["pixelcnn", "gated"])
def test_every_output_has_zero_gradient_at_and_after_its_pixel(make: object) -> None:
    torch.manual_seed(1)
    net = make().double()  # type: ignore[operator]
    h, w = 4, 5
    for i in range(h):
        for j in range(w):
            g = _gradient_map(net, (1, h, w), i, j)
            assert (g[_later(h, w, i, j)] == 0).all(), (i, j)
            if i * w + j > 0:
                assert g[~_later(h, w, i, j)].sum() > 0, (i, j)  # it does see the past


def test_plain_pixelcnn_has_a_blind_spot_and_gated_pixelcnn_has_none() -> None:
    torch.manual_seed(2)
    h = w = 6
    i, j = 4, 2
    earlier = ~_later(h, w, i, j)
    # both reach 5 rows up and 5 columns either side: a receptive field larger than the image
    plain = PixelCNNNetwork(1, 1, channels=8, layers=4, kernel=3, first_kernel=3).double()
    gated = GatedPixelCNNNetwork(1, 1, channels=8, layers=6, kernel=3, first_kernel=3).double()
    g_plain = _gradient_map(plain, (1, h, w), i, j)
    g_gated = _gradient_map(gated, (1, h, w), i, j)
    assert g_plain[i - 1, j + 2] == 0 and g_plain[i - 2, j + 3] == 0  # above and to the right: never reached
    assert (g_gated[earlier] != 0).all()  # every earlier pixel reaches the output


def test_gated_network_is_conditioned_by_its_vector_and_checks_its_shape() -> None:
    torch.manual_seed(3)
    net = GatedPixelCNNNetwork(1, 1, channels=4, layers=2, kernel=3, first_kernel=3, cond_dim=3)
    x = torch.rand(2, 1, 4, 4)
    a = net(x, torch.tensor([[1.0, 0, 0], [1.0, 0, 0]]))
    b = net(x, torch.tensor([[0.0, 1, 0], [0.0, 1, 0]]))
    assert not torch.allclose(a, b)
    with pytest.raises(ShapeError, match=r"expected a condition of shape \(2, 3\), got none"):
        net(x)
    with pytest.raises(ShapeError, match=r"expected images \(N, 1, H, W\), got \(2, 4, 4\)"):
        net(x[:, 0], torch.zeros(2, 3))


def test_made_stays_autoregressive_in_each_resampled_ordering_and_seeds_repeat_masks() -> None:
    torch.manual_seed(4)
    made = MADE(5, n_params=1, hidden=(12, 12), zero_init=False).double()
    orders = []
    for seed in (0, 1, 2):
        made.use_masks(seed)
        order = made.degrees.argsort()
        orders.append(order.tolist())
        x = torch.randn(1, 5, dtype=torch.float64)
        jac = torch.autograd.functional.jacobian(lambda v: made(v)[:, 0], x)[0, :, 0]
        assert (jac[order][:, order].triu() == 0).all()  # output t depends only on inputs before t
        assert jac[order[-1], order[:-1]].abs().sum() > 0  # the last one does depend on the others
    assert len({tuple(o) for o in orders}) > 1
    made.use_masks(1)
    assert made.degrees.argsort().tolist() == orders[1]


def test_flows_use_the_one_made_of_deepgm_nn() -> None:
    assert deepgm.flows.MADE is deepgm.nn.MADE and deepgm.flows.MaskedLinear is deepgm.nn.MaskedLinear


def test_made_with_fewer_hidden_units_than_inputs_lets_every_output_see_its_near_predecessors() -> None:
    """Hidden degrees spread over 1 … D-1 (not 1 … H): the last output depends on the input just before it."""
    torch.manual_seed(0)
    d = 50
    made = MADE(d, n_params=1, hidden=(10,), zero_init=False).double()
    x = torch.randn(1, d, dtype=torch.double)
    jac = torch.autograd.functional.jacobian(lambda v: made(v)[:, 0], x)[0, :, 0]
    assert bool((jac.triu() == 0).all())  # still autoregressive in the natural order
    paths = made.out.mask @ made.hidden[0].mask  # paths from input j to output i through the hidden layer
    assert bool((paths[d - 1, d - 6 : d - 1] > 0).any())  # output D-1 sees some of the 5 inputs before it
    assert bool((paths.triu() == 0).all())
