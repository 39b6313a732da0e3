"""The model zoo's registry: a name, a one-line summary, a config dataclass and a builder per model.

``deepgm list`` shows the registry; ``deepgm train NAME`` builds ``NAME`` from its config (each field is
a CLI option) and the data's description, a :class:`deepgm.data.DataInfo` (re-exported here because every
builder's signature names it). An entry's ``build`` first checks the config's values against their rules
(:func:`deepgm.zoo.options.check_config`), and :func:`register` refuses a config whose defaults break them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from deepgm.data.prepared import DataInfo
from deepgm.errors import ConfigError
from deepgm.zoo.options import check_config

__all__ = ["DataInfo", "ZooEntry", "register", "get", "names", "REGISTRY"]


@dataclass(frozen=True)
class ZooEntry:
    """One registered model."""

    name: str
    summary: str
    config: type
    build: Callable[[Any, DataInfo], Any]
    needs_labels: bool = False
    # prepare(model, config, splits, transform) -> training tensors: for models whose batches need more
    # than the training split (e.g. M2's labelled subset beside the unlabelled images)
    prepare: Callable[..., dict[str, Any]] | None = None
    # how the CLI feeds MNIST-like images by default: "binary" (dynamically binarised, for Bernoulli
    # likelihoods) or "grey" (the grey levels: flows dequantise them, GANs generate them)
    pixels: Literal["binary", "grey"] = "binary"
    sequences: bool = False  # trains on padded sequences ({"x": (N, T, ...), "mask": (N, T)}), not on examples
    # the data a model of its own kind of data is built for when none are given (GQN's scenes); None: below
    example: DataInfo | None = None

    @property
    def example_data(self) -> DataInfo:
        """The data the model is built for when none are given (``deepgm latex``): its ``example``, else the
        8×8 digits, or 88-key piano rolls for a model of sequences."""
        if self.example is not None:
            return self.example
        if self.sequences:
            return DataInfo("jsb", (88,), None, binary=True, sequence=True)
        return DataInfo("digits", (64,), 10)


REGISTRY: dict[str, ZooEntry] = {}


def register(name: str, summary: str, config: type, needs_labels: bool = False,
             prepare: Callable[..., dict[str, Any]] | None = None, pixels: Literal["binary", "grey"] = "binary",
             sequences: bool = False, example: DataInfo | None = None,
             ) -> Callable[[Callable[[Any, DataInfo], Any]], Callable[[Any, DataInfo], Any]]:
    """Decorator: register ``build(config, data_info) -> model`` under ``name``; ``sequences=True`` for a
    model of sequences (its builder is refused data that are not, and the others sequence data);
    ``example``: the data ``deepgm latex`` builds it for, for a model of its own kind of data."""

    def deco(build: Callable[[Any, DataInfo], Any]) -> Callable[[Any, DataInfo], Any]:
        if name in REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        try:
            check_config(config())
        except ConfigError as err:
            raise ValueError(f"model {name!r}: the default of {config.__name__}.{err.option} breaks its rule "
                             f"({err}); declare the field's rule with deepgm.zoo.options.option") from None

        @functools.wraps(build)
        def checked(cfg: Any, data: DataInfo) -> Any:
            check_config(cfg)
            if bool(getattr(data, "sequence", False)) != sequences:
                from deepgm.data import SEQUENCE_DATASETS

                want = f"a sequence dataset ({', '.join(SEQUENCE_DATASETS)})" if sequences else \
                    f"a dataset of examples, not of sequences (model {name!r} does not model sequences)"
                raise ConfigError("DataConfig", "dataset", f"{want} for model {name!r}", data.name)
            return build(cfg, data)

        REGISTRY[name] = ZooEntry(name, summary, config, checked, needs_labels, prepare, pixels, sequences, example)
        return build

    return deco


def names() -> list[str]:
    """The registered model names, sorted."""
    return sorted(REGISTRY)


def get(name: str) -> ZooEntry:
    """The entry for ``name``; a ``KeyError`` listing the known names otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(names())}") from None
