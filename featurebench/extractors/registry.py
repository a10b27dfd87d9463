"""The registry of named extractors: ``name -> ModelSpec``.

Specs are plain data; nothing here imports TensorFlow. Builders import Keras
only when called. Other modules add specs with :func:`register`.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from featurebench.errors import FeaturebenchError
from featurebench.extractors.spec import ModelSpec

_REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    """Add ``spec`` to the registry (names are unique) and return it."""
    if spec.name in _REGISTRY:
        raise ValueError(f"extractor {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def get_spec(name: str) -> ModelSpec:
    """Return the spec called ``name`` (case-insensitive) or raise listing the known names."""
    _load_plugins()
    try:
        return _REGISTRY[name.lower()]
    except KeyError:
        raise FeaturebenchError(
            f"Unknown model {name!r}. Known models: {', '.join(sorted(_REGISTRY))}; "
            "or pass a model file (.keras, .h5, SavedModel folder, .tflite)."
        ) from None


def list_specs() -> list[ModelSpec]:
    """All registered specs, sorted by name."""
    _load_plugins()
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def build_keras_application(
    module: str, cls: str, input_size: int, weights: str | None, include_top: bool
) -> Any:
    """Build ``keras.applications.<module>.<cls>`` for square RGB input of ``input_size``."""
    import importlib

    app = getattr(importlib.import_module(f"keras.applications.{module}"), cls)
    kwargs: dict[str, Any] = {"include_top": include_top, "weights": weights}
    if not include_top:
        kwargs["input_shape"] = (input_size, input_size, 3)
    return app(**kwargs)


def _keras_spec(name: str, module: str, cls: str, size: int, prep: str, dim: int,
                cache_file: str, **extra: Any) -> ModelSpec:
    return ModelSpec(
        name=name,
        input_size=size,
        preprocessing=prep,
        feature_dim=dim,
        builder=partial(build_keras_application, module, cls, size),
        imagenet_cache_file=cache_file,
        **extra,
    )


_KERAS_APPLICATIONS = [
    _keras_spec("vgg16", "vgg16", "VGG16", 224, "caffe", 25088,
                "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
                default_layer="block5_pool", default_pool="flatten", top_layers=("fc1", "fc2"),
                description="VGG16, flattened last pool (the classic 25,088-d features)"),
    _keras_spec("vgg19", "vgg19", "VGG19", 224, "caffe", 25088,
                "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
                default_layer="block5_pool", default_pool="flatten", top_layers=("fc1", "fc2"),
                description="VGG19, flattened last pool"),
    _keras_spec("resnet50", "resnet50", "ResNet50", 224, "caffe", 2048,
                "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5", batch_size=16,
                description="ResNet50, global average pool"),
    _keras_spec("resnet50v2", "resnet_v2", "ResNet50V2", 224, "tf", 2048,
                "resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5", batch_size=16,
                description="ResNet50 v2, global average pool"),
    # Batch 16: +6% img/s in `extract` vs 32 with OpenVINO, +4-12% with TensorFlow, 2-core CPU (docs/performance.md).
    _keras_spec("mobilenet", "mobilenet", "MobileNet", 224, "tf", 1024,
                "mobilenet_1_0_224_tf_no_top.h5", batch_size=16,
                description="MobileNet v1 1.0, global average pool"),
    _keras_spec("mobilenetv2", "mobilenet_v2", "MobileNetV2", 224, "tf", 1280,
                "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
                description="MobileNetV2 1.0, global average pool"),
    _keras_spec("inceptionv3", "inception_v3", "InceptionV3", 299, "tf", 2048,
                "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
                description="InceptionV3, global average pool"),
    _keras_spec("xception", "xception", "Xception", 299, "tf", 2048,
                "xception_weights_tf_dim_ordering_tf_kernels_notop.h5",
                description="Xception, global average pool"),
    _keras_spec("efficientnetb0", "efficientnet", "EfficientNetB0", 224, "none", 1280,
                "efficientnetb0_notop.h5",
                description="EfficientNetB0 (normalises inside the graph), global average pool"),
    _keras_spec("densenet121", "densenet", "DenseNet121", 224, "torch", 1024,
                "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5",
                description="DenseNet121, global average pool"),
]

for _spec in _KERAS_APPLICATIONS:
    register(_spec)

#: Modules that register further specs when imported (kept light: no TensorFlow at import).
_PLUGIN_MODULES: list[str] = ["featurebench.extractors.efficientnet_lite"]
_plugins_loaded = False


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    import importlib

    for module in _PLUGIN_MODULES:
        importlib.import_module(module)
