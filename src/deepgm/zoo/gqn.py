"""The generative query network (Eslami et al. 2018): from ``k`` context views of a scene (images and
viewpoints) it renders the scene from a query viewpoint it has not seen.

The context is summarised by ``r = Σ_k tower(x_k, v_k)`` (:class:`~deepgm.nn.gqn.SceneRepresentation`, a
``Deterministic`` ``f_{repr}``). The convolutional DRAW core (:class:`~deepgm.nn.gqn.GenerationCore`,
``f_{core}``) runs ``L`` steps on the query image ``x_q``, its viewpoint ``v_q``, ``r`` and standard-normal
noise ``ε`` (``z_l = μ_l + σ_l ε_l``: the posterior's draws, reparameterised) and returns every step's
inference and generator states and the final canvas ``u``. The objective is the negative ELBO of the
query image, averaged over the batch::

    Σ_l D_KL[q(z_l|h^e_l) || p(z_l|h^g_l)] - log N(x_q; mean(u), σ_t²)

(the KL of all ``L`` steps at once, analytic: ``q`` and ``p`` are Normals over ``z = (z_1..z_L)``
whose parameters are the heads at each step's state; ``σ_t`` is annealed linearly from ``sigma_start`` to
``sigma_end`` over ``anneal_steps`` training steps, as in the paper's 2.0 → 0.7 over 200k).

Every training batch of scenes ``{"x": (B, V, 3, H, W), "v": (B, V, 7)}`` is cut into context and query
by :meth:`GQN.train_step`: a number of context views ``k`` drawn uniformly from ``1..max_context`` for
the batch, and for each scene a random order of its views (the first ``k`` the context, the next the
query). Validation and :meth:`GQN.evaluate` use a fixed cut: views ``0..k-1`` as context, the last view
as the query — the same query views for every ``k``.

``gqn-deterministic`` is the baseline with the same representation network and generator with no
latents, trained to regress the query image (``-log N(x_q; mean(u), 1) = ½ Σ (x_q - mean)² + const``,
the squared error summed over the image's values).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from deepgm.data import DataInfo
from deepgm.distributions import Deterministic, Env, MultiDeterministic, Normal
from deepgm.errors import ConfigError, DeepGMError, ShapeError
from deepgm.losses import KL, BatchE, E, LogProb, Loss
from deepgm.models import Model
from deepgm.nn.gqn import DeterministicCore, GenerationCore, ImageMean, SceneRepresentation, Tower
from deepgm.zoo.options import Rule, at_least, option, positive
from deepgm.zoo.registry import register

__all__ = ["GQNDeterministicConfig", "GQNConfig", "GQN", "query_split", "build_gqn", "build_gqn_deterministic"]

Batch = Mapping[str, torch.Tensor]
_ODD = Rule(lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1 and v % 2 == 1,
            "an odd integer of at least 1")
CONTEXTS = (1, 3, 5)  # the numbers of context views evaluate reports


@dataclass
class GQNDeterministicConfig:
    """Network sizes, the context and the learning rate. The defaults are sized for a CPU (the budget of
    ``benchmarks/gqn.py``: 3,000 steps of 32 scenes of ``scenes-32``); the paper's are r 256, h 128
    channels, L = 12 steps, 5×5 kernels."""

    r_channels: int = 32  # the representation's channels (on the H/4 × W/4 grid)
    h_channels: int = 32  # the LSTMs' channels
    u_channels: int = 16  # the canvas's channels (at the image's size)
    steps: int = 6  # L, the core's steps
    kernel: int = option(3, _ODD)  # the LSTMs' and heads' convolutions
    max_context: int = 5  # context views drawn per training batch: k ~ U{1..max_context}
    eval_batch: int = 50  # scenes per batch in evaluate
    lr: float = 1e-3


@dataclass
class GQNConfig(GQNDeterministicConfig):
    """The deterministic options, the latents' channels and the likelihood's annealed σ."""

    z_channels: int = 4
    sigma_start: float = option(2.0, positive())
    sigma_end: float = option(0.7, positive())
    anneal_steps: int = option(2000, at_least(0))  # training steps from sigma_start to sigma_end


def query_split(batch: Batch, k: int, shuffle: bool = False) -> dict[str, torch.Tensor]:
    """Scenes ``{"x": (B, V, 3, H, W), "v": (B, V, 7)}`` as context ``x_c (B, k, ...)``, ``v_c`` and query
    ``x_q (B, 3, H, W)``, ``v_q (B, 7)``: views ``0..k-1`` and the last (``shuffle=False``), or for each
    scene the first ``k`` and the next of a random order of its views (torch's global generator)."""
    x, v = batch["x"], batch["v"]
    if x.dim() != 5 or v.dim() != 3 or x.shape[:2] != v.shape[:2]:
        raise ShapeError(f"GQN needs scenes {{'x': (B, V, C, H, W), 'v': (B, V, 7)}}, got "
                         f"{ {n: tuple(t.shape) for n, t in batch.items()} }")
    b, views = x.shape[:2]
    if not 1 <= k < views:
        raise ShapeError(f"GQN: {k} context views and a query need more than {k} views per scene, got {views}")
    if shuffle:
        order = torch.rand(b, views, device=x.device).argsort(1)
    else:
        order = torch.cat([torch.arange(k), torch.tensor([views - 1])]).to(x.device).expand(b, k + 1)
    rows = torch.arange(b, device=x.device)[:, None]
    ctx, query = order[:, :k], order[:, k]
    return {"x_c": x[rows, ctx], "v_c": v[rows, ctx], "x_q": x[rows[:, 0], query], "v_q": v[rows[:, 0], query]}


class GQN(Model):
    """A GQN (``latent=True``) or its deterministic baseline: trains on scenes (see the module docstring),
    renders query views (:meth:`render`), evaluates per number of context views (:meth:`evaluate`)."""

    def __init__(self, loss: Loss, dists: list[Any], *, represent: Deterministic, image: Normal,
                 core: GenerationCore | DeterministicCore, cfg: GQNDeterministicConfig, views: int,
                 terms: tuple[Loss, Loss] | None = None) -> None:
        latent = isinstance(cfg, GQNConfig)
        super().__init__(loss, dists, optimizer=torch.optim.Adam, optimizer_params={"lr": cfg.lr},
                         schedule=self.sigma_schedule if latent else None)
        self.cfg, self.views, self.latent = cfg, views, latent
        self._represent, self._image, self._core = represent, image, core
        self._terms = terms  # (Σ_l KL, -log p(x_q|u)) for evaluate, drawn alike

    # -- training -------------------------------------------------------------------------------------------
    def sigma_at(self, step: int) -> float:
        """The likelihood's σ after ``step`` training steps (linear from sigma_start to sigma_end); 1 for the
        deterministic baseline."""
        if not isinstance(self.cfg, GQNConfig):
            return 1.0
        c = self.cfg
        done = 1.0 if c.anneal_steps == 0 else min(1.0, step / c.anneal_steps)
        return c.sigma_start + (c.sigma_end - c.sigma_start) * done

    def sigma_schedule(self, step: int) -> dict[str, torch.Tensor]:
        """The objective's parameters at ``step``: ``{"sigma": σ_step}``."""
        return {"sigma": torch.tensor(self.sigma_at(step))}

    def _max_k(self) -> int:
        return min(self.cfg.max_context, self.views - 1)

    def train_step(self, inputs: Mapping[str, Any], **params: Any) -> float | dict[str, float]:
        if "x_q" not in inputs:
            k = int(torch.randint(1, self._max_k() + 1, ()))
            inputs = query_split(inputs, k, shuffle=True)
        return super().train_step(inputs, **params)

    def eval_step(self, inputs: Mapping[str, Any], **params: Any) -> float:
        if "x_q" not in inputs:
            inputs = query_split(inputs, self._max_k())
        return super().eval_step(inputs, **params)

    # -- rendering ------------------------------------------------------------------------------------------
    @torch.no_grad()
    def render(self, x_c: torch.Tensor, v_c: torch.Tensor, v_q: torch.Tensor, samples: int = 1) -> torch.Tensor:
        """Query views ``(B, samples, 3, H, W)`` (the likelihood's mean) at viewpoints ``v_q (B, 7)`` of the
        scenes seen in ``x_c (B, k, 3, H, W)`` from ``v_c (B, k, 7)``; the GQN draws each from its prior
        (``samples`` draws), the deterministic baseline gives its one prediction ``samples`` times."""
        with self.evaluating():
            r = self._represent.mean({"x_c": x_c, "v_c": v_c})
            b = r.shape[0]
            if isinstance(self._core, GenerationCore):
                r_s, v_s = r.repeat_interleave(samples, 0), v_q.repeat_interleave(samples, 0)
                eps = torch.randn(b * samples, *self._core.noise_shape(), device=r.device)
                u = self._core.generate(v_s, r_s, eps)
            else:
                u = self._core(v_q, r)["loc"].repeat_interleave(samples, 0)
            mean = self._image.params({"u": u, "sigma": torch.tensor(1.0)})["loc"]
            return mean.reshape(b, samples, *mean.shape[1:])

    def generate(self, n: int, scenes: Batch | None = None, k: int | None = None) -> torch.Tensor:
        """``n`` query views ``(n, 3, H, W)``: the last view of each of the first ``n`` of ``scenes``
        rendered from its first ``k`` views (default ``max_context``)."""
        if scenes is None:
            raise DeepGMError("GQN renders views of given scenes: call generate(n, scenes={'x', 'v'}) with test "
                              "scenes (it draws no scene of its own)")
        split = query_split({"x": scenes["x"][:n], "v": scenes["v"][:n]}, k or self._max_k())
        return self.render(split["x_c"], split["v_c"], split["v_q"])[:, 0]

    # -- evaluation -----------------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, test_data: Batch, *, k: int = 1000, info: DataInfo | None = None,
                 contexts: tuple[int, ...] = CONTEXTS, samples: int = 8) -> dict[str, Any]:
        """Held-out query views (the last view of every test scene) from ``c`` context views (the first
        ``c``), for each ``c`` of ``contexts`` below the views per scene: ``test_mse_k{c}`` (the squared
        error of one rendered view per scene, averaged over scenes and the ``3·H·W`` values),
        ``test_mse_mean{samples}_k{c}`` (of the average of ``samples`` renders: an estimate of the
        prediction's mean) and, for the GQN, ``test_bits_per_pixel_k{c}``: the negative ELBO of the query
        image in nats (a density of values in [0, 1], at the current σ) averaged over scenes, divided by
        ``3·H·W·ln 2`` — bits per colour value — with ``test_kl_k{c}`` (nats per image). ``k`` (importance
        samples elsewhere) does not apply."""
        x = test_data["x"]
        n, (c, h, w) = len(x), tuple(x.shape[2:])
        sigma = self.sigma_at(self.steps)
        out: dict[str, Any] = {"scenes": n, "query_view": int(x.shape[1]) - 1, "values_per_image": c * h * w}
        if self.latent:
            out["sigma"] = sigma
        with self.evaluating():
            for ctx in [m for m in contexts if m < x.shape[1]]:
                totals = {"kl": 0.0, "nll": 0.0, "mse": 0.0, "mse_mean": 0.0}
                for i in range(0, n, self.cfg.eval_batch):
                    split = query_split({"x": x[i:i + self.cfg.eval_batch],
                                         "v": test_data["v"][i:i + self.cfg.eval_batch]}, ctx)
                    if self._terms is not None:
                        env = Env({**split, "sigma": torch.tensor(sigma)})  # one evaluation: both terms share draws
                        totals["kl"] += float(self._terms[0]._eval(env).sum())
                        totals["nll"] += float(self._terms[1]._eval(env).sum())
                    views = self.render(split["x_c"], split["v_c"], split["v_q"], samples)
                    err = views - split["x_q"][:, None]
                    totals["mse"] += float((err[:, 0] ** 2).mean((1, 2, 3)).sum())
                    totals["mse_mean"] += float((err.mean(1) ** 2).mean((1, 2, 3)).sum())
                out[f"test_mse_k{ctx}"] = totals["mse"] / n
                out[f"test_mse_mean{samples}_k{ctx}"] = totals["mse_mean"] / n
                if self._terms is not None:
                    out[f"test_bits_per_pixel_k{ctx}"] = (totals["kl"] + totals["nll"]) / n / (c * h * w * math.log(2))
                    out[f"test_kl_k{ctx}"] = totals["kl"] / n
        out["note"] = ("query: the last view of each test scene; context: its first k views. bits_per_pixel: "
                       "-ELBO (nats, Gaussian density of the query image at sigma) / (3*H*W*ln 2), per colour value"
                       if self.latent else "query: the last view of each test scene; context: its first k views; "
                       "a deterministic regression: no ELBO, squared errors only")
        return out

    def figures(self, out_dir: Path, test_data: Batch, info: DataInfo) -> list[Path]:
        """``query_views.png``: for 6 test scenes a row of 3 context views, 4 rendered query views (1 for the
        deterministic baseline) and the true query view."""
        from deepgm import viz

        x = test_data["x"][:6]
        k = min(3, x.shape[1] - 1)
        split = query_split({"x": x, "v": test_data["v"][:6]}, k)
        drawn = self.render(split["x_c"], split["v_c"], split["v_q"], 4 if self.latent else 1)
        rows = torch.cat([split["x_c"], drawn, split["x_q"][:, None]], 1)
        shape = tuple(rows.shape[2:])
        return [viz.save_image_grid(viz.upscale(rows.reshape(-1, *shape), shape, 64), out_dir / "query_views.png",
                                    nrow=rows.shape[1])]


