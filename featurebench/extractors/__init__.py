"""Extractors: the model registry and the backends that turn images into feature vectors.
May import data and errors only; every room that runs a network imports it.

``load_extractor`` is the one entry point: a registry name (``resnet50``) or a
model file path (``.keras``, ``.h5``, SavedModel folder, ``.tflite``, ``.onnx``).
TensorFlow is imported only when an extractor is built.
"""

from __future__ import annotations

from featurebench.extractors.base import Extractor
from featurebench.extractors.registry import get_spec, list_specs, register
from featurebench.extractors.spec import ModelSpec

__all__ = ["Extractor", "FeatureExtractor", "ModelSpec", "get_spec", "list_specs", "load_extractor", "register"]


def __getattr__(name: str):
    # FeatureExtractor pulls in scikit-learn; import it only when asked for.
    if name == "FeatureExtractor":
        from featurebench.extractors.sklearn_api import FeatureExtractor

        return FeatureExtractor
    raise AttributeError(name)


def load_extractor(model: str, weights: str = "imagenet", layer: str | None = None, pool: str | None = None,
                   seed: int = 42, preprocess: str | None = None, batch_size: int | None = None,
                   unsafe_model: bool = False, precision: str = "fp32",
                   engine: str | None = None) -> Extractor:
    """Build an extractor.

    ``model``: registry name or model file. ``weights``: ``imagenet``, ``none`` (random
    init, seeded) or a weights file (registry models only). ``layer``/``pool``: which
    layer and how to pool a 4-D output (``avg``, ``max``, ``flatten``). ``preprocess``:
    override for model files (registry models always use their own): a mode or
    ``mean=R,G,B;std=R,G,B``. ``precision``: ``fp32``, ``bf16`` or (on a GPU) ``fp16``
    (registry models only; see docs/performance.md), or ``int8`` (Keras models on OpenVINO;
    runs once :func:`featurebench.extractors.int8.calibrate` has quantised it). ``engine``: what
    runs a Keras model, ``auto`` (default: TensorFlow on a visible GPU, else OpenVINO),
    ``openvino`` or ``tensorflow``; ``None`` picks the default.
    """
    from featurebench.errors import FeaturebenchError
    from featurebench.extractors.model_file import load_model_file, looks_like_model_file

    if looks_like_model_file(model):
        if precision not in ("fp32", "int8"):
            raise FeaturebenchError(f"--precision {precision} applies to registry models; a model file runs "
                                    "in the precision it was saved with (or int8, for a Keras file).")
        if weights not in ("imagenet", None):
            raise FeaturebenchError("--weights applies to registry models; a model file carries its own weights.")
        return load_model_file(model, layer, pool, preprocess, unsafe_model, batch_size or 32, engine, precision)
    spec = get_spec(model)
    if preprocess and preprocess != spec.preprocessing:
        raise FeaturebenchError(
            f"{spec.name} must be fed its own preprocessing ({spec.preprocessing}); --preprocess is for model files."
        )
    from featurebench.extractors.keras_backend import DEFAULT_ENGINE, load_registry_model

    return load_registry_model(spec, weights, layer, pool, seed, batch_size, precision, engine or DEFAULT_ENGINE)
