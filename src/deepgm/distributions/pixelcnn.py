"""PixelCNN and Gated PixelCNN as distributions over images, with a cached sampler.

``p(x | c) = Π_{i,j} p(x_{ij} | x_{<ij}, c)`` in raster order, each pixel's channels given by the network
of :mod:`deepgm.nn.masked` at that pixel: binary pixels (``likelihood="bernoulli"``, one logit per
channel) or grey levels (``likelihood="logistic"``, the discretised logistic mixture of
:mod:`deepgm.distributions.logistic_mixture` with ``components`` per channel, PixelCNN++'s likelihood). Values
are given flat ``(..., C·H·W)`` (deepgm's images) or as ``(..., C, H, W)`` and drawn flat when ``flat``.
``log_prob`` is exact: one pass of the network. Conditions (a class label, a VAE's latent ``z``, see
:class:`~deepgm.distributions.autoregressive.Autoregressive`) bias every layer, so a PixelCNN can be the
decoder ``p(x|z)`` of a :class:`~deepgm.models.VAE`.

Drawing takes ``H·W`` steps, one per pixel. Two samplers give the same draws under the same seed (each
step draws its pixel with the same random numbers from the network's output at that pixel):

* ``"naive"`` runs the whole network on the whole image at every step;
* ``"cached"`` (the default) runs it only on the window of the image that the output at the pixel can
  depend on — the network's ``receptive_field()`` rows above and columns either side, clipped to the
  image. Features near the window's edges differ from the full image's (the zero padding falls inside the
  image), but no such feature reaches the output at the pixel, so the output is the same one, to rounding.
  On 28×28 MNIST with the zoo's networks the windows are a fraction of the image: see
  :func:`sampling_speed` and ``benchmarks/autoregressive.py``.

>>> import torch
>>> _ = torch.manual_seed(0)
>>> p = GatedPixelCNN(var=["x"], image_shape=(1, 5, 5), channels=4, layers=2, kernel=3, first_kernel=3)
>>> _ = torch.manual_seed(1); naive = p.sample_naive(3)
>>> _ = torch.manual_seed(1); cached = p.sample_cached(3)
>>> torch.equal(naive, cached), tuple(naive.shape)
(True, (3, 1, 5, 5))
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import nn

from deepgm.distributions.autoregressive import Autoregressive, _bernoulli_draw, _bernoulli_log_prob
from deepgm.distributions.logistic_mixture import (
    discretized_logistic_log_prob,
    discretized_logistic_sample,
    grey_level_error,
)
from deepgm.errors import DeepGMError, ParameterError
from deepgm.nn.masked import GatedPixelCNNNetwork, PixelCNNNetwork

__all__ = ["PixelCNN", "GatedPixelCNN", "PixelAutoregressive", "sampling_speed"]

Names = Sequence[str] | str
Likelihood = Literal["bernoulli", "logistic"]
Sampler = Literal["cached", "naive"]


class PixelAutoregressive(Autoregressive):
    """An image distribution whose conditionals come from a masked network ``net(2x - 1, cond)`` returning
    ``(N, P, H, W)`` (``P`` values per pixel); the base of :class:`PixelCNN` and :class:`GatedPixelCNN`,
    usable with any such network (one with ``receptive_field()`` for the cached sampler)."""

    def __init__(self, var: Names, cond_var: Names, name: str, *, net: nn.Module, image_shape: Sequence[int],
                 likelihood: Likelihood = "bernoulli", components: int = 5, levels: int = 256, cond_dim: int = 0,
                 n_classes: int | None = None, flat: bool = True, sampler: Sampler = "cached") -> None:
        if len(tuple(image_shape)) != 3:
            raise ParameterError(f"{type(self).__name__} '{name}': image_shape must be (C, H, W), got {image_shape}")
        super().__init__(var, cond_var, name, event_shape=image_shape, cond_dim=cond_dim, n_classes=n_classes,
                         flat=flat)
        if likelihood not in ("bernoulli", "logistic"):
            raise ParameterError(f"{self.owner}: likelihood must be 'bernoulli' or 'logistic', got {likelihood!r}")
        if sampler not in ("cached", "naive"):
            raise ParameterError(f"{self.owner}: sampler must be 'cached' or 'naive', got {sampler!r}")
        if isinstance(components, bool) or components < 1:
            raise ParameterError(f"{self.owner}: components must be an int >= 1, got {components!r}")
        if isinstance(levels, bool) or levels < 2:
            raise ParameterError(f"{self.owner}: levels must be an int >= 2, got {levels!r}")
        if sampler == "cached" and not hasattr(net, "receptive_field"):
            raise ParameterError(f"{self.owner}: sampler='cached' needs a network with receptive_field(); "
                                 f"{type(net).__name__} has none (use sampler='naive')")
        self.net = net
        self.likelihood, self.components, self.levels, self.sampler = likelihood, components, levels, sampler
        c = self.event_shape[0]
        self.params_per_pixel = c if likelihood == "bernoulli" else 3 * components * c

    def _net_any(self) -> Any:
        return self.net

    def _value_error(self, value: torch.Tensor) -> DeepGMError | None:
        if self.likelihood == "logistic":
            return grey_level_error(self.owner, self.var[0], value, self.levels)
        return super()._value_error(value)

    def _out(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        out: torch.Tensor = self.net(2 * x - 1, cond)
        return out

    def _mixture(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(N, 3·K·C, ...)`` as the mixture's logits, locations, log-scales, each ``(N, C, ..., K)``."""
        n, c, k = out.shape[0], self.event_shape[0], self.components
        t = out.reshape(n, c, 3, k, *out.shape[2:]).movedim(3, -1)
        return t[:, :, 0], torch.tanh(t[:, :, 1]) * 1.1, t[:, :, 2]

    def _log_prob_events(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        out = self._out(x, cond)
        if self.likelihood == "bernoulli":
            return _bernoulli_log_prob(out, x)
        logits, loc, log_scale = self._mixture(out)
        return discretized_logistic_log_prob(x, logits, loc, log_scale, self.levels).flatten(1).sum(-1)

    def _draw_pixel(self, params: torch.Tensor) -> torch.Tensor:
        """One pixel's channels ``(N, C)`` from its ``(N, P)`` network outputs."""
        if self.likelihood == "bernoulli":
            return _bernoulli_draw(params)
        logits, loc, log_scale = self._mixture(params)
        return discretized_logistic_sample(logits, loc, log_scale, self.levels)

    def _start(self, m: int, cond: torch.Tensor | None) -> torch.Tensor:
        p = next(iter(self.parameters()), None)
        device = p.device if p is not None else (cond.device if cond is not None else None)
        return torch.zeros((m, *self.event_shape), dtype=self._dtype(), device=device)

    @torch.no_grad()
    def sample_naive(self, m: int, cond: torch.Tensor | None = None) -> torch.Tensor:
        """``m`` draws ``(m, C, H, W)``, the whole network run on the whole image for every pixel."""
        x = self._start(m, cond)
        _, h, w = self.event_shape
        for i in range(h):
            for j in range(w):
                x[:, :, i, j] = self._draw_pixel(self._out(x, cond)[:, :, i, j])
        return x

    @torch.no_grad()
    def sample_cached(self, m: int, cond: torch.Tensor | None = None) -> torch.Tensor:
        """``m`` draws ``(m, C, H, W)``, the network run for each pixel only on the window its output can
        depend on (the same draws as :meth:`sample_naive` under the same seed; module docstring)."""
        x = self._start(m, cond)
        _, h, w = self.event_shape
        up, left, right = self._net_any().receptive_field()
        for i in range(h):
            r0 = max(0, i - up)
            for j in range(w):
                c0, c1 = max(0, j - left), min(w, j + right + 1)
                out = self._out(x[:, :, r0 : i + 1, c0:c1], cond)
                x[:, :, i, j] = self._draw_pixel(out[:, :, i - r0, j - c0])
        return x

    def _sample_events(self, m: int, cond: torch.Tensor | None) -> torch.Tensor:
        return self.sample_cached(m, cond) if self.sampler == "cached" else self.sample_naive(m, cond)


def _network_channels(image_shape: Sequence[int], likelihood: Likelihood, components: int) -> tuple[int, int]:
    """The image's channels ``C`` and the network's output channels: ``C`` logits (Bernoulli) or
    ``3·K·C`` mixture parameters (logistic mixture of ``K`` components)."""
    c = int(tuple(image_shape)[0]) if len(tuple(image_shape)) == 3 else 1
    return c, c if likelihood == "bernoulli" else 3 * components * c


class PixelCNN(PixelAutoregressive):
    """PixelCNN (van den Oord et al. 2016) over images of ``image_shape`` (:class:`~deepgm.nn.masked.PixelCNNNetwork`:
    a ``first_kernel`` type-A masked convolution, ``layers`` residual type-B ones; it has a blind spot).

    >>> p = PixelCNN(var=["x"], image_shape=(1, 3, 3), channels=4, layers=1, kernel=3, first_kernel=3)
    >>> p.log_prob({"x": torch.full((2, 9), 0.5)})
    Traceback (most recent call last):
    ...
    deepgm.errors.SupportError: PixelCNN p(x): variable 'x' must be binary (0 or 1); got [0.5, 0.5, 0.5, 0.5] \
(18 of 18 values outside). Binarise grey levels first (e.g. torch.bernoulli(x), or deepgm.data's binarize='dynamic')
    """

    def __init__(self, var: Names = ("x",), cond_var: Names = (), name: str = "p", *,
                 image_shape: Sequence[int] = (1, 28, 28), channels: int = 64, layers: int = 5, kernel: int = 3,
                 first_kernel: int = 7, likelihood: Likelihood = "bernoulli", components: int = 5,
                 levels: int = 256, cond_dim: int = 0, n_classes: int | None = None, flat: bool = True,
                 sampler: Sampler = "cached") -> None:
        c, out = _network_channels(image_shape, likelihood, components)
        net = PixelCNNNetwork(c, out, channels, layers, kernel, first_kernel, cond_dim)
        super().__init__(var, cond_var, name, net=net, image_shape=image_shape, likelihood=likelihood,
                         components=components, levels=levels, cond_dim=cond_dim, n_classes=n_classes, flat=flat,
                         sampler=sampler)


class GatedPixelCNN(PixelAutoregressive):
    """Gated PixelCNN (van den Oord et al. 2016) over images of ``image_shape``
    (:class:`~deepgm.nn.masked.GatedPixelCNNNetwork`: vertical and horizontal stacks, no blind spot; with
    conditions, class- or latent-conditional)."""

    def __init__(self, var: Names = ("x",), cond_var: Names = (), name: str = "p", *,
                 image_shape: Sequence[int] = (1, 28, 28), channels: int = 32, layers: int = 5, kernel: int = 3,
                 first_kernel: int = 7, likelihood: Likelihood = "bernoulli", components: int = 5,
                 levels: int = 256, cond_dim: int = 0, n_classes: int | None = None, flat: bool = True,
                 sampler: Sampler = "cached") -> None:
        c, out = _network_channels(image_shape, likelihood, components)
        net = GatedPixelCNNNetwork(c, out, channels, layers, kernel, first_kernel, cond_dim)
        super().__init__(var, cond_var, name, net=net, image_shape=image_shape, likelihood=likelihood,
                         components=components, levels=levels, cond_dim=cond_dim, n_classes=n_classes, flat=flat,
                         sampler=sampler)


def sampling_speed(p: PixelAutoregressive, n: int = 4, cond: torch.Tensor | None = None,
                   seed: int = 0) -> dict[str, Any]:
    """Samples per second of ``p``'s naive and cached samplers drawing ``n`` images (at the encoded
    conditions ``cond``, ``(n, cond_dim)``), each from ``torch.manual_seed(seed)``; ``identical`` says
    whether the two gave the same draws.

    >>> p = PixelCNN(var=["x"], image_shape=(1, 4, 4), channels=4, layers=1, kernel=3, first_kernel=3)
    >>> sorted(sampling_speed(p, n=2))
    ['cached_samples_per_s', 'identical', 'image_shape', 'naive_samples_per_s', 'samples', 'speedup']
    """
    was = p.training
    p.eval()
    try:
        times, draws = {}, {}
        for kind, fn in (("naive", p.sample_naive), ("cached", p.sample_cached)):
            torch.manual_seed(seed)
            start = time.perf_counter()
            draws[kind] = fn(n, cond)
            times[kind] = time.perf_counter() - start
    finally:
        p.train(was)
    return {"samples": n, "image_shape": list(p.event_shape), "naive_samples_per_s": n / times["naive"],
            "cached_samples_per_s": n / times["cached"], "speedup": times["naive"] / times["cached"],
            "identical": bool(torch.equal(draws["naive"], draws["cached"]))}
