"""Rooms of coloured objects seen from many cameras: the scenes of the generative query network (GQN).

A scene is a square room — a floor (a chequer of one colour in two shades) and four walls, each its own
colour, under a sky — holding 1 to 3 objects resting on the floor: spheres, boxes (turned about the
vertical) and upright cylinders, of random colours, sizes and places, none overlapping. A directional
light (random azimuth, elevation 40°–70°) shades every surface by Lambert's law plus an ambient term;
objects cast shadows. Views are ray cast in torch, vectorised over scenes, views and pixels.

Coordinates: ``y`` is up, the floor is ``y = 0``, the room spans ``[-2, 2]`` in ``x`` and ``z``
(:data:`ROOM_HALF`), the walls are :data:`WALL_HEIGHT` high. A camera stands inside the room, clear of
the objects, at a height in ``[0.35, 1.1]``, looking along yaw ``ψ`` (from ``+x`` towards ``+z``) and
pitch ``θ`` (up from the horizon, in ``[-0.5, 0.15]`` rad) with a 60° field of view. Each view records
its viewpoint as the GQN paper encodes it: ``v = (x, y, z, cos ψ, sin ψ, cos θ, sin θ)``.

Scene ``i`` of a split is drawn from its own generator, seeded by ``(seed, split, i)``: the same
arguments give the same pixels, a scene does not depend on how many are drawn with it, and the splits
(train, valid, test) hold different scenes.

>>> d = make_scenes(2, split="test", size=32, views=3)
>>> d["x"].shape, d["v"].shape, 0.0 <= float(d["x"].min()) <= float(d["x"].max()) <= 1.0
(torch.Size([2, 3, 3, 32, 32]), torch.Size([2, 3, 7]), True)
>>> bool(torch.equal(make_scenes(1, split="test", size=32, views=3)["x"][0], d["x"][0]))
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
import torch
from torch import Tensor

from deepgm.errors import ConfigError, ShapeError

from .datasets import TensorDictDataset

__all__ = ["ROOM_HALF", "WALL_HEIGHT", "FOV", "SCENE_SIZES", "SCENE_COUNTS", "KINDS", "Scenes", "render_scenes",
           "random_scenes", "make_scenes", "load_scenes"]

ROOM_HALF = 1.6  # the room spans [-1.6, 1.6] in x and z
WALL_HEIGHT = 1.4
FOV = math.radians(60.0)  # the cameras' field of view (vertical and horizontal: square images)
SCENE_SIZES = (32, 64)  # image sides offered
# scenes per split (default): 2,000 training scenes of 10 32×32 views take 246 MB as float32
SCENE_COUNTS = {32: {"train": 2000, "valid": 200, "test": 200}, 64: {"train": 800, "valid": 100, "test": 100}}
KINDS = ("none", "sphere", "box", "cylinder")  # obj_kind codes (0: an empty slot)
MAX_OBJECTS = 3
_SPLIT_CODES = {"train": 0, "valid": 1, "test": 2}
_EPS = 1e-4
_CHUNK_RAYS = 1 << 19  # rays cast at once (memory: a few dozen (scenes, rays) float tensors)
_SKY = (0.62, 0.78, 0.95)


@dataclass
class Scenes:
    """A batch of ``S`` scenes as tensors (``O = 3`` object slots; an empty slot has kind 0).

    ``floor (S, 3)``, ``walls (S, 4, 3)`` (walls at ``x = +2, x = -2, z = +2, z = -2``) and ``sky (S, 3)``
    are RGB colours in [0, 1]; ``light (S, 3)`` a unit vector towards the light; ``ambient (S,)``;
    ``obj_kind (S, O)`` indices into :data:`KINDS`; ``obj_centre (S, O, 3)`` (a sphere's centre, a box's
    centre, a cylinder's base centre); ``obj_size (S, O, 3)`` (sphere: radius ×3; box: half-extents along
    its own x, y, z; cylinder: radius, height, radius); ``obj_yaw (S, O)`` (a box's turn about ``y``);
    ``obj_colour (S, O, 3)``.
    """

    floor: Tensor
    walls: Tensor
    sky: Tensor
    light: Tensor
    ambient: Tensor
    obj_kind: Tensor
    obj_centre: Tensor
    obj_size: Tensor
    obj_yaw: Tensor
    obj_colour: Tensor

    def __len__(self) -> int:
        return int(self.floor.shape[0])

    def rows(self, index: slice | Tensor) -> Scenes:
        """The scenes at ``index``."""
        return Scenes(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


# -- drawing scenes and cameras (numpy, one generator per scene) -------------------------------------------------
def _hsv(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """RGB ``(..., 3)`` of hue ``h`` in [0, 1), saturation ``s``, value ``v``."""
    k = np.stack([(5.0 + h * 6.0) % 6.0, (3.0 + h * 6.0) % 6.0, (1.0 + h * 6.0) % 6.0], -1)
    return v[..., None] - v[..., None] * s[..., None] * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


def _draw_scene(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One scene's parameters (as :class:`Scenes` fields without the batch dimension)."""
    floor = _hsv(rng.uniform(0, 1, 1), rng.uniform(0.0, 0.3, 1), rng.uniform(0.45, 0.7, 1))[0]
    walls = _hsv(rng.uniform(0, 1, 4), rng.uniform(0.2, 0.6, 4), rng.uniform(0.6, 0.95, 4))
    azimuth, elevation = rng.uniform(-math.pi, math.pi), rng.uniform(math.radians(40), math.radians(70))
    light = np.array([math.cos(elevation) * math.cos(azimuth), math.sin(elevation),
                      math.cos(elevation) * math.sin(azimuth)])
    n = int(rng.integers(1, MAX_OBJECTS + 1))
    kind = np.zeros(MAX_OBJECTS, np.int64)
    centre, size = np.zeros((MAX_OBJECTS, 3)), np.zeros((MAX_OBJECTS, 3))
    yaw, footprint = np.zeros(MAX_OBJECTS), np.zeros(MAX_OBJECTS)
    for j in range(n):
        kind[j] = rng.integers(1, 4)
        if kind[j] == 1:  # sphere resting on the floor
            r = rng.uniform(0.25, 0.5)
            size[j], centre[j, 1], footprint[j] = r, r, r
        elif kind[j] == 2:  # box on the floor, turned about y
            size[j] = rng.uniform(0.18, 0.42, 3)
            centre[j, 1], yaw[j] = size[j, 1], rng.uniform(-math.pi, math.pi)
            footprint[j] = math.hypot(size[j, 0], size[j, 2])
        else:  # upright cylinder standing on the floor
            r, height = rng.uniform(0.18, 0.38), rng.uniform(0.35, 1.0)
            size[j] = (r, height, r)
            footprint[j] = r
    span = ROOM_HALF - 0.6
    while True:  # places with the footprints apart (rejection; 1-3 small objects fit easily)
        xz = rng.uniform(-span, span, (n, 2))
        gap = np.linalg.norm(xz[:, None] - xz[None], axis=-1) - footprint[:n, None] - footprint[None, :n]
        if n == 1 or (gap + np.eye(n) * 10.0).min() > 0.15:
            break
    centre[:n, 0], centre[:n, 2] = xz[:, 0], xz[:, 1]
    colour = _hsv(rng.uniform(0, 1, MAX_OBJECTS), rng.uniform(0.6, 1.0, MAX_OBJECTS),
                  rng.uniform(0.7, 1.0, MAX_OBJECTS))
    return {"floor": floor, "walls": walls, "sky": np.array(_SKY), "light": light,
            "ambient": np.array(rng.uniform(0.35, 0.5)), "obj_kind": kind, "obj_centre": centre,
            "obj_size": size, "obj_yaw": yaw, "obj_colour": colour, "footprint": footprint}


def _draw_cameras(rng: np.random.Generator, scene: dict[str, np.ndarray], views: int) -> np.ndarray:
    """``views`` viewpoints ``(views, 7)`` inside the room and clear of the objects (candidates drawn 16 at
    a time, kept in order: the first views do not depend on how many are drawn)."""
    keep: list[np.ndarray] = []
    present = scene["obj_kind"] > 0
    centres, radii = scene["obj_centre"][present][:, [0, 2]], scene["footprint"][present]
    span = ROOM_HALF - 0.3
    while len(keep) < views:
        xz = rng.uniform(-span, span, (16, 2))
        clear = (np.linalg.norm(xz[:, None] - centres[None], axis=-1) > radii[None] + 0.25).all(1)
        y, yaw, pitch = rng.uniform(0.35, 1.1, 16), rng.uniform(-math.pi, math.pi, 16), rng.uniform(-0.5, 0.15, 16)
        for i in np.flatnonzero(clear):
            keep.append(np.array([xz[i, 0], y[i], xz[i, 1], math.cos(yaw[i]), math.sin(yaw[i]),
                                  math.cos(pitch[i]), math.sin(pitch[i])]))
    return np.stack(keep[:views])


def _split_code(split: str) -> int:
    if split not in _SPLIT_CODES:
        raise ValueError(f"split must be one of {', '.join(_SPLIT_CODES)} for scenes, got {split!r}")
    return _SPLIT_CODES[split]


def _check_options(size: int, views: int) -> None:
    if isinstance(size, bool) or size not in SCENE_SIZES:
        raise ConfigError("scenes", "size", f"one of {', '.join(map(str, SCENE_SIZES))}", size)
    if isinstance(views, bool) or not isinstance(views, int) or views < 2:
        raise ConfigError("scenes", "views", "an integer of at least 2 (context views and a query view)", views)


def random_scenes(n: int, split: str = "train", seed: int = 0, views: int = 10, start: int = 0
                  ) -> tuple[Scenes, Tensor]:
    """Scenes ``start .. start + n - 1`` of ``split`` and ``views`` viewpoints of each ``(n, views, 7)``."""
    code = _split_code(split)
    _check_options(SCENE_SIZES[0], views)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError("scenes", "n_samples", "an integer of at least 1 (scenes)", n)
    drawn, cameras = [], []
    for i in range(start, start + n):
        rng = np.random.default_rng([int(seed), code, i])
        scene = _draw_scene(rng)
        drawn.append(scene)
        cameras.append(_draw_cameras(rng, scene, views))
    names = [f.name for f in fields(Scenes)]
    batch = {k: torch.from_numpy(np.stack([s[k] for s in drawn])) for k in names}
    scenes = Scenes(**{k: v if k == "obj_kind" else v.float() for k, v in batch.items()})
    return scenes, torch.from_numpy(np.stack(cameras)).float()


# -- ray casting (torch) -----------------------------------------------------------------------------------------
Rays = tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]  # origin x, y, z and direction x, y, z


