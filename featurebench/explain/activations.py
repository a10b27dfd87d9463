"""What a layer sees: a grid of its feature maps for one image, and its filters' patterns.

Filter patterns are found by gradient ascent (Erhan et al. 2009; Chollet, *Deep Learning with
Python*, ch. 9): start from a grey image with a little noise in the model's input space and
follow the normalised gradient of the filter's mean activation (borders left out).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from featurebench.explain.overlay import grid, to_uint8


def layer_model(model: Any, layer: str) -> Any:
    """``model`` cut at ``layer`` (its output must be a spatial map)."""
    from featurebench.explain.gradcam import cut_model

    return cut_model(model, layer)


def activation_grid(model: Any, image: np.ndarray, preprocess: Callable[[np.ndarray], np.ndarray], layer: str,
                    max_maps: int = 64, tile: int = 64) -> tuple[np.ndarray, int]:
    """A grid image of the first ``max_maps`` feature maps of ``layer`` for one uint8 image
    (each map scaled min-max on its own, upsampled to ``tile`` pixels). Returns it and the channel count."""
    from PIL import Image

    cut = layer_model(model, layer)
    maps = np.asarray(cut(preprocess(image[None].astype(np.float32)), training=False), dtype=np.float32)[0]
    channels = maps.shape[-1]
    tiles = [np.asarray(Image.fromarray(to_uint8(maps[..., k])).resize((tile, tile), Image.NEAREST))
             for k in range(min(channels, max_maps))]
    return grid(np.stack(tiles)), channels


def filter_patterns(model: Any, layer: str, filters: int = 16, steps: int = 30, step_size: float = 0.1,
                    seed: int = 0, tile: int = 96) -> np.ndarray:
    """A grid of the input patterns that most excite the first ``filters`` channels of ``layer``."""
    import tensorflow as tf
    from PIL import Image

    cut = layer_model(model, layer)
    channels = int(cut.output.shape[-1])
    n = min(filters, channels)
    height, width = (int(d) for d in model.input_shape[1:3])
    rng = np.random.default_rng(seed)
    x = tf.Variable(rng.normal(0.0, 0.1, (n, height, width, 3)).astype(np.float32))
    pick = tf.one_hot(np.arange(n), channels)[:, None, None, :]
    for _ in range(steps):
        with tf.GradientTape() as tape:
            act = tf.cast(cut(x, training=False), tf.float32)
            h, w = act.shape[1], act.shape[2]
            inner = act[:, h // 8:max(h // 8 + 1, h - h // 8), w // 8:max(w // 8 + 1, w - w // 8), :]
            loss = tf.reduce_sum(tf.reduce_mean(inner * pick, axis=(1, 2, 3)))
        grads = tape.gradient(loss, x)
        norm = tf.sqrt(tf.reduce_mean(tf.square(grads), axis=(1, 2, 3), keepdims=True)) + 1e-8
        x.assign_add(step_size * grads / norm)
    images = x.numpy()
    tiles = []
    for img in images:
        low, high = np.percentile(img, [1, 99])
        scaled = np.uint8(np.clip((img - low) / max(high - low, 1e-8), 0, 1) * 255)
        tiles.append(np.asarray(Image.fromarray(scaled).resize((tile, tile), Image.BILINEAR)))
    return grid(np.stack(tiles))