def _scene_shape(data: DataInfo, model: str, cfg: GQNDeterministicConfig) -> tuple[int, tuple[int, int, int]]:
    """(views per scene, (C, H, W)) of scene data; ConfigError naming the dataset or the option otherwise."""
    shape = tuple(data.x_shape)
    if len(shape) != 4 or shape[0] < 2 or shape[2] % 4 or shape[3] % 4 or getattr(data, "sequence", False):
        raise ConfigError("DataConfig", "dataset", f"a scene dataset (scenes-32, scenes-64: views (V, C, H, W), "
                          f"sides divisible by 4) for model {model!r}", data.name)
    if cfg.max_context >= shape[0]:
        raise ConfigError(type(cfg).__name__, "max_context", f"at most {shape[0] - 1} (the views per scene of "
                          f"{data.name!r} less the query view)", cfg.max_context)
    return shape[0], (shape[1], shape[2], shape[3])


def _representation(cfg: GQNDeterministicConfig, channels: int) -> Deterministic:
    return Deterministic(var=["r"], cond_var=["x_c", "v_c"], name="f_{repr}",
                         net=SceneRepresentation(Tower(cfg.r_channels, channels)))


SCENES_EXAMPLE = DataInfo("scenes-32", (10, 3, 32, 32), binary=False)  # what `deepgm latex gqn` builds it for


