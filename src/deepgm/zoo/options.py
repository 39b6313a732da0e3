"""Config dataclasses as options: the rule each field's value must meet, and reading the fields from
the command line and TOML files.

Every zoo config is checked by :func:`check_config` (the registry's builders call it, and so does
``deepgm train`` before anything runs). A field's rule is the one it declares with :func:`option`
(``components: int = option(0, at_least(0))``), else a generic one by type and name: an ``int`` is a
size or a count (at least 1), a ``tuple[int, ...]`` a list of sizes (non-empty, each at least 1), and a
``float`` named like a learning rate (``lr``, ``*_lr``), a tolerance, bandwidth or clip is positive and
one named ``*_weight`` is non-negative. ``None`` passes wherever the type allows it. A new family's
defaults must pass (:func:`deepgm.zoo.register` checks them), so a field that is not a count declares
its rule.

>>> from dataclasses import dataclass
>>> @dataclass
... class Toy:
...     z_dim: int = 2
...     hidden: tuple[int, ...] = (8,)
...     lr: float = 1e-3
...     components: int = option(0, at_least(0))
>>> check_config(Toy(components=3))
>>> check_config(Toy(z_dim=0))
Traceback (most recent call last):
...
deepgm.errors.ConfigError: Toy: z_dim must be an integer of at least 1, got 0
>>> check_config(Toy(hidden=(8, 0)))
Traceback (most recent call last):
...
deepgm.errors.ConfigError: Toy: hidden must be a non-empty list of integers of at least 1, got (8, 0)
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import math
import pickle
import re
import tomllib
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deepgm.errors import ConfigError, DeepGMError

__all__ = ["Rule", "OptionError", "option", "at_least", "positive", "non_negative", "between", "rule_of",
           "check_config", "count_arg", "positive_arg", "add_config_options", "config_from", "given_options",
           "read_toml", "parse_bool", "option_names", "one_line", "expected_errors"]


class OptionError(DeepGMError, ValueError):
    """A bad option: an unknown one, a value that does not parse, an unreadable ``--config`` file."""


@dataclasses.dataclass(frozen=True)
class Rule:
    """What a field's value must be: ``ok(value)`` and the words ``expected`` for the message."""

    ok: Callable[[Any], bool]
    expected: str


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def at_least(n: int) -> Rule:
    """An integer of at least ``n``."""
    return Rule(lambda v: _is_int(v) and v >= n, f"an integer of at least {n}")


def positive() -> Rule:
    """A finite number above 0."""
    return Rule(lambda v: _is_real(v) and v > 0, "a positive finite number")


def non_negative() -> Rule:
    """A finite number of at least 0."""
    return Rule(lambda v: _is_real(v) and v >= 0, "a finite number of at least 0")


def between(lo: float, hi: float, open_lo: bool = False, open_hi: bool = False) -> Rule:
    """A number in ``[lo, hi]`` (``open_lo``/``open_hi`` exclude an end): ``between(0, 1)`` is a probability."""
    def ok(v: Any) -> bool:
        return _is_real(v) and (v > lo if open_lo else v >= lo) and (v < hi if open_hi else v <= hi)

    return Rule(ok, f"a number in {'(' if open_lo else '['}{lo}, {hi}{')' if open_hi else ']'}")


def _each(rule: Rule, what: str) -> Rule:
    return Rule(lambda v: isinstance(v, tuple) and len(v) > 0 and all(rule.ok(x) for x in v),
                f"a non-empty list of {what}")


def option(default: Any, rule: Rule) -> Any:
    """A dataclass field with ``default`` and its own :class:`Rule` (instead of the generic one)."""
    return dataclasses.field(default=default, metadata={"rule": rule})


_POSITIVE_NAMES = re.compile(r"(^|_)(lr|atol|rtol|tol|clip|bandwidth|bandwidths|scale|temperature)$")
_WEIGHT_NAMES = re.compile(r"_weight$")


