"""Augmentation presets as Keras preprocessing layers (applied in the tf.data pipeline, not in the model).

``classic`` is the chapters' ImageDataGenerator setting (rotation 30°, width/height
shift 0.1, shear 0.2, zoom 0.2, horizontal flip, fill "nearest") rebuilt from
``keras.layers.Random*`` layers, since ImageDataGenerator is deprecated. ``flip`` is
a horizontal flip only; ``none`` turns augmentation off. Layers run in float32
whatever the mixed-precision policy, and are seeded.
"""

from __future__ import annotations

from typing import Any

from featurebench.errors import FeaturebenchError

#: Preset name -> the classic ImageDataGenerator arguments it mirrors (for docs and provenance).
PRESETS: dict[str, dict[str, Any]] = {
    "none": {},
    "flip": {"horizontal_flip": True},
    "classic": {"rotation_range": 30, "width_shift_range": 0.1, "height_shift_range": 0.1,
                "shear_range": 0.2, "zoom_range": 0.2, "horizontal_flip": True, "fill_mode": "nearest"},
}
#: The preset names, in the order error messages list them.
AUGMENT_PRESETS = tuple(PRESETS)


def build_augmenter(preset: str, seed: int = 42) -> Any | None:
    """A ``keras.Sequential`` of random layers for ``preset`` (``None`` for ``none``).

    Call it as ``augmenter(images, training=True)`` on float (B, H, W, 3) batches in 0..255.
    """
    if preset not in PRESETS:
        raise FeaturebenchError(f"augmentation preset {preset!r}: choose one of {', '.join(PRESETS)}")
    if preset == "none":
        return None
    import keras

    layers = keras.layers
    kw = {"dtype": "float32"}
    stack: list[Any] = []
    if preset == "classic":
        fill = {"fill_mode": "nearest", **kw}
        stack = [
            layers.RandomRotation(30 / 360, seed=seed, name="rotation_30deg", **fill),
            layers.RandomTranslation(0.1, 0.1, seed=seed + 1, name="shift_0.1", **fill),
            layers.RandomShear(x_factor=0.2, seed=seed + 2, name="shear_0.2", **fill),
            layers.RandomZoom(0.2, 0.2, seed=seed + 3, name="zoom_0.2", **fill),
        ]
    stack.append(layers.RandomFlip("horizontal", seed=seed + 4, name="horizontal_flip", **kw))
    return keras.Sequential(stack, name=f"augment_{preset}")


__all__ = ["AUGMENT_PRESETS", "PRESETS", "build_augmenter"]
