"""MiniVGGNet: 2 x (CONV-RELU-BN, CONV-RELU-BN, POOL 2x2, DROPOUT 0.25), FC-RELU-BN, DROPOUT 0.5, softmax.

3x3 "same" convolutions with ``filters[i]`` channels in block ``i`` (published 32, 64) and
``hidden`` fully connected units (published 512). At 64x64 with 17 classes: 8,466,225 parameters.
"""

from __future__ import annotations

from typing import Any

from featurebench.train.nets import image_input, regularizer, softmax_output


def build(size: int, classes: int, normalization: Any | None = None, filters: tuple[int, ...] = (32, 64),
          hidden: int = 512, l2: float = 0.0) -> Any:
    """MiniVGGNet for ``size`` x ``size`` x 3 input."""
    import keras

    L = keras.layers
    reg = regularizer(l2)
    inputs, x = image_input(size, normalization)
    for block, k in enumerate(filters, start=1):
        for i in (1, 2):
            x = L.Conv2D(int(k), 3, padding="same", kernel_regularizer=reg, name=f"block{block}_conv{i}")(x)
            x = L.Activation("relu", name=f"block{block}_relu{i}")(x)
            x = L.BatchNormalization(name=f"block{block}_bn{i}")(x)
        x = L.MaxPooling2D(2, name=f"block{block}_pool")(x)
        x = L.Dropout(0.25, name=f"block{block}_dropout")(x)
    x = L.Flatten(name="flatten")(x)
    x = L.Dense(int(hidden), kernel_regularizer=reg, name="fc")(x)
    x = L.Activation("relu", name="fc_relu")(x)
    x = L.BatchNormalization(name="fc_bn")(x)
    x = L.Dropout(0.5, name="fc_dropout")(x)
    return keras.Model(inputs, softmax_output(x, classes, l2), name="minivggnet")
