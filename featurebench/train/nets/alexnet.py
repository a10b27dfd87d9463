"""AlexNet as the classic Dogs vs Cats chapter builds it (227x227 input, not 224).

Block 1: CONV 96@11x11 stride 4 - RELU - BN - POOL 3x3/2 - DROPOUT 0.25; block 2: CONV 256@5x5 -
RELU - BN - POOL - DO 0.25; block 3: 3 x (CONV 3x3 - RELU - BN) with 384, 384, 256 filters - POOL -
DO 0.25; then 2 x (FC 4096 - RELU - BN - DO 0.5) and softmax; L2 2e-4 on every kernel. Convolutions
are "same" padded, so 227 -> 57 -> 28 -> 13 -> 6 (6x6x256 = 9,216 features into the first FC).
"""

from __future__ import annotations

from typing import Any

from featurebench.train.nets import image_input, regularizer, softmax_output


def build(size: int, classes: int, normalization: Any | None = None,
          filters: tuple[int, ...] = (96, 256, 384, 384, 256), hidden: int = 4096, l2: float = 2e-4) -> Any:
    """AlexNet for ``size`` x ``size`` x 3 input; ``filters`` are the five convolutions' channels."""
    import keras

    L = keras.layers
    if len(filters) != 5:
        from featurebench.errors import FeaturebenchError

        raise FeaturebenchError(f"--filters for alexnet: 5 numbers (published 96,256,384,384,256), got {filters}")
    reg = regularizer(l2)
    inputs, x = image_input(size, normalization)

    def conv(x, k, kernel, name, strides=1):
        x = L.Conv2D(int(k), kernel, strides=strides, padding="same", kernel_regularizer=reg, name=name)(x)
        x = L.Activation("relu", name=f"{name}_relu")(x)
        return L.BatchNormalization(name=f"{name}_bn")(x)

    def pool(x, block):
        x = L.MaxPooling2D(3, strides=2, name=f"block{block}_pool")(x)
        return L.Dropout(0.25, name=f"block{block}_dropout")(x)

    x = pool(conv(x, filters[0], 11, "conv1", strides=4), 1)
    x = pool(conv(x, filters[1], 5, "conv2"), 2)
    for i, k in enumerate(filters[2:], start=3):
        x = conv(x, k, 3, f"conv{i}")
    x = pool(x, 3)
    x = L.Flatten(name="flatten")(x)
    for i in (1, 2):
        x = L.Dense(int(hidden), kernel_regularizer=reg, name=f"fc{i}")(x)
        x = L.Activation("relu", name=f"fc{i}_relu")(x)
        x = L.BatchNormalization(name=f"fc{i}_bn")(x)
        x = L.Dropout(0.5, name=f"fc{i}_dropout")(x)
    return keras.Model(inputs, softmax_output(x, classes, l2), name="alexnet")
