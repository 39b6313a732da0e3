"""Autoregressive distributions over binary vectors: NADE and MADE, with exact log-densities.

``p(x) = Π_d p(x_d | x_<d, c)`` for ``x ∈ {0, 1}^D`` (binarised images, flat), optionally given conditions
``c`` (class labels given as indices, one-hot encoded with ``n_classes``; float vectors such as a VAE's
latent ``z``, concatenated; ``cond_dim`` is their total width). ``log_prob`` is exact (one pass of the
network); ``sample`` draws the ``D`` values one at a time (``D`` passes; NADE updates its hidden
pre-activation incrementally, so a draw costs one pass in all).

* :class:`NADE` (Larochelle & Murray 2011): ``h_d = σ(c + W_{:,<d} x_{<d})``, ``p(x_d = 1) = σ(b_d + V_d·h_d)``,
  its hidden layer shared by all conditionals (all ``D`` of them from one cumulative sum).
* :class:`BinaryMADE` (Germain et al. 2015): a masked autoencoder (:class:`deepgm.nn.made.MADE`) giving all
  ``D`` logits in one pass. ``order_agnostic=True`` trains with a new ordering and connectivity per batch
  (:meth:`BinaryMADE.next_training_masks`: fresh ones, or cycling through ``n_masks`` fixed ones), and
  :meth:`BinaryMADE.ensemble_log_prob` averages the probabilities of several masks at test time
  (``log (1/M) Σ_m p_m(x)``: each ``p_m`` is a normalised distribution, so their mean is one too).

The shared machinery (:class:`Autoregressive`) folds sample dimensions into the batch, encodes the
conditions, checks the values (shape, and 0/1 values: a :class:`~deepgm.errors.SupportError` naming the
variable) and draws in the shape the conditions give.

>>> import itertools, torch
>>> _ = torch.manual_seed(0)
>>> p = NADE(var=["x"], dim=3, hidden=4)
>>> every = torch.tensor(list(itertools.product([0.0, 1.0], repeat=3)))  # all 2^3 binary vectors
>>> round(float(p.log_prob({"x": every}).detach().exp().sum()), 5)  # an exact distribution: the masses sum to 1
1.0
>>> p.sample(batch_n=5)["x"].shape
torch.Size([5, 3])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from deepgm.distributions.base import Distribution, Shape
from deepgm.distributions.env import Env
from deepgm.errors import DeepGMError, ParameterError, ShapeError, SupportError
from deepgm.nn.made import MADE
from deepgm.nn.nade import nade_logits

__all__ = ["Autoregressive", "NADE", "BinaryMADE", "binary_error"]

Names = Sequence[str] | str


def binary_error(owner: str, name: str, value: torch.Tensor) -> SupportError | None:
    """The error for a ``value`` that is not all 0s and 1s (None when it is), naming ``owner`` and ``name``."""
    with torch.no_grad():
        bad = (value != 0) & (value != 1)
        if not bool(bad.any()):
            return None
        return SupportError(
            f"{owner}: variable '{name}' must be binary (0 or 1); got {value[bad].flatten()[:4].tolist()} "
            f"({int(bad.sum())} of {value.numel()} values outside). Binarise grey levels first (e.g. "
            f"torch.bernoulli(x), or deepgm.data's binarize='dynamic')"
        )


class Autoregressive(Distribution):
    """An autoregressive distribution over one variable of ``event_shape`` (a flat ``(D,)``, or images
    ``(C, H, W)``, which are also accepted and drawn flat when ``flat``), given conditions encoded into one
    vector of ``cond_dim`` values. Subclasses implement ``_log_prob_events(x, cond) -> (M,)`` on ``M`` events
    ``x`` (flat ``(M, D)`` or ``(M, C, H, W)``, float) and ``_sample_events(m, cond) -> x``."""

    def __init__(self, var: Names, cond_var: Names, name: str, *, event_shape: Sequence[int], cond_dim: int = 0,
                 n_classes: int | None = None, flat: bool = True) -> None:
        super().__init__(var, cond_var, name)
        if len(self.var) != 1:
            raise ValueError(f"{self.owner}: is over exactly one variable, got {self.var}")
        self.event_shape: tuple[int, ...] = tuple(int(s) for s in event_shape)
        if not self.event_shape or any(s < 1 for s in self.event_shape):
            raise ShapeError(f"{self.owner}: event_shape must be sizes >= 1, got {self.event_shape}")
        if self.cond_var and cond_dim < 1:
            raise ShapeError(f"{self.owner}: conditioned on {self.cond_var}, so cond_dim (the width of the encoded "
                             f"conditions) must be >= 1, got {cond_dim}")
        if not self.cond_var and cond_dim:
            raise ShapeError(f"{self.owner}: cond_dim={cond_dim} but no cond_var to encode")
        if n_classes is not None and n_classes < 2:
            raise ParameterError(f"{self.owner}: n_classes must be >= 2 (or None), got {n_classes}")
        self.cond_dim, self.n_classes, self.flat = int(cond_dim), n_classes, flat
        self.dim = math.prod(self.event_shape)
        self._values_checked = False

    # -- what subclasses implement --------------------------------------------------------------------------
    def _log_prob_events(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def _sample_events(self, m: int, cond: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def _value_error(self, value: torch.Tensor) -> DeepGMError | None:
        """The error for values outside the support (default: not binary), None when they are inside."""
        return binary_error(self.owner, self.var[0], value)

    def _dtype(self) -> torch.dtype:
        p = next(iter(self.parameters()), None)
        return p.dtype if p is not None else torch.get_default_dtype()

    # -- conditions ------------------------------------------------------------------------------------------
    def _conditions(self, env: Env) -> list[tuple[torch.Tensor, int]]:
        """Each condition as (value, its number of feature dims: 0 for class indices, 1 for vectors)."""
        out = []
        for n in self.cond_var:
            v = env.get(n, self)
            if not torch.is_tensor(v):
                v = torch.as_tensor(v)
            feat = 0 if not (v.is_floating_point() or v.is_complex()) else 1
            if feat and v.dim() < 1:
                raise ShapeError(f"{self.owner}: condition '{n}' must be a vector per row (..., d), got a scalar")
            out.append((v, feat))
        return out

    def _encode(self, conds: list[tuple[torch.Tensor, int]], lead: Shape) -> torch.Tensor | None:
        """The conditions broadcast to ``lead`` rows and encoded into one ``(prod(lead), cond_dim)`` tensor."""
        if not conds:
            return None
        parts = []
        for (v, feat), n in zip(conds, self.cond_var, strict=True):
            if feat == 0:
                if self.n_classes is None:
                    raise ShapeError(f"{self.owner}: condition '{n}' holds class indices; give n_classes to "
                                     "one-hot encode them (or pass a float vector)")
                if v.numel() and (int(v.min()) < 0 or int(v.max()) >= self.n_classes):
                    raise ShapeError(f"{self.owner}: class indices of '{n}' must lie in [0, {self.n_classes})")
                v = F.one_hot(v.long(), self.n_classes)
            v = v.to(self._dtype()).expand(lead + v.shape[-1:])
            parts.append(v.reshape(-1, v.shape[-1]))
        cond = torch.cat(parts, -1)
        if cond.shape[-1] != self.cond_dim:
            widths = ", ".join(f"'{n}' {p.shape[-1]}" for n, p in zip(self.cond_var, parts, strict=True))
            raise ShapeError(f"{self.owner}: the encoded conditions ({widths}) have {cond.shape[-1]} values, "
                             f"expected cond_dim={self.cond_dim}")
        return cond

    def _cond_lead(self, conds: list[tuple[torch.Tensor, int]]) -> Shape:
        shapes = [tuple(v.shape[: v.dim() - feat]) for v, feat in conds]
        try:
            return tuple(torch.broadcast_shapes(*shapes)) if shapes else ()
        except RuntimeError:
            raise ShapeError(f"{self.owner}: the conditions' batch shapes {shapes} do not broadcast") from None

    # -- values ---------------------------------------------------------------------------------------------
    def _events(self, value: Any) -> tuple[torch.Tensor, Shape]:
        """The value as float events (flat ``(..., D)`` or ``(..., *event_shape)``) and its leading shape."""
        if not torch.is_tensor(value):
            value = torch.as_tensor(value, dtype=self._dtype())
        elif not value.is_floating_point():
            value = value.to(self._dtype())
        es = self.event_shape
        if len(es) > 1 and value.dim() >= len(es) and tuple(value.shape[-len(es):]) == es:
            return value, tuple(value.shape[: -len(es)])
        if value.dim() >= 1 and value.shape[-1] == self.dim:
            return value, tuple(value.shape[:-1])
        want = f"(..., {self.dim})" + (f" or (..., {', '.join(map(str, es))})" if len(es) > 1 else "")
        raise ShapeError(f"{self.owner}: variable '{self.var[0]}' has shape {tuple(value.shape)}, expected {want}")

    def _shaped(self, x: torch.Tensor, lead: Shape) -> torch.Tensor:
        """Events ``(M, ...)`` as ``lead`` + flat ``(D,)`` or + ``event_shape``."""
        return x.reshape(lead + ((self.dim,) if self.flat else self.event_shape))

    # -- the protocol -------------------------------------------------------------------------------------
    def log_prob_at(self, env: Env, detach_params: bool = False) -> torch.Tensor:
        if detach_params:
            raise DeepGMError(f"{self.owner}: detach_params is not supported by autoregressive distributions")
        x, lead_x = self._events(env.get(self.var[0], self))
        if not self._values_checked or env.shared.checking:
            err = self._value_error(x)
            if err is not None:
                raise err
            self._values_checked = True
        conds = self._conditions(env)
        lead = tuple(torch.broadcast_shapes(lead_x, self._cond_lead(conds))) if conds else lead_x
        event = tuple(x.shape[len(lead_x):])
        flat_x = x.expand(lead + event).reshape((-1, *self.event_shape))
        lp = self._log_prob_events(flat_x, self._encode(conds, lead))
        return lp.reshape(lead)

    @torch.no_grad()
    def new_draw(self, env: Env, sample_shape: Shape, batch_n: int | None,
                 reparam: bool) -> tuple[torch.Tensor, int]:
        conds = self._conditions(env)
        lead = self._cond_lead(conds) if conds else ((batch_n,) if batch_n is not None else ())
        total = tuple(sample_shape) + lead
        cond = self._encode(conds, total)
        x = self._sample_events(math.prod(total), cond)
        sdims = env.sdims
        base = max([sdims.get(n, 0) for n in self.cond_var]) if sdims and self.cond_var else 0
        return self._shaped(x, total), base + len(sample_shape)

    def replace_var(self, **mapping: str) -> Autoregressive:
        return self._renamed(mapping)


def _bernoulli_draw(logits: torch.Tensor) -> torch.Tensor:
    """0/1 draws from ``logits``: one ``torch.rand`` of their shape (the same stream for every sampler)."""
    return (torch.rand(logits.shape, dtype=logits.dtype, device=logits.device) < torch.sigmoid(logits)).to(logits.dtype)


def _bernoulli_log_prob(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(-1)


class NADE(Autoregressive):
    """NADE (Larochelle & Murray 2011) over ``x ∈ {0, 1}^dim`` in the natural order (see the module
    docstring); conditions add a learned bias to the hidden pre-activation and to the output logits."""

    def __init__(self, var: Names = ("x",), cond_var: Names = (), name: str = "p", *, dim: int, hidden: int = 500,
                 cond_dim: int = 0, n_classes: int | None = None) -> None:
        super().__init__(var, cond_var, name, event_shape=(dim,), cond_dim=cond_dim, n_classes=n_classes)
        if hidden < 1:
            raise ParameterError(f"{self.owner}: hidden must be >= 1, got {hidden}")
        self.W = nn.Parameter(torch.randn(hidden, dim) * 0.01)
        self.c = nn.Parameter(torch.zeros(hidden))
        self.V = nn.Parameter(torch.randn(dim, hidden) * 0.01)
        self.b = nn.Parameter(torch.zeros(dim))
        self.cond_net = nn.Linear(cond_dim, hidden + dim) if cond_dim else None
        self.hidden = hidden

    def _biases(self, m: int, cond: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        c, b = self.c.expand(m, -1), self.b.expand(m, -1)
        if self.cond_net is not None and cond is not None:
            dc, db = self.cond_net(cond).split([self.hidden, self.dim], -1)
            c, b = c + dc, b + db
        return c, b

    def logits(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """All ``D`` conditional logits ``(M, D)`` of events ``x`` ``(M, D)`` at once (the prefix sums of
        :func:`deepgm.nn.nade.nade_logits`, with its hand-written backward pass)."""
        c, b = self._biases(x.shape[0], cond)
        return nade_logits(x, self.W, c, self.V, b)

    def _log_prob_events(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        return _bernoulli_log_prob(self.logits(x, cond), x)

    def _sample_events(self, m: int, cond: torch.Tensor | None) -> torch.Tensor:
        c, b = self._biases(m, cond)
        x = torch.zeros(m, self.dim, dtype=c.dtype, device=c.device)
        a = c.clone()
        for d in range(self.dim):
            x[:, d] = _bernoulli_draw(torch.sigmoid(a) @ self.V[d] + b[:, d])
            a = a + x[:, d : d + 1] * self.W[:, d]
        return x


class BinaryMADE(Autoregressive):
    """MADE (Germain et al. 2015) as a distribution over ``x ∈ {0, 1}^dim``: one logit per value from a
    masked autoencoder with ``hidden`` layers; ``order_agnostic`` training with ``n_masks`` masks (0: a
    fresh ordering and connectivity every batch) and mask ensembles (see the module docstring).

    >>> p = BinaryMADE(var=["x"], dim=4, hidden=(8,), order_agnostic=True, n_masks=3)
    >>> p.next_training_masks()  # mask 0 of the cycle 0, 1, 2 (call once per training batch)
    >>> p.ensemble_log_prob({"x": torch.ones(2, 4)}, n_masks=3).shape  # log-mean-exp over masks 0, 1, 2
    torch.Size([2])
    """

    def __init__(self, var: Names = ("x",), cond_var: Names = (), name: str = "p", *, dim: int,
                 hidden: Sequence[int] = (500,), cond_dim: int = 0, n_classes: int | None = None,
                 order_agnostic: bool = False, n_masks: int = 0) -> None:
        super().__init__(var, cond_var, name, event_shape=(dim,), cond_dim=cond_dim, n_classes=n_classes)
        if n_masks < 0:
            raise ParameterError(f"{self.owner}: n_masks must be >= 0 (0: fresh masks every batch), got {n_masks}")
        self.made = MADE(dim, 1, hidden, context_dim=cond_dim, zero_init=False)
        self.order_agnostic, self.n_masks = order_agnostic, n_masks
        self._next_mask = 0

    def logits(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """All ``D`` conditional logits ``(M, D)`` under the current masks."""
        out: torch.Tensor = self.made(x, cond)[:, 0]
        return out

    def _log_prob_events(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        return _bernoulli_log_prob(self.logits(x, cond), x)

    def _sample_events(self, m: int, cond: torch.Tensor | None) -> torch.Tensor:
        x = torch.zeros(m, self.dim, dtype=self._dtype(), device=self.made.degrees.device)
        for i in self.made.degrees.argsort().tolist():  # the ordering: value i is drawn at its turn
            x[:, i] = _bernoulli_draw(self.logits(x, cond)[:, i])
        return x

    def next_training_masks(self) -> None:
        """Before a training batch: with ``order_agnostic``, the next of the ``n_masks`` masks in turn (masks
        numbered ``0 … n_masks-1``), or fresh random ones (``n_masks=0``); nothing otherwise."""
        if not self.order_agnostic:
            return
        if self.n_masks:
            self.made.use_masks(self._next_mask % self.n_masks)
            self._next_mask += 1
        else:
            self.made.resample_masks()

    def ensemble_log_prob(self, inputs: dict[str, Any], n_masks: int) -> torch.Tensor:
        """``log (1/M) Σ_m p_m(x)`` over the masks numbered ``0 … M-1`` (those ``order_agnostic`` training
        cycles through); the masks in use before the call are restored after it. With a fixed ordering
        (``order_agnostic=False``) every mask is the same one, so this is ``log_prob``."""
        if isinstance(n_masks, bool) or not isinstance(n_masks, int) or n_masks < 1:
            raise ParameterError(f"{self.owner}: n_masks must be an int >= 1, got {n_masks!r}")
        if not self.order_agnostic:
            return self.log_prob(inputs)
        saved = {k: v.clone() for k, v in self.made.state_dict().items() if k.endswith("mask") or k == "degrees"}
        try:
            parts = []
            for seed in range(n_masks):
                self.made.use_masks(seed)
                parts.append(self.log_prob(inputs))
        finally:
            self.made.load_state_dict(saved, strict=False)
        return torch.stack(parts).logsumexp(0) - math.log(n_masks)