def rule_of(name: str, tp: Any, metadata: typing.Mapping[str, Any] | None = None) -> Rule | None:
    """The rule of the field ``name`` of type ``tp``: its declared one, else the generic one (or None)."""
    if metadata and "rule" in metadata:
        return typing.cast(Rule, metadata["rule"])
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return rule_of(name, inner[0]) if len(inner) == 1 else None
    if origin is tuple:
        args = typing.get_args(tp)
        if args and args[0] is int:
            return _each(at_least(1), "integers of at least 1")
        if args and args[0] is float and _POSITIVE_NAMES.search(name):
            return _each(positive(), "positive numbers")
        return None
    if tp is int:
        return at_least(1)
    if tp is float and _POSITIVE_NAMES.search(name):
        return positive()
    if tp is float and _WEIGHT_NAMES.search(name):
        return non_negative()
    return None


def check_config(cfg: Any) -> None:
    """Raise :class:`~deepgm.errors.ConfigError` for the first field of the dataclass ``cfg`` whose value
    breaks its rule (see the module's description)."""
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        rule = rule_of(f.name, hints[f.name], f.metadata)
        if value is None or rule is None:
            continue
        if not rule.ok(value):
            raise ConfigError(type(cfg).__name__, f.name, rule.expected, value)


# -- command-line options ---------------------------------------------------------------------------------
def count_arg(minimum: int) -> Callable[[str], int]:
    """An argparse ``type``: an integer of at least ``minimum``."""
    def parse(s: str) -> int:
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer of at least {minimum}, got {s!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer of at least {minimum}, got {v}")
        return v

    return parse


def positive_arg(s: str) -> float:
    """An argparse ``type``: a positive finite number."""
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {s!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {s}")
    return v


def parse_bool(s: str) -> bool:
    """``true``/``false`` (also 1/0, yes/no, on/off)."""
    if s.lower() in ("1", "true", "yes", "on"):
        return True
    if s.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {s!r}")


def _field_parser(tp: Any) -> tuple[Any, list[str] | None]:
    """(converter, choices) for a dataclass field type."""
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return str, [str(c) for c in typing.get_args(tp)]
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        conv, choices = _field_parser(args[0])
        return (lambda s: None if s.lower() == "none" else conv(s)), choices
    if origin is tuple:
        inner = typing.get_args(tp)[0]
        return (lambda s: tuple(inner(v) for v in s.replace(" ", "").split(",") if v)), None
    if tp is bool:
        return parse_bool, None
    if tp in (int, float, str, Path):
        return tp, None
    return str, None


def add_config_options(parser: argparse.ArgumentParser, cls: type, title: str, prefix: str = "cfg",
                       skip: tuple[str, ...] = ()) -> None:
    """One option per field of ``cls`` (``--field-name``, stored as ``{prefix}_{field}``, None when not
    given so that a TOML value or the field's default applies); the help shows the field's default."""
    group = parser.add_argument_group(title)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        conv, choices = _field_parser(hints[f.name])
        default = f.default if f.default is not dataclasses.MISSING else None
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        group.add_argument(f"--{f.name.replace('_', '-')}", dest=f"{prefix}_{f.name}", type=conv, choices=choices,
                           default=None, metavar=None if choices else f.name.upper(), help=f"(default: {shown})")


def given_options(cls: type, args: argparse.Namespace, toml: dict[str, Any], prefix: str = "cfg") -> set[str]:
    """The fields of ``cls`` that the command line or the TOML table sets."""
    return {f.name for f in dataclasses.fields(cls)
            if f.name in toml or getattr(args, f"{prefix}_{f.name}", None) is not None}


def config_from(cls: type, args: argparse.Namespace, toml: dict[str, Any], where: str, table: str,
                prefix: str = "cfg", base: dict[str, Any] | None = None, **fixed: Any) -> Any:
    """``cls`` from its defaults (or the values of ``base``, e.g. a resumed run's), overridden by the
    TOML ``[table]``, overridden by the command line; checked by its ``validate()`` or :func:`check_config`."""
    hints = typing.get_type_hints(cls)
    names = sorted(f.name for f in dataclasses.fields(cls))
    unknown = sorted(set(toml) - set(names))
    if unknown:
        raise OptionError(f"[{table}]: unknown option(s) {unknown}; valid: {names}")
    values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in (base or {}).items()
                              if k in names}
    for f in dataclasses.fields(cls):
        if f.name in toml:
            conv, choices = _field_parser(hints[f.name])
            raw = toml[f.name]
            try:
                value = conv(",".join(map(str, raw)) if isinstance(raw, list) else str(raw))
            except (TypeError, ValueError) as err:
                raise OptionError(f"{where}: option '{f.name}' has a bad value {raw!r}: {err}") from None
            if choices and str(value) not in choices:
                raise OptionError(f"{where}: option '{f.name}' must be one of {choices}, got {raw!r}")
            values[f.name] = value
        cli = getattr(args, f"{prefix}_{f.name}", None)
        if cli is not None:
            values[f.name] = cli
    try:
        cfg = cls(**{**values, **fixed})
    except ConfigError:
        raise
    except (TypeError, ValueError) as err:
        raise OptionError(f"{where}: {err}") from None
    validate = getattr(cfg, "validate", None)
    if callable(validate):
        validate()
    else:
        check_config(cfg)
    return cfg


def read_toml(path: Path | None) -> dict[str, dict[str, Any]]:
    """The tables of the ``--config`` file ``path`` ({} for None); :class:`OptionError` names the file
    and what is wrong with it (missing, a folder, not text, not TOML, unknown tables)."""
    if path is None:
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OptionError(f"--config: {path} does not exist") from None
    except IsADirectoryError:
        raise OptionError(f"--config: {path} is a folder, expected a TOML file") from None
    except UnicodeDecodeError:
        raise OptionError(f"--config: {path} is not a text file (not UTF-8), expected a TOML file") from None
    except PermissionError:
        raise OptionError(f"--config: {path} cannot be read (permission denied)") from None
    except tomllib.TOMLDecodeError as err:
        raise OptionError(f"config file {path} is not valid TOML: {err}") from None
    unknown = set(data) - {"model", "data", "train"}
    if unknown:
        raise OptionError(f"config file {path}: unknown tables {sorted(unknown)}; expected [model], [data], [train]")
    if not all(isinstance(v, dict) for v in data.values()):
        raise OptionError(f"config file {path}: options belong in the tables [model], [data], [train]")
    return data


def option_names(text: str, configs: typing.Sequence[type], flag: str) -> frozenset[str]:
    """The field names listed in ``text`` (``lr,batch-size``: dashes or underscores), each a field of one of
    ``configs``; :class:`OptionError` names the unknown ones and ``flag``."""
    names = frozenset(n.strip().lstrip("-").replace("-", "_") for n in text.split(",") if n.strip())
    known = {f.name for cls in configs for f in dataclasses.fields(cls)}
    unknown = sorted(n.replace("_", "-") for n in names - known)
    if unknown:
        listed = ", ".join(sorted(k.replace("_", "-") for k in known))
        raise OptionError(f"{flag}: unknown option(s) {', '.join(unknown)}; options: {listed}")
    return names


# -- errors at the command line's boundary -------------------------------------------------------------------
def one_line(err: BaseException) -> str:
    """``err`` as one line for the command line: a :class:`~deepgm.errors.ConfigError` as ``--option must
    be ..., got ...``, an OS error with its file (and "the disk is full" for ENOSPC), others their message."""
    if isinstance(err, ConfigError):
        return f"--{err.option.replace('_', '-')} must be {err.expected}, got {err.value!r}"
    if isinstance(err, FileExistsError) and err.filename and Path(err.filename).is_file():
        return f"{err.filename} is a file, expected a folder there"
    if isinstance(err, OSError) and not isinstance(err, DeepGMError) and err.strerror:
        where = f"{err.filename}: " if err.filename else ""
        full = " (the disk is full)" if err.errno == errno.ENOSPC else ""
        return f"{where}{err.strerror}{full}"
    text = " ".join(str(err).split()) or type(err).__name__
    return text if isinstance(err, DeepGMError) else f"{type(err).__name__}: {text}"


def expected_errors() -> tuple[type[BaseException], ...]:
    """What bad input and a hostile disk raise (deepgm's errors, OS errors, unreadable files): the command
    line prints them with :func:`one_line` and exits 2, where anything else is a bug with its traceback."""
    from safetensors import SafetensorError

    return (DeepGMError, OSError, pickle.UnpicklingError, UnicodeDecodeError, tomllib.TOMLDecodeError,
            SafetensorError, EOFError)
