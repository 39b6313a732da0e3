"""The state of one evaluation of an objective.

An :class:`Env` holds the values of the named variables in one scope, how many leading *sample*
dimensions each value carries, and a version number per value. Memoisation lives here and only here:
a distribution's parameters are computed once per (distribution, versions of its conditioning values)
and a draw ``E(q, ...)`` is made once per (distribution, conditioning versions, sample shape). A new
``Env`` is made for every evaluation, so nothing survives from one call to the next: reusing a batch
tensor across calls always gives fresh, correct results.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from deepgm.errors import MissingVariableError

__all__ = ["Env"]


class _Shared:
    """What every scope of one evaluation shares: the memo tables, the version counter, the trace."""

    __slots__ = ("params", "samples", "counter", "trace")

    def __init__(self) -> None:
        self.params: dict[Any, dict[str, torch.Tensor]] = {}
        self.samples: dict[Any, Any] = {}
        self.counter = 0
        self.trace: dict[str, tuple[torch.Tensor, int]] = {}


class Env:
    """Variable values of one scope of one evaluation (see the module docstring)."""

    __slots__ = ("values", "versions", "sdims", "shared", "salt")

    def __init__(self, inputs: Mapping[str, Any] | None = None) -> None:
        self.values: dict[str, Any] = dict(inputs) if inputs else {}
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

    def set(self, name: str, value: torch.Tensor, sdim: int = 0) -> None:
        """Bind ``name`` to a new value with ``sdim`` leading sample dimensions."""
        shared = self.shared
        shared.counter += 1
        self.values[name] = value
        self.versions[name] = shared.counter
        if sdim:
            self.sdims[name] = sdim
        else:
            self.sdims.pop(name, None)
        shared.trace[name] = (value, sdim)

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
