"""The state of one evaluation of an objective (the whole mechanism: ``docs/protocol.md``).

An :class:`Env` holds the values of the named variables in one scope, how many leading *sample*
dimensions each value carries, and a version number per value: every new value gets a version no other
value of this evaluation has, so the versions of a distribution's conditions identify the values it is
evaluated at. The memo tables live in the :class:`_Shared` part of an ``Env``; only
:class:`~deepgm.distributions.base.Distribution` reads and writes them (its ``draw_into`` and
``memo_params``). A new ``Env`` is made for every evaluation, so nothing survives from one call to the
next: reusing a batch tensor across calls always gives fresh, correct results.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch

from deepgm.errors import MissingVariableError, ShapeError

__all__ = ["Env"]

Trace = dict[str, tuple[torch.Tensor, int]]


class _Shared:
    """What every scope of one evaluation shares: the memo tables, the version counter, the open traces."""

    __slots__ = ("params", "samples", "log_probs", "counter", "traces", "checking")

    def __init__(self) -> None:
        self.params: dict[Any, Any] = {}
        self.samples: dict[Any, Any] = {}
        self.log_probs: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}
        self.counter = 0
        self.traces: list[Trace] = []
        # check every value scored against its family's support (a public log_prob call), not only
        # on a family's first evaluation
        self.checking = False


class Env:
    """Variable values of one scope of one evaluation (see the module docstring).

    >>> import torch
    >>> env = Env({"x": torch.zeros(2, 3)})  # given inputs have version 0
    >>> inner = env.child()
    >>> inner.set("z", torch.ones(5, 2, 4), sdim=1)  # a draw: one leading sample dimension
    >>> sorted(inner.values), sorted(env.values)  # what a scope sets stays inside it
    (['x', 'z'], ['x'])
    >>> inner.key(("x", "z"), "q(z|x)")  # the versions of the values: a memo key
    (0, 1)
    >>> env.get("z", "p(x|z)")
    Traceback (most recent call last):
    ...
    deepgm.errors.MissingVariableError: p(x|z) needs the variable 'z', but the inputs hold x
    """

    __slots__ = ("values", "versions", "sdims", "shared", "salt")

    def __init__(self, inputs: Mapping[str, Any] | None = None, owner: Any = None) -> None:
        self.values: dict[str, Any] = dict(inputs) if inputs else {}
        for name, value in self.values.items():  # reads shapes only: no tensor operation, no sync
            shape = getattr(value, "shape", None)
            if shape and not shape[0]:
                raise _empty_error(name, shape, owner)
        self.versions: dict[str, int] = dict.fromkeys(self.values, 0)
        self.sdims: dict[str, int] = {}
        self.shared = _Shared()
        self.salt = 0  # non-zero in the scope of an expectation that asks for independent draws

    def child(self) -> Env:
        """A nested scope: sees this scope's values; what it sets stays inside it."""
        env = Env.__new__(Env)
        env.values = self.values.copy()
        env.versions = self.versions.copy()
        env.sdims = self.sdims.copy()
        env.shared = self.shared
        env.salt = self.salt
        return env

    def new_version(self) -> int:
        """A version number no value of this evaluation has had yet."""
        shared = self.shared
        shared.counter += 1
        return shared.counter

    def set(self, name: str, value: torch.Tensor, sdim: int = 0) -> None:
        """Bind ``name`` to a new value with ``sdim`` leading sample dimensions."""
        self.bind(name, value, sdim, self.new_version())

    def bind(self, name: str, value: torch.Tensor, sdim: int, version: int) -> None:
        """Bind ``name`` to ``value`` under an existing ``version``: the one ``value`` was first bound
        with (a remembered draw bound again), so that what was computed from it is found again."""
        self.values[name] = value
        self.versions[name] = version
        if sdim:
            self.sdims[name] = sdim
        else:
            self.sdims.pop(name, None)
        traces = self.shared.traces
        if traces:
            for t in traces:
                t[name] = (value, sdim)

    @contextmanager
    def tracing(self) -> Iterator[Trace]:
        """Record every binding made inside the block, in any scope of this evaluation:
        ``with env.tracing() as trace: ...`` then ``trace[name] == (value, sdim)``. Blocks may nest."""
        trace = self.open_trace()
        try:
            yield trace
        finally:
            self.close_trace(trace)

    def open_trace(self) -> Trace:
        """Start recording bindings (what :meth:`tracing` does, for a loop that cannot hold a ``with``
        block open, e.g. a generator); :meth:`close_trace` stops it."""
        trace: Trace = {}
        self.shared.traces.append(trace)
        return trace

    def close_trace(self, trace: Trace) -> None:
        """Stop recording into this very ``trace`` (by identity, not by equal contents)."""
        traces = self.shared.traces
        for i in range(len(traces) - 1, -1, -1):
            if traces[i] is trace:
                del traces[i]
                return

    def get(self, name: str, owner: Any) -> Any:
        """The value of ``name``; a clear error naming ``owner`` (who needed it: a distribution, whose
        ``owner`` text is only built on error, or a string) when absent."""
        try:
            return self.values[name]
        except KeyError:
            given = ", ".join(sorted(self.values)) or "nothing"
            who = getattr(owner, "owner", owner)
            raise MissingVariableError(
                f"{who} needs the variable '{name}', but the inputs hold {given}"
            ) from None

    def key(self, names: tuple[str, ...], owner: Any) -> tuple[int, ...]:
        """The versions of ``names`` (a memo key); raises the missing-variable error when absent."""
        versions = self.versions
        try:
            return tuple([versions[n] for n in names])
        except KeyError:
            for n in names:
                self.get(n, owner)
            raise

    # -- the memo's extent (for evaluations that run many passes in one Env, e.g. log_likelihood) -------
    def memo_mark(self) -> tuple[int, int, int]:
        """A mark of what is memoised now; ``forget_since(mark)`` drops what is memoised after it."""
        shared = self.shared
        return len(shared.params), len(shared.samples), len(shared.log_probs)

    def forget_since(self, mark: tuple[int, int, int]) -> None:
        """Drop the memo entries (parameters, draws, remembered densities) made after ``mark``."""
        shared = self.shared
        tables: tuple[dict[Any, Any], ...] = (shared.params, shared.samples, shared.log_probs)
        for table, size in zip(tables, mark, strict=True):
            while len(table) > size:
                table.popitem()  # dicts keep insertion order: the newest go first

    # -- densities known along with a draw (e.g. a flow's, computed in the sampling direction) ----------
    def remember_log_prob(self, owner: object, value: torch.Tensor, log_prob: torch.Tensor) -> None:
        """Remember that ``owner``'s log-density at this very tensor ``value`` is ``log_prob``."""
        self.shared.log_probs[(id(owner), id(value))] = (value, log_prob)

    def recall_log_prob(self, owner: object, value: Any) -> torch.Tensor | None:
        """The log-density remembered for ``owner`` at this very tensor ``value``, or None."""
        hit = self.shared.log_probs.get((id(owner), id(value)))
        return hit[1] if hit is not None and hit[0] is value else None


def _empty_error(name: str, shape: Any, owner: Any) -> ShapeError:
    who = getattr(owner, "owner", None) or (f"objective {owner}" if owner is not None else "")
    return ShapeError(
        f"{who + ': ' if who else ''}input '{name}' has 0 rows (shape {tuple(shape)}); an empty batch has no "
        "value to average (it would give NaN): give at least one row"
    )
