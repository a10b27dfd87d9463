"""MiniGoogLeNet (the CIFAR-10 chapter's): conv, inception and downsample modules.

- conv module: CONV kxk - BN - RELU;
- inception module: a 1x1 conv module and a 3x3 conv module side by side, concatenated;
- downsample module: a 3x3/2 "valid" conv module beside a 3x3/2 max pool, concatenated.

Stem conv 96@3x3; inception (32,32), (32,48); downsample 80; inception (112,48), (96,64), (80,80),
(48,96); downsample 96; inception (176,160) x 2; global average pool (the published 7x7 pool at
32x32 input); dropout 0.5; softmax. ``width`` scales every filter count (tests use small widths).
"""

from __future__ import annotations

from typing import Any

from featurebench.train.nets import image_input, regularizer, softmax_output

_PLAN = (("inception", 32, 32), ("inception", 32, 48), ("downsample", 80),
         ("inception", 112, 48), ("inception", 96, 64), ("inception", 80, 80), ("inception", 48, 96),
         ("downsample", 96), ("inception", 176, 160), ("inception", 176, 160))


def build(size: int, classes: int, normalization: Any | None = None, width: float = 1.0,
          l2: float = 0.0) -> Any:
    """MiniGoogLeNet for ``size`` x ``size`` x 3 input."""
    import keras

    L = keras.layers
    reg = regularizer(l2)
    scale = lambda k: max(1, round(k * width))  # noqa: E731
    counter = iter(range(1, 10_000))

    def conv(x, k, kernel, strides=1, padding="same"):
        name = f"conv{next(counter)}"
        x = L.Conv2D(scale(k), kernel, strides=strides, padding=padding, kernel_regularizer=reg, name=name)(x)
        x = L.BatchNormalization(name=f"{name}_bn")(x)
        return L.Activation("relu", name=f"{name}_relu")(x)

    inputs, x = image_input(size, normalization)
    x = conv(x, 96, 3)
    for i, (kind, *ks) in enumerate(_PLAN, start=1):
        if kind == "inception":
            x = L.Concatenate(name=f"inception{i}")([conv(x, ks[0], 1), conv(x, ks[1], 3)])
        else:
            pooled = L.MaxPooling2D(3, strides=2, name=f"downsample{i}_pool")(x)
            x = L.Concatenate(name=f"downsample{i}")([conv(x, ks[0], 3, strides=2, padding="valid"), pooled])
    x = L.GlobalAveragePooling2D(name="avg_pool")(x)
    x = L.Dropout(0.5, name="dropout")(x)
    return keras.Model(inputs, softmax_output(x, classes, l2), name="minigooglenet")
