"""``FeatureExtractor``: a scikit-learn transformer around any featurebench extractor.

It drops into a ``Pipeline`` in front of a classifier. ``transform`` takes image
paths (decoded and resized like ``extract`` does) or an (N, H, W, 3) uint8 array.
Unlike ``extract``, it cannot skip a bad image (rows must line up with ``y``), so an
unreadable path raises an error naming the file and the reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from featurebench.data.decode import DEFAULT_MAX_PIXELS


class FeatureExtractor(TransformerMixin, BaseEstimator):
    """Images -> pretrained CNN features (float32, one row per image).

    Parameters mirror ``featurebench extract``: ``model`` (registry name or model
    file), ``weights`` (``imagenet``, ``none``, or a path), ``layer``, ``pool``,
    ``batch_size``, ``resize`` (``stretch`` or ``center-crop``), ``seed``, ``engine``
    (``openvino`` or ``tensorflow`` for Keras models; None: the default).
    """

    def __init__(self, model: str = "efficientnet_lite0", weights: str = "imagenet", layer: str | None = None,
                 pool: str | None = None, batch_size: int | None = None, resize: str = "stretch",
                 seed: int = 42, max_pixels: int = DEFAULT_MAX_PIXELS, engine: str | None = None):
        self.model = model
        self.weights = weights
        self.layer = layer
        self.pool = pool
        self.batch_size = batch_size
        self.resize = resize
        self.seed = seed
        self.max_pixels = max_pixels
        self.engine = engine

    def fit(self, X: Any = None, y: Any = None) -> "FeatureExtractor":
        """Build the network (no learning happens); sets ``extractor_`` and ``n_features_out_``."""
        from featurebench.extractors import load_extractor

        self.extractor_ = load_extractor(self.model, self.weights, self.layer, self.pool, self.seed,
                                         batch_size=self.batch_size, engine=self.engine)
        self.n_features_out_ = self.extractor_.feature_dim
        return self

    def _images(self, X: Sequence[str | Path] | np.ndarray) -> np.ndarray:
        from featurebench.data.pipeline import DecodeOptions, load_image
        from featurebench.data.decode import SkipImage
        from featurebench.data.resize import resize_image
        from featurebench.errors import FeaturebenchError

        size = self.extractor_.input_size
        if isinstance(X, np.ndarray) and X.ndim == 4:
            return np.stack([resize_image(np.asarray(img, dtype=np.uint8), size, self.resize) for img in X])
        options = DecodeOptions(size, self.resize, self.max_pixels)
        images = []
        for path in X:
            try:
                images.append(load_image(path, options))
            except SkipImage as exc:
                raise FeaturebenchError(f"{path}: {exc.message}") from None
        return np.stack(images)

    def transform(self, X: Sequence[str | Path] | np.ndarray) -> np.ndarray:
        """Features for image paths or an (N, H, W, 3) uint8 array, in batches."""
        if not hasattr(self, "extractor_"):
            self.fit()
        step = self.batch_size or self.extractor_.batch_size
        blocks = [self.extractor_.extract(self._images(X[i:i + step])) for i in range(0, len(X), step)]
        if not blocks:
            return np.zeros((0, self.extractor_.feature_dim), dtype=np.float32)
        return np.concatenate(blocks)

    def __getstate__(self) -> dict[str, Any]:
        # The compiled network is rebuilt on demand instead of being pickled.
        state = self.__dict__.copy()
        state.pop("extractor_", None)
        return state
