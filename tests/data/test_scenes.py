"""The ray-cast scenes of the GQN: seeded and deterministic, disjoint splits, viewpoints as the paper encodes
them, cameras inside the room, the colours the rays must see, and bad options refused by name."""

from __future__ import annotations

import math

import pytest
import torch

from deepgm.data import dataset_names, load_dataset
from deepgm.data.scenes import (
    ROOM_HALF,
    WALL_HEIGHT,
    Scenes,
    make_scenes,
    random_scenes,
    render_scenes,
)
from deepgm.errors import ConfigError


def test_the_same_seed_gives_the_same_pixels_and_a_scene_does_not_depend_on_its_neighbours() -> None:
    a = make_scenes(3, "train", seed=4, size=32, views=4)
    b = make_scenes(3, "train", seed=4, size=32, views=4)
    assert torch.equal(a["x"], b["x"]) and torch.equal(a["v"], b["v"])
    tail = make_scenes(2, "train", seed=4, size=32, views=4, start=1)  # scenes 1 and 2 alone
    assert torch.equal(tail["x"], a["x"][1:])
    other = make_scenes(3, "train", seed=5, size=32, views=4)
    assert not torch.equal(other["x"], a["x"])


def test_splits_hold_different_scenes() -> None:
    views = {s: random_scenes(30, s, seed=0, views=2) for s in ("train", "valid", "test")}
    floors = torch.cat([views[s][0].floor for s in views])  # a scene's floor colour: 3 continuous draws
    assert len(torch.unique(floors, dim=0)) == 90
    cams = torch.cat([views[s][1][:, 0] for s in views])
    assert len(torch.unique(cams, dim=0)) == 90


def test_viewpoints_are_the_papers_encoding_and_the_cameras_stand_inside_the_room_clear_of_objects() -> None:
    scenes, v = random_scenes(40, "valid", seed=0, views=10)
    assert v.shape == (40, 10, 7)
    assert torch.allclose(v[..., 3] ** 2 + v[..., 4] ** 2, torch.ones(40, 10), atol=1e-6)  # cos² + sin² yaw
    assert torch.allclose(v[..., 5] ** 2 + v[..., 6] ** 2, torch.ones(40, 10), atol=1e-6)  # ... pitch
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    assert bool((x.abs() < ROOM_HALF).all() and (z.abs() < ROOM_HALF).all())
    assert bool(((y > 0) & (y < WALL_HEIGHT)).all())
    present = scenes.obj_kind > 0
    for i in range(40):
        centres = scenes.obj_centre[i, present[i]][:, [0, 2]]
        gap = torch.cdist(v[i, :, [0, 2]], centres)  # camera to object centre, on the floor plan
        reach = scenes.obj_size[i, present[i]][:, [0, 2]].norm(dim=1)  # at least each footprint's radius
        assert bool((gap > reach[None]).all())
    assert set(scenes.obj_kind.flatten().tolist()) == {0, 1, 2, 3}  # empty slots and every kind


def _one_sphere(light: tuple[float, float, float]) -> Scenes:
    """A room with one red sphere of radius 0.5 at the centre, blue walls, a grey floor."""
    def t(*values: float) -> torch.Tensor:
        return torch.tensor([values])

    blue = torch.tensor([[[0.0, 0.0, 1.0]] * 4])
    kind = torch.tensor([[1, 0, 0]])
    centre = torch.tensor([[[0.0, 0.5, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]])
    size = torch.tensor([[[0.5, 0.5, 0.5], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]])
    colour = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]])
    norm = math.sqrt(sum(c * c for c in light))
    return Scenes(floor=t(0.5, 0.5, 0.5), walls=blue, sky=t(0.6, 0.8, 1.0), light=t(*(c / norm for c in light)),
                  ambient=torch.tensor([0.4]), obj_kind=kind, obj_centre=centre, obj_size=size,
                  obj_yaw=torch.zeros(1, 3), obj_colour=colour)


def test_a_ray_through_the_sphere_sees_it_and_one_past_it_sees_the_wall_behind() -> None:
    scenes = _one_sphere((-1.0, 1.0, 0.0))  # light from -x, 45° up
    v = torch.tensor([[[-1.2, 0.5, 0.0, 1.0, 0.0, 1.0, 0.0]]])  # at x = -1.2 looking along +x, level
    image = render_scenes(scenes, v, size=32)[0, 0]
    lambert = 0.4 + 0.6 / math.sqrt(2)  # ambient + (1 - ambient)·n·l with n = (-1, 0, 0) on both surfaces
    centre = image[:, 15:17, 15:17].mean((1, 2))  # the sphere's near side faces the camera: n ≈ (-1, 0, 0)
    assert torch.allclose(centre, torch.tensor([lambert, 0.0, 0.0]), atol=0.01)
    edge = image[:, 16, 0]  # the horizon at the image's left edge passes 0.59 from the centre: the wall at x = +1.6
    assert torch.allclose(edge, torch.tensor([0.0, 0.0, lambert]), atol=1e-4)
    behind = render_scenes(_one_sphere((1.0, 1.0, 0.0)), v, size=32)[0, 0]  # lit from behind: ambient only
    assert torch.allclose(behind[:, 15:17, 15:17].mean((1, 2)), torch.tensor([0.4, 0.0, 0.0]), atol=1e-4)


def test_scenes_are_a_registered_dataset_of_views_and_viewpoints() -> None:
    assert {"scenes-32", "scenes-64"} <= set(dataset_names())
    d = load_dataset("scenes-64", "test", n_samples=2, views=3).batch()  # type: ignore[attr-defined]
    assert d["x"].shape == (2, 3, 3, 64, 64) and d["v"].shape == (2, 3, 7) and d["x"].dtype == torch.float32
    both = load_dataset("scenes-32", "train+valid", n_samples=1, views=2).batch()  # type: ignore[attr-defined]
    assert torch.equal(both["x"][1], make_scenes(1, "valid", size=32, views=2)["x"][0])


@pytest.mark.parametrize(("call", "match"), [
    (lambda: make_scenes(1, size=48), "size must be one of 32, 64, got 48"),
    (lambda: make_scenes(1, views=1), "views must be an integer of at least 2"),
    (lambda: make_scenes(0), "n_samples must be an integer of at least 1"),
    (lambda: make_scenes(1, split="dev"), "split must be one of train, valid, test"),
])
def test_bad_options_are_refused_by_name(call: object, match: str) -> None:
    with pytest.raises((ConfigError, ValueError), match=match):
        call()  # type: ignore[operator]


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"size": 64}, "the image size is part of the name"),
    ({"flatten": True}, "image options"),
    ({"views": 1}, "views must be an integer of at least 2"),
])
def test_load_dataset_refuses_options_that_do_not_apply(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        load_dataset("scenes-32", "test", n_samples=1, **kwargs)  # type: ignore[arg-type]
