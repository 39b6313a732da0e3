"""Exceptions raised by deepgm, each naming what was wrong and what was expected.

Each is also the built-in exception its kind of mistake would raise (a missing variable is a
``KeyError``, a bad shape or parameter a ``ValueError``), so existing handlers keep working:

>>> err = MissingVariableError("q(z|x) needs the variable 'x', but the inputs hold y")
>>> isinstance(err, KeyError), str(err)  # printed plainly, without KeyError's quotes
(True, "q(z|x) needs the variable 'x', but the inputs hold y")
>>> issubclass(ShapeError, ValueError), issubclass(NonFiniteLossError, DeepGMError)
(True, True)
"""

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


class SupportError(DeepGMError, ValueError):
    """A variable's value lies outside its distribution's support (a Bernoulli target of 2, a NaN)."""


class ObjectiveError(DeepGMError, ValueError):
    """An objective is of the wrong kind for where it is used (not a scalar, not an expression...)."""


class NonFiniteLossError(DeepGMError, FloatingPointError):
    """The objective evaluated to NaN or infinity during training."""


class ParticleWeightError(NonFiniteLossError):
    """A particle filter's step left a sequence with no live particle: every weight zero or non-finite."""


class NonFiniteParameterError(ParameterError):
    """A distribution parameter is NaN or infinite: a symptom of a non-finite step, to which a model's
    ``on_nonfinite`` applies (``"skip"`` skips the step) like a non-finite objective or gradient."""


class CheckpointCorruptError(DeepGMError):
    """A checkpoint's file differs from what was written (checksum mismatch), is truncated, or is not
    in the expected format; the message names the file and what was expected."""


class DeepGMWarning(UserWarning):
    """Base class of deepgm's warnings."""


class CheckpointWarning(DeepGMWarning):
    """A checkpoint was skipped (it failed verification) or loaded without verification (written
    before checkpoints recorded checksums)."""


class ConfigError(DeepGMError, ValueError):
    """An option of a config outside what it means (a batch size below 1, a negative learning rate...).

    ``owner`` names the config, ``option`` the field, ``expected`` what it must be and ``value`` what it
    was; the CLI prints it as ``--option must be <expected>, got <value>``."""

    def __init__(self, owner: str, option: str, expected: str, value: object) -> None:
        self.owner, self.option, self.expected, self.value = owner, option, expected, value
        super().__init__(f"{owner}: {option} must be {expected}, got {value!r}")


class CheckpointMismatchError(DeepGMError, ValueError):
    """A checkpoint's weights do not fit the model they are loaded into (other names or shapes)."""
