"""Energy-based distributions: ``p(x|y) = exp(-E(x|y)) / Z(y)`` with ``E`` any network.

An :class:`EnergyDistribution` is a distribution over one named variable like any other: it can be a
factor of a joint (an energy-based prior), be scored by objectives and be sampled. What differs is the
normaliser ``Z``, which is not known:

* :meth:`~EnergyDistribution.energy` and :meth:`~EnergyDistribution.unnormalized_log_prob` (``-E``) are
  always available; the objectives of :mod:`deepgm.losses.energy` (contrastive divergence, score
  matching, noise-contrastive estimation) use only them;
* ``log_prob`` is the *normalised* log-density ``-E(x|y) - log Z``: it needs a ``log_normalizer`` (a
  number, e.g. computed on a grid or by annealed importance sampling, or ``"learn"``, a parameter that
  noise-contrastive estimation fits) and raises a :class:`~deepgm.errors.ParameterError` saying so
  without one — an unnormalised value is never passed off as a log-density;
* ``sample`` runs the distribution's MCMC ``sampler`` (:mod:`deepgm.distributions.mcmc`) from its
  ``init`` distribution; draws are not differentiable (``reparam`` is ignored).

The energy network is called as ``energy(x, *conditions)`` on rows ``(N, *event_shape)`` and returns
``(N,)`` or ``(N, 1)``; sample dimensions are folded into the rows and restored.

>>> import torch
>>> from deepgm.distributions.mcmc import Langevin
>>> p = EnergyDistribution(var=["x"], energy=lambda x: 0.5 * (x ** 2).sum(-1), event_shape=[2],
...                        sampler=Langevin(step_size=0.1, steps=50))
>>> p.energy({"x": torch.tensor([[1.0, 1.0]])})
tensor([1.])
>>> p.log_prob({"x": torch.zeros(1, 2)})
Traceback (most recent call last):
...
deepgm.errors.ParameterError: EnergyDistribution p(x) is unnormalised: log_prob needs its log-normaliser \
log Z (log_normalizer=<number> or 'learn'); use unnormalized_log_prob(...) for -E(x)
>>> p.with_log_normalizer(torch.log(torch.tensor(2 * torch.pi))).log_prob({"x": torch.zeros(1, 2)})  # N(0, I)
tensor([-1.8379])
>>> p.sample(batch_n=3)["x"].shape
torch.Size([3, 2])
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from deepgm.distributions.base import Distribution, Shape, as_shape
from deepgm.distributions.env import Env
from deepgm.distributions.mcmc import Langevin, MCMCSampler
from deepgm.errors import NonFiniteLossError, ParameterError, ShapeError, SupportError

__all__ = ["EnergyDistribution", "InitFn"]

InitFn = Callable[[int], torch.Tensor]
"""``init(n)``: ``n`` starting states of fresh chains, ``(n, *event_shape)``."""


class EnergyDistribution(Distribution):
    """``p(x|y) ∝ exp(-E(x|y))`` over one variable (see the module docstring).

    ``energy``: a module or function ``(x, *conditions) -> (N,)``; ``event_shape``: the shape of one
    ``x``; ``sampler``: the MCMC run by ``sample`` (default: 100 Langevin steps of size 0.01);
    ``init``: where ``sample``'s chains start: ``"normal"`` (``N(0, I)``), ``"uniform"`` (``U(lo, hi)``
    with ``init_bounds``) or a function ``n -> (n, *event_shape)``; ``log_normalizer``: ``None``
    (unnormalised), a number or tensor (a known ``log Z``), or ``"learn"`` (an ``nn.Parameter``, 0 at first).
    """

    def __init__(
        self, var: Sequence[str] | str, cond_var: Sequence[str] | str = (), name: str = "p", *,
        energy: nn.Module | Callable[..., torch.Tensor] | None, event_shape: int | Sequence[int],
        sampler: MCMCSampler | None = None, init: str | InitFn = "normal",
        init_bounds: tuple[float, float] = (-1.0, 1.0), log_normalizer: float | torch.Tensor | str | None = None,
    ) -> None:
        super().__init__(var, cond_var, name)
        if len(self.var) != 1:
            raise ValueError(f"{self.owner}: an energy-based distribution is over exactly one variable, got {self.var}")
        if isinstance(energy, nn.Module):
            self.energy_net: nn.Module | None = energy
            self._energy_fn: Callable[..., torch.Tensor] | None = None
        elif callable(energy):
            self.energy_net, self._energy_fn = None, energy
        elif energy is None and type(self).energy_rows is not EnergyDistribution.energy_rows:
            self.energy_net, self._energy_fn = None, None  # a subclass computes the energy itself (an RBM)
        else:
            raise TypeError(f"{self.owner}: energy must be a module or function (x, *conditions) -> (N,), "
                            f"got {type(energy).__name__}")
        self.event_shape: Shape = as_shape(event_shape)
        self.sampler: MCMCSampler = sampler if sampler is not None else Langevin(step_size=0.01, steps=100)
        if not isinstance(self.sampler, MCMCSampler):
            raise TypeError(f"{self.owner}: sampler must be a deepgm.distributions.mcmc sampler, "
                            f"got {type(self.sampler).__name__}")
        if isinstance(init, str) and init not in ("normal", "uniform"):
            raise ParameterError(f"{self.owner}: init must be 'normal', 'uniform' or a function n -> states, "
                                 f"got {init!r}")
        self.init, self.init_bounds = init, init_bounds
        self._set_log_normalizer(log_normalizer)
        self._values_checked = False

    # -- the normaliser ---------------------------------------------------------------------------
    def _set_log_normalizer(self, value: float | torch.Tensor | str | None) -> None:
        self._parameters.pop("log_z", None)
        self._buffers.pop("log_z", None)
        self.__dict__.pop("log_z", None)
        self.log_z: torch.Tensor | None
        if value is None:
            self.log_z = None
        elif isinstance(value, str):
            if value != "learn":
                raise ParameterError(f"{self.owner}: log_normalizer must be None, a number or 'learn', got {value!r}")
            self.log_z = nn.Parameter(torch.zeros(()))
        else:
            t = torch.as_tensor(value, dtype=torch.get_default_dtype()).detach().reshape(())
            if not bool(torch.isfinite(t)):
                raise ParameterError(f"{self.owner}: log_normalizer must be finite, got {float(t)}")
            self.register_buffer("log_z", t.clone())

    def with_log_normalizer(self, value: float | torch.Tensor) -> EnergyDistribution:
        """A copy (sharing the energy network) whose ``log_prob`` is ``-E(x|y) - value``."""
        new = copy.copy(self)
        new._parameters = dict(self._parameters)
        new._buffers = dict(self._buffers)
        new._set_log_normalizer(value)
        return new

    @torch.no_grad()
    def grid_log_normalizer(self, bounds: Sequence[tuple[float, float]], points: int = 300) -> torch.Tensor:
        """``log Z = log ∫ exp(-E(x)) dx`` by the midpoint rule on ``points`` cells per dimension over the box
        ``bounds`` (one ``(lo, hi)`` per dimension; unconditional distributions of 1 or 2 dimensions). The
        mass outside the box is left out, so it is a lower bound when the box does not hold all of it.

        >>> p = EnergyDistribution(var=["x"], energy=lambda x: 0.5 * (x ** 2).sum(-1), event_shape=[2])
        >>> round(float(p.grid_log_normalizer([(-8, 8), (-8, 8)], 400)), 4)  # log 2π = 1.8379 for N(0, I) in 2-D
        1.8379
        """
        dim = math.prod(self.event_shape)
        if self.cond_var or dim > 2 or len(bounds) != dim:
            raise ShapeError(f"{self.owner}: a grid normaliser needs an unconditional distribution of 1 or 2 "
                             f"dimensions and one (lo, hi) per dimension; it has {dim} dimension(s), "
                             f"conditions {self.cond_var}, and {len(bounds)} bound(s) were given")
        ref = next((q for q in self.parameters()), None)
        device = ref.device if ref is not None else torch.device("cpu")
        axes, cell = [], 1.0
        for lo, hi in bounds:
            if not hi > lo:
                raise ShapeError(f"{self.owner}: grid bounds must have lo < hi, got ({lo}, {hi})")
            w = (hi - lo) / points
            axes.append(lo + w * (torch.arange(points, device=device) + 0.5))
            cell *= w
        grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, dim)
        neg = torch.cat([-self.energy_rows(chunk.reshape(-1, *self.event_shape)) for chunk in torch.split(grid, 65536)])
        return neg.logsumexp(0) + math.log(cell)

    @property
    def normalized(self) -> bool:
        """Whether ``log_prob`` is available (a log-normaliser is known or learned)."""
        return self.log_z is not None

    # -- energies ----------------------------------------------------------------------------------
    def energy_rows(self, x: torch.Tensor, *conditions: torch.Tensor) -> torch.Tensor:
        """``E(x|y)`` of rows ``x`` ``(N, *event_shape)`` at conditions of ``N`` rows: ``(N,)``."""
        e: torch.Tensor
        try:
            if self.energy_net is not None:
                e = self.energy_net(x, *conditions)
            else:
                assert self._energy_fn is not None
                e = self._energy_fn(x, *conditions)
        except RuntimeError as err:
            given = ", ".join(f"{tuple(t.shape)} {str(t.dtype).replace('torch.', '')}" for t in (x, *conditions))
            raise ShapeError(f"{self.owner}: its energy failed on the inputs {given} "
                             f"({str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__})"
                             ) from err
        if e.dim() == 2 and e.shape[1] == 1:
            e = e[:, 0]
        if e.shape != x.shape[:1]:
            raise ShapeError(f"{self.owner}: its energy must give one value per row, shape ({x.shape[0]},) "
                             f"or ({x.shape[0]}, 1); got {tuple(e.shape)}")
        return e

    def _flat(self, env: Env) -> tuple[Shape, torch.Tensor, list[torch.Tensor]]:
        """The value of ``var`` in ``env`` as rows, the leading shape to restore, the conditions as rows."""
        name = self.var[0]
        x = env.get(name, self)
        if not torch.is_tensor(x):
            x = torch.as_tensor(x, dtype=torch.get_default_dtype())
        elif not x.is_floating_point():
            x = x.to(torch.get_default_dtype())
        ne = len(self.event_shape)
        if x.dim() < ne + 1 or tuple(x.shape[x.dim() - ne:]) != self.event_shape:
            raise ShapeError(f"{self.owner}: variable '{name}' has shape {tuple(x.shape)}, expected "
                             f"(batch, {', '.join(map(str, self.event_shape))}) (its event_shape {self.event_shape}) "
                             "with any leading sample dimensions")
        if not self._values_checked or env.shared.checking:
            self._check_value(x)
        lead = tuple(x.shape[:x.dim() - ne])
        conds = []
        for c in self.cond_var:
            v = env.get(c, self)
            s = env.sdims.get(c, 0)
            own = tuple(v.shape[:s + 1])
            if own != lead[len(lead) - len(own):]:
                raise ShapeError(f"{self.owner}: condition '{c}' has leading shape {own}, which does not fit "
                                 f"the {lead} rows of '{name}'")
            v = v.expand(lead + tuple(v.shape[s + 1:]))
            conds.append(v.reshape((-1,) + tuple(v.shape[len(lead):])))
        return lead, x.reshape((-1, *self.event_shape)), conds

    def _check_value(self, x: torch.Tensor) -> None:
        """Refuse values outside the support (here: NaN or ±inf), naming the variable; runs at every public
        call and at the first evaluation in an objective."""
        with torch.no_grad():
            if not bool(torch.isfinite(x).all()):
                bad = int((~torch.isfinite(x)).sum())
                raise SupportError(f"{self.owner}: variable '{self.var[0]}' must be finite (not NaN or ±inf); "
                                   f"{bad} of {x.numel()} values are not")
        self._values_checked = True

    def energy_at(self, env: Env) -> torch.Tensor:
        """``E(x|y)`` at the values in ``env``, one per row (sample dimensions kept)."""
        lead, x, conds = self._flat(env)
        return self.energy_rows(x, *conds).reshape(lead)

    def log_prob_at(self, env: Env, detach_params: bool = False) -> torch.Tensor:
        """The normalised ``-E(x|y) - log Z``; a :class:`ParameterError` without a log-normaliser."""
        energy = self.energy_at(env)  # first: a bad value is reported as such
        if self.log_z is None:
            raise ParameterError(
                f"{self.owner} is unnormalised: log_prob needs its log-normaliser log Z "
                f"(log_normalizer=<number> or 'learn'); use unnormalized_log_prob(...) for -E({self.var[0]})"
            )
        log_z = self.log_z.detach() if detach_params else self.log_z
        return -energy - log_z

    # -- sampling ------------------------------------------------------------------------------------
    def initial_states(self, n: int, like: torch.Tensor | None = None) -> torch.Tensor:
        """``n`` starting states of fresh chains from ``init``, on the energy's device."""
        ref = like if like is not None else next((p for p in self.parameters()), None)
        device = ref.device if ref is not None else torch.device("cpu")
        shape = (n, *self.event_shape)
        if callable(self.init):
            x = self.init(n)
            if tuple(x.shape) != shape:
                raise ShapeError(f"{self.owner}: init({n}) must have shape {shape}, got {tuple(x.shape)}")
            return x.to(device)
        if self.init == "uniform":
            lo, hi = self.init_bounds
            return lo + (hi - lo) * torch.rand(shape, device=device)
        return torch.randn(shape, device=device)

    def run_chain(self, x0: torch.Tensor, conditions: Sequence[torch.Tensor] = (),
                  sampler: MCMCSampler | None = None) -> torch.Tensor:
        """Advance chains from the rows ``x0`` (at conditions of as many rows) with ``sampler`` (default:
        the distribution's own); the last states, detached. The energy's parameters get no gradient."""
        def energy(x: torch.Tensor) -> torch.Tensor:
            return self.energy_rows(x, *conditions)

        return (sampler or self.sampler).run(energy, x0)

    def new_draw(self, env: Env, sample_shape: Shape, batch_n: int | None,
                 reparam: bool) -> tuple[torch.Tensor, int]:
        sdims = env.sdims
        if self.cond_var:
            levels = [sdims.get(c, 0) for c in self.cond_var]
            s = max(levels)
            widest = env.get(self.cond_var[levels.index(s)], self)
            rows = tuple(widest.shape[:s + 1])
        else:
            s, rows = 0, (batch_n or 1,)
        lead = sample_shape + rows
        n = math.prod(lead)
        conds = []
        for c in self.cond_var:
            v, cs = env.get(c, self), sdims.get(c, 0)
            v = v.expand(lead + tuple(v.shape[cs + 1:]))  # missing leading (sample) dims are added in front
            conds.append(v.reshape((n,) + tuple(v.shape[len(lead):])))
        x = self.run_chain(self.initial_states(n), conds)
        return x.reshape(lead + self.event_shape), s + len(sample_shape)

    # -- public extras -----------------------------------------------------------------------------------
    def _public_env(self, inputs: Mapping[str, Any]) -> Env:
        env = Env(inputs, self)
        env.shared.checking = True  # the values against the support on every public call
        self._check_inputs(env, with_var=True)
        return env

    def energy(self, inputs: Mapping[str, Any]) -> torch.Tensor:
        """``E(x|y)`` at ``inputs`` (one value per row); a non-finite energy raises, naming the rows."""
        e = self.energy_at(self._public_env(inputs))
        if not bool(torch.isfinite(e).all()):
            bad = int((~torch.isfinite(e)).sum())
            raise NonFiniteLossError(f"{self.owner}: the energy is NaN or infinite at {bad} of {e.numel()} rows; "
                                     "expected a finite energy")
        return e

    def unnormalized_log_prob(self, inputs: Mapping[str, Any]) -> torch.Tensor:
        """``-E(x|y)``: the log-density up to the unknown ``log Z``."""
        return -self.energy(inputs)

    def log_prob(self, inputs: Mapping[str, Any]) -> torch.Tensor:
        env = self._public_env(inputs)
        return self.log_prob_at(env)

    def replace_var(self, **mapping: str) -> EnergyDistribution:
        return self._renamed(mapping)
