"""Pre-activation bottleneck ResNet (the classic CIFAR-10 / Tiny ImageNet chapters').

Residual module (K filters): BN-RELU-CONV 1x1 (K/4) - BN-RELU-CONV 3x3 (K/4, stride) - BN-RELU-CONV 1x1 (K),
no biases, L2 on every kernel; the first module of a stage reduces with a strided 1x1 conv of
the pre-activated input as shortcut. BatchNorm: epsilon 2e-5, momentum 0.9. Stems: ``cifar``
(BN, CONV filters[0]@3x3) and ``tiny-imagenet`` (BN, CONV 5x5, BN, RELU, zero-pad, MAX POOL 3x3/2).
Stage ``i`` has ``stages[i]`` modules of ``filters[i + 1]`` filters (stride 1 for the first stage,
2 after). Then BN-RELU, global average pool (the published 8x8 pool at 32/64 input), softmax.
"""

from __future__ import annotations

from typing import Any

from featurebench.errors import FeaturebenchError
from featurebench.train.nets import image_input, regularizer, softmax_output

STEMS = ("cifar", "tiny-imagenet")
BN_EPS, BN_MOMENTUM = 2e-5, 0.9


def build(size: int, classes: int, normalization: Any | None = None, stages: tuple[int, ...] = (9, 9, 9),
          filters: tuple[int, ...] = (64, 64, 128, 256), stem: str = "cifar", l2: float = 5e-4) -> Any:
    """The ResNet for ``size`` x ``size`` x 3 input; ``len(filters) == len(stages) + 1``."""
    import keras

    L = keras.layers
    if len(filters) != len(stages) + 1:
        raise FeaturebenchError(f"--filters for resnet: one more number than --stages ({len(stages)} stages -> "
                                f"{len(stages) + 1} filters), got {list(filters)}")
    if stem not in STEMS:
        raise FeaturebenchError(f"--stem {stem!r}: choose one of {', '.join(STEMS)}")
    reg = regularizer(l2)
    bn = lambda name: L.BatchNormalization(epsilon=BN_EPS, momentum=BN_MOMENTUM, name=name)  # noqa: E731

    def conv(k, kernel, name, strides=1):
        return L.Conv2D(int(k), kernel, strides=strides, padding="same", use_bias=False, kernel_regularizer=reg,
                        name=name)

    def residual(x, k, strides, reduce, name):
        act1 = L.Activation("relu", name=f"{name}_relu1")(bn(f"{name}_bn1")(x))
        y = conv(max(1, k // 4), 1, f"{name}_conv1")(act1)
        y = L.Activation("relu", name=f"{name}_relu2")(bn(f"{name}_bn2")(y))
        y = conv(max(1, k // 4), 3, f"{name}_conv2", strides)(y)
        y = L.Activation("relu", name=f"{name}_relu3")(bn(f"{name}_bn3")(y))
        y = conv(k, 1, f"{name}_conv3")(y)
        shortcut = conv(k, 1, f"{name}_shortcut", strides)(act1) if reduce else x
        return L.Add(name=f"{name}_add")([y, shortcut])

    inputs, x = image_input(size, normalization)
    x = bn("stem_bn0")(x)
    if stem == "cifar":
        x = conv(filters[0], 3, "stem_conv")(x)
    else:
        x = conv(filters[0], 5, "stem_conv")(x)
        x = L.Activation("relu", name="stem_relu")(bn("stem_bn1")(x))
        x = L.ZeroPadding2D(1, name="stem_pad")(x)
        x = L.MaxPooling2D(3, strides=2, name="stem_pool")(x)
    for i, count in enumerate(stages):
        k = int(filters[i + 1])
        x = residual(x, k, 1 if i == 0 else 2, True, f"stage{i + 1}_block1")
        for j in range(1, int(count)):
            x = residual(x, k, 1, False, f"stage{i + 1}_block{j + 1}")
    x = L.Activation("relu", name="final_relu")(bn("final_bn")(x))
    x = L.GlobalAveragePooling2D(name="avg_pool")(x)
    return keras.Model(inputs, softmax_output(x, classes, l2), name="resnet")
