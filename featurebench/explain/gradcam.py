"""Grad-CAM (Selvaraju et al. 2017): a conv layer's maps weighted by the mean gradient of a class score.

``M_c = ReLU(sum_k alpha_k A_k)`` with ``alpha_k = mean_ij d s_c / d A_ijk``. The score ``s_c`` is a
Keras classifier's output ``c``, or, for a classifier bundle, the scikit-learn classifier's score on
the extracted features: its gradient with respect to the features (exact for linear classifiers,
central differences otherwise) is pushed back through the extractor by TensorFlow.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from featurebench.errors import FeaturebenchError


def last_conv_layer(model: Any) -> str:
    """The name of the last layer with a 4-D (spatial) output, skipping featurebench's pooling."""
    for layer in reversed(model.layers):
        try:
            shape = layer.output.shape
        except (AttributeError, ValueError):
            continue
        if len(shape) == 4 and not layer.name.startswith("featurebench_"):
            return layer.name
    raise FeaturebenchError(f"{model.name} has no layer with a spatial (4-D) output: nothing to draw a heatmap on")


def spatial_layer(model: Any, name: str) -> Any:
    """The layer ``name`` of ``model``, which must output a spatial (4-D) map; clear errors otherwise."""
    try:
        target = model.get_layer(name)
    except ValueError:
        spatial = [lay.name for lay in model.layers if len(getattr(getattr(lay, "output", None), "shape", ())) == 4]
        raise FeaturebenchError(f"layer {name!r} is not a layer of {model.name}; layers with spatial outputs include "
                                f"{', '.join(spatial[-10:])} (`featurebench inspect` lists all)") from None
    if len(target.output.shape) != 4:
        raise FeaturebenchError(f"layer {name!r} outputs shape {tuple(target.output.shape)}, not a spatial "
                                "(height, width, channels) map")
    return target


def cut_model(model: Any, name: str, with_output: bool = False) -> Any:
    """A model from ``model``'s input to layer ``name``'s spatial output (and, ``with_output``, the
    model's output too). A nested model used as a layer (a fine-tuned network's body) is cut at
    its output in the outer graph, not in its own."""
    import keras

    target = spatial_layer(model, name)
    nodes = [node.outputs[0] for node in getattr(target, "_inbound_nodes", []) if getattr(node, "outputs", None)]
    for tensor in [*nodes, target.output]:
        try:
            return keras.Model(model.inputs[0], [tensor, model.output] if with_output else tensor)
        except ValueError:  # that tensor belongs to the nested model's own graph
            continue
    raise FeaturebenchError(f"layer {name!r} is not connected to {model.name}'s input in its outer graph; "
                            "pick a layer of the outer model (`featurebench inspect --no-expand`)")


def gradient_model(model: Any, layer: str | None) -> tuple[Any, str]:
    """A model returning ``[layer output, model output]`` (default layer: :func:`last_conv_layer`)."""
    name = layer or last_conv_layer(model)
    return cut_model(model, name, with_output=True), name


def grad_cam(grad_model: Any, batch: np.ndarray, output_gradients: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM maps ``(C, h, w)`` of one preprocessed image for each row of ``output_gradients``
    ``(C, n_outputs)`` (a one-hot row = that output's score). Also returns the model's output."""
    import tensorflow as tf

    x = tf.convert_to_tensor(batch[:1], dtype=tf.float32)
    maps = []
    outputs = None
    for g in output_gradients:
        with tf.GradientTape() as tape:
            activations, outputs = grad_model(x, training=False)
            target = tf.reduce_sum(tf.cast(outputs, tf.float32) * tf.constant(g[None, :], tf.float32))
        grads = tape.gradient(target, activations)
        if grads is None:
            raise FeaturebenchError("the chosen layer does not feed the model's output: no gradient to weight it by")
        alpha = tf.reduce_mean(tf.cast(grads, tf.float32), axis=(1, 2))  # (1, K)
        cam = tf.nn.relu(tf.reduce_sum(tf.cast(activations, tf.float32) * alpha[:, None, None, :], axis=-1))
        maps.append(cam[0].numpy())
    return np.stack(maps), np.asarray(outputs)[0]


def numeric_gradients(score: Callable[[np.ndarray], np.ndarray], features: np.ndarray, step: float | None = None,
                      chunk: int = 512) -> np.ndarray:
    """``(C, D)`` central-difference gradients of ``score`` (rows -> (rows, C) scores) at one feature row.

    The step defaults to 5% of the row's mean absolute value, wide enough to cross some
    split points of a tree ensemble (whose exact gradient is zero almost everywhere).
    """
    f = np.asarray(features, dtype=np.float64).ravel()
    h = step if step is not None else 0.05 * (float(np.mean(np.abs(f))) + 1e-6)
    parts = []
    for start in range(0, len(f), chunk):  # 2 * chunk perturbed rows at a time: memory stays flat
        dims = np.arange(start, min(start + chunk, len(f)))
        up = np.repeat(f[None, :], len(dims), axis=0)
        up[np.arange(len(dims)), dims] += h
        down = up.copy()
        down[np.arange(len(dims)), dims] -= 2 * h
        scores = np.asarray(score(np.concatenate([up, down]).astype(np.float32)), dtype=np.float64)
        parts.append((scores[:len(dims)] - scores[len(dims):]) / (2 * h))
    return np.concatenate(parts).T
