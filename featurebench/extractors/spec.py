"""Model specs: everything the registry knows about a named backbone."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

POOLS = ("avg", "max", "flatten")


@dataclass(frozen=True)
class ModelSpec:
    """A registered extractor.

    ``builder(weights, include_top)`` returns a Keras model for 224-style RGB
    input of ``input_size``; ``weights`` is ``"imagenet"``, ``None`` (random
    init) or a local file path. ``default_layer`` ``None`` means the last layer
    of the ``include_top=False`` network, pooled with ``default_pool``.
    """

    name: str
    input_size: int
    preprocessing: str
    feature_dim: int
    builder: Callable[..., Any]
    default_layer: str | None = None
    default_pool: str = "avg"
    weights_source: str = "Keras cache / download"
    #: File name Keras caches the no-top ImageNet weights under (for error messages).
    imagenet_cache_file: str | None = None
    #: Returns the local file the "imagenet" weights come from (hashed into provenance);
    #: ``None`` means the Keras cache file above.
    locate_imagenet_weights: Callable[[], str | None] | None = None
    batch_size: int = 32
    #: Named layers of the include_top network worth offering (e.g. VGG fc1/fc2).
    top_layers: tuple[str, ...] = ()
    description: str = ""


def keras_cache_dir() -> Path:
    """Where Keras caches downloaded weights (``$KERAS_HOME/models``, default ``~/.keras/models``)."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"


def imagenet_weights_file(spec: ModelSpec) -> Path | None:
    """The local file a spec's ImageNet weights load from (None where unknown)."""
    if spec.locate_imagenet_weights is not None:
        located = spec.locate_imagenet_weights()
        return Path(located) if located else None
    if spec.imagenet_cache_file:
        return keras_cache_dir() / spec.imagenet_cache_file
    return None
