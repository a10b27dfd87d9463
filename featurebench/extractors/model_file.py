"""User model files as extractors: ``.keras``/``.h5`` (Keras), SavedModel folders, ``.tflite``, ``.onnx``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from featurebench.data.resize import check_input_size
from featurebench.errors import FeaturebenchError
from featurebench.extractors.base import Extractor
from featurebench.extractors.hashing import file_provenance
from featurebench.extractors.keras_backend import (DEFAULT_ENGINE, KerasExtractor, feature_model,
                                                   framework_versions)
from featurebench.extractors.preprocessing import DESCRIPTIONS, get_preprocessor

MODEL_FILE_SUFFIXES = (".keras", ".h5", ".hdf5", ".tflite", ".onnx")


def looks_like_model_file(model: str) -> bool:
    """True when ``model`` names a model file or SavedModel folder rather than a registry name."""
    path = Path(model).expanduser()
    return path.suffix.lower() in MODEL_FILE_SUFFIXES or (path.is_dir() and (path / "saved_model.pb").exists())


def load_keras_file(path: Path, layer: str | None, pool: str | None, preprocess: str,
                    unsafe: bool = False, batch_size: int = 32, engine: str = DEFAULT_ENGINE,
                    precision: str = "fp32") -> KerasExtractor:
    """Load a whole Keras model file; Lambda layers need ``unsafe`` (Keras safe_mode).
    ``precision``: fp32, or int8 (OpenVINO; quantised by :mod:`featurebench.extractors.int8`)."""
    import keras

    try:
        base = keras.models.load_model(path, compile=False, safe_mode=not unsafe)
    except ValueError as exc:
        if "safe_mode" in str(exc) or "Lambda" in str(exc):
            raise FeaturebenchError(
                f"{path} contains a Lambda layer, which can run arbitrary code when loaded. "
                "Only if you trust the file, pass --unsafe-model to load it."
            ) from None
        raise FeaturebenchError(f"Could not load Keras model {path}: {exc}") from None
    except Exception as exc:  # noqa: BLE001
        raise FeaturebenchError(f"Could not load Keras model {path} ({type(exc).__name__}: {exc})") from None
    model, layer_name, pool_used = feature_model(base, layer, pool)
    provenance = {**file_provenance(path, "keras-file"), "layer": layer_name, "pool": pool_used}
    return KerasExtractor(model, preprocess, provenance, batch_size, engine, precision)


class SavedModelExtractor(Extractor):
    """A TensorFlow SavedModel's serving signature; ``layer`` picks one of its outputs."""

    def __init__(self, path: Path, layer: str | None, preprocess: str, batch_size: int = 32):
        import tensorflow as tf

        loaded = tf.saved_model.load(str(path))
        if "serving_default" not in loaded.signatures:
            raise FeaturebenchError(f"SavedModel {path} has no serving_default signature to call.")
        self._loaded = loaded
        self._fn = loaded.signatures["serving_default"]
        (self._input_name, spec), = self._fn.structured_input_signature[1].items()
        outputs = sorted(self._fn.structured_outputs)
        if layer is None and len(outputs) > 1:
            raise FeaturebenchError(f"SavedModel {path} has several outputs ({', '.join(outputs)}); pick one with --layer.")
        self._output = layer or outputs[0]
        if self._output not in outputs:
            raise FeaturebenchError(f"SavedModel {path} has no output {layer!r}; outputs: {', '.join(outputs)}")
        height, width = spec.shape[1], spec.shape[2]
        if height is None or width is None:
            raise FeaturebenchError(f"SavedModel {path} does not fix its input size; re-export it with a fixed size.")
        self.input_size = (int(height), int(width))
        check_input_size(*self.input_size, str(path))
        self._dtype = spec.dtype
        self.preprocessing = preprocess
        self.preprocess_fn = get_preprocessor(preprocess)
        self.batch_size = batch_size
        self.feature_dim = int(np.prod(self._fn.structured_outputs[self._output].shape[1:]))
        self._provenance = {**file_provenance(path, "savedmodel"), "layer": self._output, "pool": "flatten",
                            "input_size": list(self.input_size), "feature_dim": self.feature_dim,
                            "preprocessing": preprocess,
                            "preprocessing_description": DESCRIPTIONS.get(preprocess, preprocess),
                            "backend": "tf-savedmodel", **framework_versions()}

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        import tensorflow as tf

        result = self._fn(**{self._input_name: tf.constant(batch, dtype=self._dtype)})
        return result[self._output].numpy().reshape(len(batch), -1)

    @property
    def provenance(self) -> dict[str, Any]:
        return dict(self._provenance)


def load_model_file(model: str, layer: str | None = None, pool: str | None = None,
                    preprocess: str | None = None, unsafe: bool = False, batch_size: int = 32,
                    engine: str | None = None, precision: str = "fp32") -> Extractor:
    """Open a model file as an extractor. ``preprocess`` defaults to ``none`` (0..255 float),
    or raw bytes for quantised uint8 TFLite/ONNX models. ``engine`` applies to Keras files only
    (``.tflite`` runs on LiteRT, ``.onnx`` on OpenVINO, a SavedModel on TensorFlow), and so does ``precision``
    (``int8``: a Keras file run by OpenVINO)."""
    from featurebench.extractors.tflite_backend import TFLiteExtractor

    path = Path(model).expanduser()
    if not path.exists():
        raise FeaturebenchError(f"Model file {path} does not exist.")
    suffix = path.suffix.lower()
    runtime = "TensorFlow" if path.is_dir() else {".tflite": "LiteRT", ".onnx": "OpenVINO"}.get(suffix)
    if engine not in (None, "auto") and runtime is not None:
        raise FeaturebenchError(f"--engine applies to Keras models; {path.name} runs on {runtime}. Leave --engine out.")
    if precision != "fp32" and runtime is not None:
        raise FeaturebenchError(f"--precision {precision} applies to Keras models; {path.name} runs in the "
                                "precision it was saved with. Leave --precision out.")
    if suffix == ".tflite":
        return TFLiteExtractor(path, layer, preprocess, batch_size)
    if suffix == ".onnx":
        from featurebench.extractors.onnx_file import ONNXExtractor

        return ONNXExtractor(path, layer, pool, preprocess, batch_size)
    if path.is_dir():
        return SavedModelExtractor(path, layer, preprocess or "none", batch_size)
    return load_keras_file(path, layer, pool, preprocess or "none", unsafe, batch_size, engine or DEFAULT_ENGINE,
                           precision)