@register("gqn", "GQN: render a scene from a new viewpoint given context views (conv DRAW core, ELBO)", GQNConfig,
          pixels="grey", example=SCENES_EXAMPLE)
def build_gqn(cfg: GQNConfig, data: DataInfo) -> GQN:
    """The GQN of ``cfg`` for scene data ``data``."""
    views, image_shape = _scene_shape(data, "gqn", cfg)
    represent = _representation(cfg, image_shape[0])
    core = GenerationCore(image_shape, cfg.r_channels, cfg.h_channels, cfg.z_channels, cfg.steps, cfg.u_channels,
                          cfg.kernel)
    noise = Normal(var=["eps"], loc=0.0, scale=1.0, features_shape=core.noise_shape(), name="p_{noise}")
    f_core = MultiDeterministic(var=["h_e", "h_g", "u"], cond_var=["x_q", "v_q", "r", "eps"], net=core,
                                name="f_{core}")
    q = Normal(var=["z"], cond_var=["h_e"], net=core.posterior, event_ndim=4, name="q")
    p = Normal(var=["z"], cond_var=["h_g"], net=core.prior, event_ndim=4, name="p")
    image = Normal(var=["x_q"], cond_var=["u"], net=ImageMean(cfg.u_channels, image_shape[0]), scale="sigma",
                   event_ndim=3, name="p")

    def per_query(f: Loss) -> Loss:
        return E(represent, BatchE(noise, E(f_core, f), batch_like="v_q"))

    terms = (per_query(KL(q, p)), per_query(-LogProb(image)))
    loss = per_query(KL(q, p) - LogProb(image)).mean()
    return GQN(loss, [represent, noise, f_core, q, p, image], represent=represent, image=image, core=core, cfg=cfg,
               views=views, terms=terms)


@register("gqn-deterministic", "GQN's deterministic baseline: the same networks without latents, squared error",
          GQNDeterministicConfig, pixels="grey", example=SCENES_EXAMPLE)
def build_gqn_deterministic(cfg: GQNDeterministicConfig, data: DataInfo) -> GQN:
    """The deterministic baseline of ``cfg`` for scene data ``data``."""
    views, image_shape = _scene_shape(data, "gqn-deterministic", cfg)
    represent = _representation(cfg, image_shape[0])
    core = DeterministicCore(image_shape, cfg.r_channels, cfg.h_channels, cfg.steps, cfg.u_channels, cfg.kernel)
    f_core = Deterministic(var=["u"], cond_var=["v_q", "r"], net=core, name="f_{core}")
    image = Normal(var=["x_q"], cond_var=["u"], net=ImageMean(cfg.u_channels, image_shape[0]), scale=1.0,
                   event_ndim=3, name="p")
    loss = E(represent, E(f_core, -LogProb(image))).mean()
    return GQN(loss, [represent, f_core, image], represent=represent, image=image, core=core, cfg=cfg, views=views)
