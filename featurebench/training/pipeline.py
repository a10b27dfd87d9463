"""tf.data input pipelines over an image source (``build-images`` file or folder), one batch at a time.

Per batch: read uint8 images at the source's size -> crop to the network input
(random "patch" crop for training when ``patch``, else the centre) -> float32 ->
augmentation layers (training only). Normalisation happens inside the model (see
:mod:`featurebench.training.normalize`), so the saved ``.keras`` takes 0..255 RGB.
The training order is reshuffled every epoch with ``(seed, epoch)``, so a resumed
run sees the same batches as an uninterrupted one.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Iterator

import numpy as np

from featurebench.errors import FeaturebenchError
from featurebench.training.preprocess import CenterCrop, PatchCrop


def check_sizes(source_size: tuple[int, int], image_size: int) -> None:
    if source_size[0] < image_size or source_size[1] < image_size:
        raise FeaturebenchError(
            f"The images are {source_size[0]}x{source_size[1]} but the network input is {image_size}; "
            f"rebuild the image file with `featurebench build-images --size {image_size}` (or larger, for crops)."
        )


def iter_cropped(source: Any, split: str, batch_size: int, image_size: int, training: bool, seed: int,
                 epoch: int, patch: bool) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(uint8 images at image_size, labels)`` batches of one epoch over ``split``."""
    order = (seed, epoch) if training else None
    crop = PatchCrop(image_size, np.random.default_rng([seed, epoch, 1])) if training and patch else CenterCrop(image_size)
    for images, labels in source.iter_split(split, batch_size, order_seed=order):
        yield crop(images), labels


def make_dataset(source: Any, split: str, batch_size: int, image_size: int, training: bool = False,
                 seed: int = 42, augment: Any | None = None, patch: bool = False, start_epoch: int = 0):
    """A ``tf.data.Dataset`` of ``(float32 images 0..255, int labels)``; each iteration is one epoch
    (Keras re-iterates it every epoch), numbered from ``start_epoch``."""
    import tensorflow as tf

    check_sizes(source.image_size, image_size)
    epochs = itertools.count(start_epoch)

    def generate():
        yield from iter_cropped(source, split, batch_size, image_size, training, seed, next(epochs), patch)

    spec = (tf.TensorSpec((None, image_size, image_size, 3), tf.uint8), tf.TensorSpec((None,), tf.int64))
    # A known length lets Keras count steps exactly (with an unknown one it runs a phantom
    # step per epoch that still advances the optimizer's iteration counter).
    batches = math.ceil(source.count(split) / batch_size)
    dataset = tf.data.Dataset.from_generator(generate, output_signature=spec)
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(batches))
    dataset = dataset.map(lambda x, y: (tf.cast(x, tf.float32), y))
    if training and augment is not None:
        # Sequential map: a parallel one would draw the random transforms in a thread-dependent order.
        dataset = dataset.map(lambda x, y: (augment(x, training=True), y))
    return dataset.prefetch(2)


__all__ = ["check_sizes", "iter_cropped", "make_dataset"]
