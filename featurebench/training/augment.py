"""Augmentation presets for training (``--augment``), applied to training batches only.

``classic`` is the chapters' ImageDataGenerator setting (rotation 30°, width/height
shift 0.1, shear 0.2, zoom 0.2, horizontal flip, fill "nearest") with ImageDataGenerator's
own semantics, since ImageDataGenerator is deprecated: one random affine per image, composed
and centred as ``keras_preprocessing``'s ``apply_affine_transform`` does it (rotation, shift,
shear, zoom; one bilinear resampling), then the flip. Two of its arguments do not mean what
Keras 3's ``Random*`` layers with the same numbers do: ``shear_range`` is an angle in
**degrees** (0.2° is a slant of 0.35% of the image; ``RandomShear(0.2)`` slants by up to 20%),
and ``zoom_range=0.2`` draws the row and column scale factors independently from [0.8, 1.2].
Stacking four ``Random*`` layers would also resample the image four times. ``flip`` is a
horizontal flip only; ``none`` turns augmentation off. Layers run in float32 whatever the
mixed-precision policy, and are seeded.
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
        stack = [_classic_affine_layer(seed=seed, name="classic_affine", **kw)]
    stack.append(layers.RandomFlip("horizontal", seed=seed + 4, name="horizontal_flip", **kw))
    return keras.Sequential(stack, name=f"augment_{preset}")


def affine_matrices(theta_deg: Any, tx: Any, ty: Any, shear_deg: Any, zx: Any, zy: Any, height: Any, width: Any,
                    ops: Any = None) -> Any:
    """ImageDataGenerator's (B, 3, 3) output-to-input matrices in (row, column) pixel coordinates.

    ``rotation @ shift @ shear @ zoom``, re-centred on ``(height / 2 + 0.5, width / 2 + 0.5)`` as
    ``transform_matrix_offset_center`` does; ``tx`` shifts rows, ``ty`` columns (in pixels). ``ops``
    is ``numpy`` (default) or ``keras.ops``, so the same code serves the layer and its test;
    ``height`` and ``width`` are numbers or float tensors.
    """
    if ops is None:
        import numpy as ops
    theta, shear = ops.deg2rad(theta_deg), ops.deg2rad(shear_deg)
    one, zero = ops.ones_like(theta), ops.zeros_like(theta)

    def matrix(*rows: Any) -> Any:
        return ops.stack([ops.stack(row, axis=-1) for row in rows], axis=-2)

    rotation = matrix((ops.cos(theta), -ops.sin(theta), zero), (ops.sin(theta), ops.cos(theta), zero),
                      (zero, zero, one))
    shift = matrix((one, zero, tx), (zero, one, ty), (zero, zero, one))
    shearing = matrix((one, -ops.sin(shear), zero), (zero, ops.cos(shear), zero), (zero, zero, one))
    zoom = matrix((zx, zero, zero), (zero, zy, zero), (zero, zero, one))
    o_row, o_col = one * (height / 2 + 0.5), one * (width / 2 + 0.5)
    to_centre = matrix((one, zero, o_row), (zero, one, o_col), (zero, zero, one))
    from_centre = matrix((one, zero, -o_row), (zero, one, -o_col), (zero, zero, one))
    composed = ops.matmul(ops.matmul(ops.matmul(rotation, shift), shearing), zoom)
    return ops.matmul(ops.matmul(to_centre, composed), from_centre)


def _classic_affine_layer(seed: int, rotation: float = 30.0, shift: float = 0.1, shear: float = 0.2,
                          zoom: float = 0.2, **kwargs: Any) -> Any:
    """A Keras layer drawing one ImageDataGenerator-style affine per image (see the module docstring)."""
    import keras

    class ClassicAffine(keras.layers.Layer):
        """Random rotation, shift, shear (degrees) and per-axis zoom, one bilinear resampling, nearest fill."""

        def __init__(self, **layer_kwargs: Any):
            super().__init__(**layer_kwargs)
            self.generator = keras.random.SeedGenerator(seed)
            self.ranges = {"rotation": rotation, "shift": shift, "shear": shear, "zoom": zoom}

        def call(self, images: Any, training: bool = True) -> Any:
            if not training:
                return images
            ops = keras.ops
            batch, height, width = ops.shape(images)[0], ops.shape(images)[1], ops.shape(images)[2]
            u = keras.random.uniform((batch, 6), -1.0, 1.0, seed=self.generator)
            h, w = ops.cast(height, "float32"), ops.cast(width, "float32")
            m = affine_matrices(rotation * u[:, 0], shift * h * u[:, 1], shift * w * u[:, 2], shear * u[:, 3],
                                1 + zoom * u[:, 4], 1 + zoom * u[:, 5], h, w, ops=ops)
            return warp_affine(images, m)

    return ClassicAffine(**kwargs)


def warp_affine(images: Any, matrices: Any) -> Any:
    """Resample (B, H, W, C) ``images`` once through (B, 3, 3) (row, column) output-to-input matrices.

    Bilinear, edges filled with the nearest pixel: ``scipy.ndimage.affine_transform(order=1,
    mode="nearest")`` per channel, as ImageDataGenerator calls it.
    """
    from keras import ops

    m = ops.convert_to_tensor(matrices, dtype="float32")
    zero = ops.zeros_like(m[:, 0, 0])
    # keras' transform maps output (x = column, y = row) to input: swap the row/column roles.
    transform = ops.stack([m[:, 1, 1], m[:, 1, 0], m[:, 1, 2], m[:, 0, 1], m[:, 0, 0], m[:, 0, 2], zero, zero],
                          axis=1)
    return ops.image.affine_transform(images, transform, interpolation="bilinear", fill_mode="nearest")


__all__ = ["AUGMENT_PRESETS", "PRESETS", "affine_matrices", "build_augmenter", "warp_affine"]
