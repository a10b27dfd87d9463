"""Input normalisation as built-in Keras layers, so the saved ``.keras`` takes plain 0..255 RGB.

Each layer reproduces a mode of :mod:`featurebench.extractors.preprocessing`
(tested against it) with stock layers only, so the model file loads with Keras
``safe_mode`` and without featurebench installed, and ``featurebench extract
--model run/model.keras`` needs no ``--preprocess``:

- ``caffe``: RGB->BGR and minus the ImageNet BGR means = a frozen 1x1 convolution
  (a permutation kernel, bias = -means);
- ``tf``, ``lite``, ``scale``: ``Rescaling(scale, offset)``;
- ``torch``: ``Normalization(mean, variance)`` on 0..255;
- ``dataset-mean``: the training split's RGB means subtracted (BGR order for caffe-style
  backbones, whose filters expect BGR).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from featurebench.errors import FeaturebenchError

_CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
_TORCH_MEAN = np.array([0.485, 0.456, 0.406]) * 255.0
_TORCH_STD = np.array([0.229, 0.224, 0.225]) * 255.0


def _bgr_minus(means_bgr, name: str) -> Any:
    import keras

    kernel = np.zeros((1, 1, 3, 3), np.float32)
    for out_channel in range(3):
        kernel[0, 0, 2 - out_channel, out_channel] = 1.0
    layer = keras.layers.Conv2D(3, 1, name=name, trainable=False, dtype="float32",
                                kernel_initializer=keras.initializers.Constant(kernel),
                                bias_initializer=keras.initializers.Constant(-np.asarray(means_bgr, np.float32)))
    return layer


def normalization_layer(normalize: str, model_preprocessing: str, means_rgb: np.ndarray | None = None) -> Any | None:
    """The layer for ``normalize`` (``model``, ``dataset-mean``, ``scale``), or ``None`` for 0..255 passthrough.

    ``model_preprocessing`` is the backbone's mode (a key of ``PREPROCESSORS``).
    """
    import keras

    layers = keras.layers
    mode = model_preprocessing if normalize == "model" else normalize
    if mode == "caffe":
        return _bgr_minus(_CAFFE_BGR_MEAN, "normalize_caffe")
    if mode == "tf":
        return layers.Rescaling(1 / 127.5, offset=-1.0, name="normalize_tf", dtype="float32")
    if mode == "lite":
        return layers.Rescaling(1 / 128.0, offset=-127.0 / 128.0, name="normalize_lite", dtype="float32")
    if mode == "scale":
        return layers.Rescaling(1 / 255.0, name="normalize_scale", dtype="float32")
    if mode == "torch":
        return layers.Normalization(mean=_TORCH_MEAN.tolist(), variance=(_TORCH_STD ** 2).tolist(),
                                    name="normalize_torch", dtype="float32")
    if mode == "dataset-mean":
        if means_rgb is None:
            raise ValueError("dataset-mean normalisation needs the training split's RGB means")
        means = np.asarray(means_rgb, np.float32)
        if model_preprocessing == "caffe":
            return _bgr_minus(means[::-1], "normalize_dataset_mean_bgr")
        return layers.Normalization(mean=means.tolist(), variance=[1.0, 1.0, 1.0],
                                    name="normalize_dataset_mean", dtype="float32")
    if mode == "none":
        return None
    raise FeaturebenchError(f"Cannot fine-tune a backbone with preprocessing {mode!r} "
                            "(raw uint8 models are for inference only)")


def describe(normalize: str, model_preprocessing: str) -> str:
    """One line for provenance."""
    from featurebench.extractors.preprocessing import DESCRIPTIONS

    if normalize == "model":
        return f"inside the model: {DESCRIPTIONS.get(model_preprocessing, model_preprocessing)}"
    if normalize == "scale":
        return "inside the model: x/255"
    return "inside the model: minus training-split RGB means (means.json)" + (
        ", BGR order" if model_preprocessing == "caffe" else "")


__all__ = ["describe", "normalization_layer"]
