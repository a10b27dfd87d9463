"""Class probabilities for a split: the centre crop, or the 10-crop average (classic test-time crops)."""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from featurebench.training.preprocess import CenterCrop, ten_crops


def forward_fn(model: Any) -> Callable[[np.ndarray], np.ndarray]:
    """A compiled inference call (``training=False``) returning float32 probabilities."""
    import tensorflow as tf

    call = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    return lambda batch: np.asarray(call(tf.convert_to_tensor(batch, tf.float32)), dtype=np.float32)


def predict_proba(forward: Callable[[np.ndarray], np.ndarray], images: np.ndarray, image_size: int,
                  ten_crop: bool = False) -> np.ndarray:
    """Probabilities for a uint8 batch: centre crop, or the mean over the 10 crops."""
    if not ten_crop:
        return forward(CenterCrop(image_size)(images).astype(np.float32))
    crops = ten_crops(images, image_size)
    return np.mean([forward(crop.astype(np.float32)) for crop in crops], axis=0)


def predict_split(model: Any, source: Any, split: str, image_size: int, batch_size: int = 32,
                  ten_crop: bool = False) -> tuple[np.ndarray, np.ndarray, float]:
    """``(labels, probabilities, seconds)`` over ``split`` in stored order, one batch in memory at a time."""
    forward = forward_fn(model)
    labels, probs = [], []
    started = time.perf_counter()
    for images, batch_labels in source.iter_split(split, batch_size):
        probs.append(predict_proba(forward, images, image_size, ten_crop))
        labels.append(batch_labels)
    seconds = time.perf_counter() - started
    n_classes = int(model.output_shape[-1])
    if not probs:
        return np.zeros(0, np.int64), np.zeros((0, n_classes), np.float32), seconds
    return np.concatenate(labels).astype(np.int64), np.concatenate(probs), seconds


__all__ = ["forward_fn", "predict_proba", "predict_split"]
