"""The conv networks and GQN's refuse image sides they cannot halve twice, by one shared check."""

from __future__ import annotations

import pytest

from deepgm.errors import ShapeError
from deepgm.nn.conv import ConvDecoder, ConvEncoder, check_sides_by_4
from deepgm.nn.gqn import GenerationCore


def test_sides_divisible_by_4_pass_through() -> None:
    assert check_sides_by_4((3, 32, 64)) == (3, 32, 64)


@pytest.mark.parametrize("build", [lambda s: ConvEncoder(s, z_dim=2), lambda s: ConvDecoder(2, s)])
def test_conv_networks_refuse_sides_not_divisible_by_4(build) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ShapeError, match=r"conv networks need image sides divisible by 4, got \(1, 30, 28\)"):
        build((1, 30, 28))


def test_gqn_generator_names_itself_when_refusing_sides() -> None:
    with pytest.raises(ShapeError, match=r"GQN networks need image sides divisible by 4, got \(3, 32, 30\)"):
        GenerationCore((3, 32, 30))
