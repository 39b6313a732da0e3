"""The model zoo's registry: a name, a one-line summary, a config dataclass and a builder per model.

``deepgm list`` shows the registry; ``deepgm train NAME`` builds ``NAME`` from its config (each field is
a CLI option) and the data's description, a :class:`deepgm.data.DataInfo` (re-exported here because every
builder's signature names it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from deepgm.data.prepared import DataInfo

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


REGISTRY: dict[str, ZooEntry] = {}


def register(name: str, summary: str, config: type, needs_labels: bool = False,
             prepare: Callable[..., dict[str, Any]] | None = None, pixels: Literal["binary", "grey"] = "binary"
             ) -> Callable[[Callable[[Any, DataInfo], Any]], Callable[[Any, DataInfo], Any]]:
    """Decorator: register ``build(config, data_info) -> model`` under ``name``."""

    def deco(build: Callable[[Any, DataInfo], Any]) -> Callable[[Any, DataInfo], Any]:
        if name in REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        REGISTRY[name] = ZooEntry(name, summary, config, build, needs_labels, prepare, pixels)
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
