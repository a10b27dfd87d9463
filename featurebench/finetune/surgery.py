"""Network surgery: cut a registered backbone, put a new head on it, freeze, unfreeze, compile.

The fine-tuning model is ``image (0..255) -> normalisation -> body -> head``, where
the body is the registry network (``include_top=False``) nested as one layer and
called with ``training=False``. Indices for :func:`unfreeze_from` are indices into
the *body's* layers, exactly as ``featurebench inspect MODEL`` lists them (VGG16:
15 = ``block5_conv1``, the classic ``baseModel.layers[15:]``).

BatchNorm: Keras 3 lets an outer ``fit(training=True)`` override the
``training=False`` of a nested call, so the guarantee that BatchNorm layers stay in
inference mode (moving statistics untouched, gamma/beta fixed) comes from keeping
every BatchNorm layer ``trainable = False`` in both phases, which in Keras 3 also
makes it run in inference mode. Always compile after changing trainable flags:
:func:`compile_model` is called at the start of each phase.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Any, Iterator

from featurebench.errors import FeaturebenchError
from featurebench.extractors.spec import ModelSpec
from featurebench.finetune.heads import build_head

def body_spec(model: str | ModelSpec, image_size: int | None = None) -> ModelSpec:
    """The registry spec for ``model``, rebuilt for ``image_size`` when that differs from its default
    (keras.applications backbones accept other sizes; fixed-size ports refuse with a clear error)."""
    from featurebench.extractors.model_file import looks_like_model_file
    from featurebench.extractors.registry import build_keras_application, get_spec

    if isinstance(model, str) and looks_like_model_file(model):
        raise FeaturebenchError(f"finetune builds on a registered backbone (`featurebench models`), not a model file "
                                f"({model}); to continue a fine-tuning run, pass --resume RUN_DIR.")
    spec = model if isinstance(model, ModelSpec) else get_spec(model)
    if image_size is None or image_size == spec.input_size:
        return spec
    builder = spec.builder
    if isinstance(builder, partial) and builder.func is build_keras_application and len(builder.args) == 3:
        module, cls, _ = builder.args
        return replace(spec, input_size=image_size, builder=partial(build_keras_application, module, cls, image_size))
    raise FeaturebenchError(f"{spec.name} is built for {spec.input_size}px input only; drop --image-size "
                            f"or pass --image-size {spec.input_size}.")


def build_body(spec: ModelSpec, weights: str = "imagenet", seed: int = 42) -> tuple[Any, dict[str, Any]]:
    """The backbone without its top (``weights``: imagenet, none, or PATH) and its weights identity."""
    from featurebench.extractors.keras_backend import build_base

    return build_base(spec, weights, False, seed)


def assemble(body: Any, classes: int, head: str = "fc", hidden: int = 256, dropout: float = 0.5,
             normalization: Any | None = None, seed: int = 42) -> Any:
    """``Input(0..255) -> [normalization] -> body(training=False) -> head`` as one functional model."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(tuple(body.input_shape[1:]), name="image", dtype="float32")
    x = normalization(inputs) if normalization is not None else inputs
    x = body(x, training=False)
    outputs = build_head(head, x, classes, hidden, dropout)
    return keras.Model(inputs, outputs, name=f"{body.name}_finetune")


def body_of(model: Any) -> Any:
    """The nested backbone of a fine-tuning model (the one layer that is itself a model)."""
    import keras

    bodies = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if len(bodies) != 1:
        raise FeaturebenchError(f"{model.name} is not a featurebench fine-tuning model (expected one nested body, "
                                f"found {len(bodies)})")
    return bodies[0]


def head_layers(model: Any) -> list[Any]:
    """The layers of the new head (everything after the body that has weights or not)."""
    return [layer for layer in model.layers if layer.name.startswith("head_")]


def walk_layers(layer: Any) -> Iterator[Any]:
    """``layer`` and every layer nested inside it, depth first."""
    yield layer
    for child in getattr(layer, "layers", []):
        yield from walk_layers(child)


def batchnorm_layers(model: Any) -> list[Any]:
    import keras

    return [layer for layer in walk_layers(model) if isinstance(layer, keras.layers.BatchNormalization)]


def freeze_batchnorm(model: Any) -> int:
    """Set every BatchNorm layer under ``model`` non-trainable (inference mode); returns how many."""
    found = batchnorm_layers(model)
    for layer in found:
        layer.trainable = False
    return len(found)


def freeze_body(model: Any) -> None:
    """Phase 1: the whole body frozen, only the head trains."""
    body_of(model).trainable = False


def resolve_layer_index(body: Any, at: int | str) -> int:
    """``at`` as a non-negative index into ``body.layers`` (an int, possibly negative, or a layer name)."""
    names = [layer.name for layer in body.layers]
    if isinstance(at, str):
        if at not in names:
            close = [n for n in names if at.lower() in n.lower()][:8] or names[-8:]
            raise FeaturebenchError(f"--unfreeze-from {at!r}: no layer of that name in {body.name}; "
                                    f"e.g. {', '.join(close)} (`featurebench inspect {body.name}` lists all)")
        return names.index(at)
    if not -len(names) <= at < len(names):
        raise FeaturebenchError(f"--unfreeze-from {at}: {body.name} has {len(names)} layers (0..{len(names) - 1}); "
                                f"`featurebench inspect {body.name}` lists them")
    return at % len(names)


def unfreeze_from(model: Any, at: int | str) -> int:
    """Phase 2: make ``body.layers[index:]`` trainable (BatchNorm excepted), the rest frozen.

    Returns the resolved index. Recompile afterwards.
    """
    body = body_of(model)
    index = resolve_layer_index(body, at)
    body.trainable = True
    # Set every layer explicitly: Keras does not re-propagate trainable=True to children of a
    # model that is already trainable, so flags left by an earlier cut would otherwise survive.
    for position, layer in enumerate(body.layers):
        for sub in walk_layers(layer):
            sub.trainable = position >= index
    freeze_batchnorm(body)
    return index


def trainable_summary(model: Any) -> dict[str, Any]:
    """Counts for logs and provenance: trainable / frozen parameters, trainable body layers."""
    import numpy as np

    body = body_of(model)
    count = lambda weights: int(sum(int(np.prod(w.shape)) for w in weights))  # noqa: E731
    trainable_body = [layer.name for layer in body.layers if layer.trainable and layer.weights
                      and any(w.trainable for w in layer.weights)]
    return {"trainable_params": count(model.trainable_weights),
            "non_trainable_params": count(model.non_trainable_weights),
            "trainable_body_layers": trainable_body,
            "frozen_batchnorm_layers": len(batchnorm_layers(body))}


__all__ = ["assemble", "batchnorm_layers", "body_of", "body_spec", "build_body", "freeze_batchnorm", "freeze_body",
           "head_layers", "resolve_layer_index", "trainable_summary", "unfreeze_from"]
