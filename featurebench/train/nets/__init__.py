"""The classic from-scratch architectures, one file each, and their published training settings.
Imports only errors (and Keras inside the builders); :mod:`featurebench.train` uses it.

:data:`NETS` maps a name to a :class:`NetSpec`: the builder, the published input size, which
architecture options it takes (``filters``, ``hidden``, ``stages``, ``stem``, ``width``, ``l2``)
and the published training recipe (optimizer, learning rate, schedule, batch, epochs,
normalisation, crops), which :class:`featurebench.train.settings.TrainSettings` starts from.
Every builder returns a functional ``keras.Model`` taking normalised float images and ending
in a float32 softmax named ``predictions``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

from featurebench.errors import FeaturebenchError


@dataclass(frozen=True)
class NetSpec:
    """A registered architecture: module (with ``build(size, classes, **options)``), input size, defaults."""

    name: str
    module: str
    input_size: int
    description: str
    options: dict[str, Any]
    recipe: dict[str, Any] = field(default_factory=dict)

    def build(self, size: int, classes: int, normalization: Any | None = None, **options: Any) -> Any:
        """The Keras model for ``size`` x ``size`` RGB input and ``classes`` outputs; ``normalization``
        (a Keras layer) runs first, inside the model."""
        unknown = set(options) - set(self.options)
        if unknown:
            raise FeaturebenchError(f"--net {self.name} does not take {', '.join(sorted(unknown))}; "
                                    f"its options are {', '.join(self.options) or 'none'}")
        builder = import_module(f"featurebench.train.nets.{self.module}").build
        return builder(size, classes, normalization=normalization, **{**self.options, **options})


NETS: dict[str, NetSpec] = {
    "minivggnet": NetSpec(
        "minivggnet", "minivggnet", 64,
        "2 x (CONV-RELU-BN x2, POOL, DO 0.25), FC 512-RELU-BN, DO 0.5 (Flowers-17 chapter: SGD 0.05, batch 32)",
        {"filters": (32, 64), "hidden": 512, "l2": 0.0},
        {"optimizer": "sgd", "lr": 0.05, "momentum": 0.0, "batch_size": 32, "epochs": 100, "schedule": "constant",
         "normalize": "scale", "resize": "center-crop"}),
    "alexnet": NetSpec(
        "alexnet", "alexnet", 227,
        "AlexNet with BN after each activation, DO 0.25 after each pool block, 2 x FC 4096, L2 2e-4 "
        "(Dogs vs Cats chapter: Adam 1e-3, batch 128, 227 patches of 256 images, 10-crop test)",
        {"filters": (96, 256, 384, 384, 256), "hidden": 4096, "l2": 2e-4},
        {"optimizer": "adam", "lr": 1e-3, "batch_size": 128, "epochs": 75, "schedule": "constant",
         "normalize": "dataset-mean", "resize": "center-crop", "patch": True, "ten_crop": True, "load_size": 256}),
    "minigooglenet": NetSpec(
        "minigooglenet", "minigooglenet", 32,
        "conv / inception / downsample modules (CIFAR-10 chapter: SGD 5e-3 momentum 0.9, linear decay, 70 epochs)",
        {"width": 1.0, "l2": 0.0},
        {"optimizer": "sgd", "lr": 5e-3, "momentum": 0.9, "batch_size": 64, "epochs": 70, "schedule": "poly",
         "power": 1.0, "normalize": "dataset-mean", "resize": "stretch"}),
    "resnet": NetSpec(
        "resnet", "resnet", 32,
        "pre-activation bottleneck ResNet, BN eps 2e-5 / momentum 0.9 (CIFAR-10: stages 9,9,9, filters "
        "64,64,128,256, L2 5e-4, SGD 0.1 momentum 0.9, linear decay, 100 epochs, batch 128)",
        {"stages": (9, 9, 9), "filters": (64, 64, 128, 256), "stem": "cifar", "l2": 5e-4},
        {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "batch_size": 128, "epochs": 100, "schedule": "poly",
         "power": 1.0, "normalize": "dataset-mean", "resize": "stretch"}),
}


def get_net(name: str) -> NetSpec:
    """The :class:`NetSpec` called ``name``; a clear error listing the choices otherwise."""
    if name not in NETS:
        raise FeaturebenchError(f"--net {name!r}: choose one of {', '.join(NETS)}")
    return NETS[name]


def build_net(name: str, size: int | None = None, classes: int = 10, **options: Any) -> Any:
    """Build the network ``name`` at ``size`` (default: its published input size)."""
    spec = get_net(name)
    return spec.build(size or spec.input_size, classes, **options)


def regularizer(l2: float) -> Any:
    """A Keras L2 kernel regularizer, or None for 0."""
    import keras

    return keras.regularizers.L2(l2) if l2 else None


def softmax_output(x: Any, classes: int, l2: float = 0.0) -> Any:
    """``Dense(classes)`` + a float32 softmax named ``predictions`` (float32 under mixed precision too)."""
    import keras

    x = keras.layers.Dense(classes, kernel_regularizer=regularizer(l2), name="logits")(x)
    return keras.layers.Activation("softmax", dtype="float32", name="predictions")(x)


def image_input(size: int, normalization: Any | None = None) -> tuple[Any, Any]:
    """``(inputs, x)``: the 0..255 RGB input and it after ``normalization`` (a Keras layer, or None)."""
    import keras

    inputs = keras.Input((size, size, 3), name="image", dtype="float32")
    return inputs, (normalization(inputs) if normalization is not None else inputs)


__all__ = ["NETS", "NetSpec", "build_net", "get_net", "image_input", "regularizer", "softmax_output"]
