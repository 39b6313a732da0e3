"""Exceptions raised by deepgm, each naming what was wrong and what was expected."""

from __future__ import annotations


class DeepGMError(Exception):
    """Base class of deepgm's own errors."""


class MissingVariableError(DeepGMError, KeyError):
    """A distribution or objective needs a variable that the inputs do not hold."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0]) if self.args else ""


class ShapeError(DeepGMError, ValueError):
    """A variable's shape does not fit the distribution it is given to."""


class ParameterError(DeepGMError, ValueError):
    """A distribution parameter is outside its support (negative scale, probability > 1, ...)."""


class ObjectiveError(DeepGMError, ValueError):
    """An objective is of the wrong kind for where it is used (not a scalar, not an expression...)."""


class NonFiniteLossError(DeepGMError, FloatingPointError):
    """The objective evaluated to NaN or infinity during training."""
