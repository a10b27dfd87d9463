"""The extractor contract shared by every backend (Keras, model files, TFLite).

An extractor turns a batch of RGB uint8 images, already resized to
``input_size``, into a float32 ``(batch, feature_dim)`` array. It carries its
own preprocessing so callers cannot mix up one backbone's normalisation with
another's, and a ``provenance`` dict that is written into every feature file.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable

import numpy as np


class Extractor(ABC):
    """Base class: subclasses set the attributes below and implement ``_forward``."""

    #: (height, width) the images must be resized to before ``preprocess``.
    input_size: tuple[int, int]
    #: Number of features per image.
    feature_dim: int
    #: Name of the preprocessing mode (a key of ``preprocessing.PREPROCESSORS``).
    preprocessing: str
    #: The function implementing ``preprocessing``.
    preprocess_fn: Callable[[np.ndarray], np.ndarray]
    #: Suggested batch size for this backbone.
    batch_size: int = 32
    #: One-line notices for the user about how this extractor runs (e.g. a precision the CPU
    #: cannot honour); ``featurebench extract`` prints them before the first batch.
    notices: tuple[str, ...] = ()

    def preprocess(self, images: np.ndarray) -> np.ndarray:
        """Normalise a (B, H, W, 3) RGB uint8 batch the way this backbone expects."""
        return self.preprocess_fn(images)

    @abstractmethod
    def _forward(self, batch: np.ndarray) -> np.ndarray:
        """Run the network on a preprocessed batch; return (B, feature_dim)."""

    def extract(self, images: np.ndarray) -> np.ndarray:
        """Preprocess and run a (B, H, W, 3) uint8 batch; return float32 (B, feature_dim)."""
        return self.extract_prepared(self.prepare(images))

    def prepare(self, images: np.ndarray) -> Any:
        """The first half of :meth:`extract`: preprocess a uint8 batch into the network's input.

        Safe to call from another thread than :meth:`extract_prepared`, so batch k+1 can be
        prepared while the network runs on batch k (``featurebench extract`` does).
        """
        return self.preprocess(images)

    def extract_prepared(self, batch: Any) -> np.ndarray:
        """The second half of :meth:`extract`: run a :meth:`prepare`-d batch; float32 (B, feature_dim)."""
        features = self._forward(batch)
        return np.asarray(features, dtype=np.float32).reshape(len(batch), -1)

    @property
    @abstractmethod
    def provenance(self) -> dict[str, Any]:
        """What produced these features: model, layer, pool, weights identity, versions."""