def _col(t: Tensor) -> Tensor:
    return t[:, None]


def _hit_sphere(rays: Rays, c: Tensor, s: Tensor, _yaw: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    ox, oy, oz, dx, dy, dz = rays
    px, py, pz, r = ox - _col(c[:, 0]), oy - _col(c[:, 1]), oz - _col(c[:, 2]), _col(s[:, 0])
    b = px * dx + py * dy + pz * dz
    disc = b * b - (px * px + py * py + pz * pz - r * r)
    t = -b - disc.clamp(min=0.0).sqrt()
    hit = (disc > 0) & (t > _EPS)
    t0 = torch.where(hit, t, 0.0)
    return torch.where(hit, t, math.inf), (px + t0 * dx) / r, (py + t0 * dy) / r, (pz + t0 * dz) / r


def _nonzero(d: Tensor) -> Tensor:
    return torch.where(d >= 0, d.clamp(min=1e-9), d.clamp(max=-1e-9))


def _hit_box(rays: Rays, c: Tensor, s: Tensor, yaw: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    ox, oy, oz, dx, dy, dz = rays
    cos, sin = _col(yaw.cos()), _col(yaw.sin())
    qx, qz = ox - _col(c[:, 0]), oz - _col(c[:, 2])
    local = (cos * qx + sin * qz, oy - _col(c[:, 1]), cos * qz - sin * qx)  # the ray in the box's frame
    ldir = (_nonzero(cos * dx + sin * dz), _nonzero(dy), _nonzero(cos * dz - sin * dx))
    near, far = [], []
    for a in range(3):
        h = _col(s[:, a])
        t1, t2 = (-h - local[a]) / ldir[a], (h - local[a]) / ldir[a]
        near.append(torch.minimum(t1, t2))
        far.append(torch.maximum(t1, t2))
    t_in = torch.maximum(torch.maximum(near[0], near[1]), near[2])
    t_out = torch.minimum(torch.minimum(far[0], far[1]), far[2])
    hit = (t_out >= t_in) & (t_in > _EPS)
    on_x = (near[0] >= near[1]) & (near[0] >= near[2])
    on_y = ~on_x & (near[1] >= near[2])
    on_z = ~on_x & ~on_y
    nlx, nly, nlz = (torch.where(on, -ldir[a].sign(), 0.0) for a, on in enumerate((on_x, on_y, on_z)))
    return torch.where(hit, t_in, math.inf), cos * nlx - sin * nlz, nly, sin * nlx + cos * nlz


def _hit_cylinder(rays: Rays, c: Tensor, s: Tensor, _yaw: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    ox, oy, oz, dx, dy, dz = rays
    px, pz, r, height = ox - _col(c[:, 0]), oz - _col(c[:, 2]), _col(s[:, 0]), _col(s[:, 1])
    a = (dx * dx + dz * dz).clamp(min=1e-12)
    b = px * dx + pz * dz
    disc = b * b - a * (px * px + pz * pz - r * r)
    t_side = (-b - disc.clamp(min=0.0).sqrt()) / a
    y_side = oy + t_side * dy
    side = (disc > 0) & (t_side > _EPS) & (y_side >= 0) & (y_side <= height)
    t_top = (height - oy) / _nonzero(dy)
    xt, zt = px + t_top * dx, pz + t_top * dz
    top = (dy < 0) & (t_top > _EPS) & (xt * xt + zt * zt <= r * r)
    t_side, t_top = torch.where(side, t_side, math.inf), torch.where(top, t_top, math.inf)
    use_side = t_side <= t_top
    ts0 = torch.where(side, t_side, 0.0)
    nx = torch.where(use_side, (px + ts0 * dx) / r, 0.0)
    nz = torch.where(use_side, (pz + ts0 * dz) / r, 0.0)
    return torch.minimum(t_side, t_top), nx, torch.where(use_side, 0.0, 1.0), nz


_HITS = {1: _hit_sphere, 2: _hit_box, 3: _hit_cylinder}


def _hit_objects(scenes: Scenes, rays: Rays) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Distances ``(S, O, P)`` to each object slot (inf: missed, or an empty slot) and the normals there."""
    s, p = rays[0].shape[0], max(r.shape[1] for r in rays)
    t = torch.full((s, MAX_OBJECTS, p), math.inf)
    n = [torch.zeros(s, MAX_OBJECTS, p) for _ in range(3)]
    for j in range(MAX_OBJECTS):
        for kind, fn in _HITS.items():
            rows = torch.nonzero(scenes.obj_kind[:, j] == kind).flatten()
            if len(rows) == 0:
                continue
            ox, oy, oz, dx, dy, dz = (r[rows] for r in rays)
            sub = (ox, oy, oz, dx, dy, dz)
            tk, *nk = fn(sub, scenes.obj_centre[rows, j], scenes.obj_size[rows, j], scenes.obj_yaw[rows, j])
            t[rows, j] = tk
            for a in range(3):
                n[a][rows, j] = nk[a].expand_as(tk)
    return t, n[0], n[1], n[2]


def _camera_rays(v: Tensor, size: int) -> Rays:
    """Rays ``(S, V·H·W)`` through the pixel centres of each viewpoint ``v (S, V, 7)``, row 0 at the top."""
    s, views = v.shape[:2]
    x, y, z, cy, sy, cp, sp = (v[..., i].reshape(s, views, 1, 1) for i in range(7))
    half = math.tan(FOV / 2)
    centres = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2.0 - 1.0
    a, b = (centres * half).reshape(1, 1, 1, size), (-centres * half).reshape(1, 1, size, 1)
    # forward (cos θ cos ψ, sin θ, cos θ sin ψ), right (-sin ψ, 0, cos ψ), up = right × forward
    dx = cp * cy - a * sy - b * cy * sp
    dy = sp + b * cp + 0.0 * a
    dz = cp * sy + a * cy - b * sy * sp
    norm = (dx * dx + dy * dy + dz * dz).sqrt()
    flat = [(u / norm).reshape(s, -1) for u in (dx, dy, dz)]
    origin = [w.expand(s, views, size, size).reshape(s, -1) for w in (x, y, z)]
    return origin[0], origin[1], origin[2], flat[0], flat[1], flat[2]


def _shade_chunk(scenes: Scenes, v: Tensor, size: int) -> Tensor:
    rays = _camera_rays(v, size)
    ox, oy, oz, dx, dy, dz = rays
    s, p = ox.shape
    inf = torch.full_like(ox, math.inf)
    t_floor = torch.where(dy < -1e-9, -oy / _nonzero(dy), inf)
    walls = []
    for axis, sign in ((0, 1.0), (0, -1.0), (2, 1.0), (2, -1.0)):
        o, d = (ox, dx) if axis == 0 else (oz, dz)
        t = (sign * ROOM_HALF - o) / _nonzero(d)
        height = oy + t * dy
        walls.append(torch.where((d * sign > 1e-9) & (height >= 0) & (height <= WALL_HEIGHT), t, inf))
    t_obj, nx_obj, ny_obj, nz_obj = _hit_objects(scenes, rays)
    t_all = torch.cat([t_floor[:, None], torch.stack(walls, 1), t_obj], 1)  # (S, 8, P)
    t_hit, which = t_all.min(1)
    zeros, ones = torch.zeros(s, 5, p), torch.ones(s, 1, p)
    wall_nx = torch.tensor([0.0, -1.0, 1.0, 0.0, 0.0]).reshape(1, 5, 1).expand(s, 5, p)
    wall_nz = torch.tensor([0.0, 0.0, 0.0, -1.0, 1.0]).reshape(1, 5, 1).expand(s, 5, p)
    idx = which[:, None]
    nx = torch.cat([wall_nx, nx_obj], 1).gather(1, idx)[:, 0]
    ny = torch.cat([torch.cat([ones, zeros[:, 1:]], 1), ny_obj], 1).gather(1, idx)[:, 0]
    nz = torch.cat([wall_nz, nz_obj], 1).gather(1, idx)[:, 0]
    base = torch.cat([scenes.floor[:, None], scenes.walls, scenes.obj_colour], 1)  # (S, 8, 3)
    colour = base.gather(1, which[..., None].expand(s, p, 3))  # (S, P, 3)
    hit = torch.isfinite(t_hit)
    t0 = torch.where(hit, t_hit, 0.0)
    hx, hy, hz = ox + t0 * dx, oy + t0 * dy, oz + t0 * dz
    chequer = 1.0 + 0.12 * (1.0 - 2.0 * ((hx.floor() + hz.floor()) % 2))
    colour = colour * torch.where(which == 0, chequer, 1.0)[..., None]
    lx, ly, lz = (_col(scenes.light[:, i]) for i in range(3))
    lit = (nx * lx + ny * ly + nz * lz).clamp(min=0.0)
    shadow_rays = (hx + 1e-3 * nx, hy + 1e-3 * ny, hz + 1e-3 * nz, lx, ly, lz)
    blocked = torch.isfinite(_hit_objects(scenes, shadow_rays)[0]).any(1)
    ambient = _col(scenes.ambient)
    shade = ambient + (1.0 - ambient) * lit * (~blocked).float()
    out = torch.where(hit[..., None], colour * shade[..., None], scenes.sky[:, None, :])
    return out.clamp(0.0, 1.0).reshape(s, v.shape[1], size, size, 3).permute(0, 1, 4, 2, 3).contiguous()


@torch.no_grad()
def render_scenes(scenes: Scenes, viewpoints: Tensor, size: int = 32) -> Tensor:
    """The views ``(S, V, 3, size, size)`` in [0, 1] of ``scenes`` from ``viewpoints (S, V, 7)`` (the
    encoding above; ``cos``/``sin`` pairs need not be normalised exactly, the ray directions are)."""
    if viewpoints.dim() != 3 or viewpoints.shape[-1] != 7 or viewpoints.shape[0] != len(scenes):
        raise ShapeError(f"render_scenes: viewpoints must be (S={len(scenes)}, V, 7), got {tuple(viewpoints.shape)}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigError("render_scenes", "size", "a positive integer (pixels)", size)
    per_scene = viewpoints.shape[1] * size * size
    step = max(1, _CHUNK_RAYS // per_scene)
    parts = [_shade_chunk(scenes.rows(slice(i, i + step)), viewpoints[i:i + step].float(), size)
             for i in range(0, len(scenes), step)]
    return torch.cat(parts)


def make_scenes(n: int, split: str = "train", seed: int = 0, size: int = 32, views: int = 10,
                start: int = 0) -> dict[str, Tensor]:
    """``{"x": float32 (n, views, 3, size, size) in [0, 1], "v": float32 (n, views, 7)}``: scenes
    ``start .. start + n - 1`` of ``split`` (see the module docstring), ``size`` 32 or 64, ``views >= 2``."""
    _check_options(size, views)
    scenes, v = random_scenes(n, split, seed, views, start)
    return {"x": render_scenes(scenes, v, size), "v": v}


def load_scenes(split: str = "train", size: int = 32, views: int = 10, n_samples: int | None = None,
                seed: int = 0) -> TensorDictDataset:
    """The scenes of ``split`` (``"train"``, ``"valid"``, ``"test"`` or ``"train+valid"``) as a dataset
    of ``{"x": (views, 3, size, size), "v": (views, 7)}`` items; ``n_samples`` scenes per split (default
    :data:`SCENE_COUNTS`; for ``"train+valid"``, the train scenes followed by the valid ones)."""
    _check_options(size, views)
    if split == "train+valid":
        parts = [load_scenes(s, size, views, n_samples, seed).tensors for s in ("train", "valid")]
        return TensorDictDataset({k: torch.cat([p[k] for p in parts]) for k in ("x", "v")})
    _split_code(split)
    n = SCENE_COUNTS[size][split] if n_samples is None else n_samples
    return TensorDictDataset(make_scenes(n, split, seed, size, views))
