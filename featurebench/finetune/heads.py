"""New classification heads for a cut body.

- :func:`fc_head` — the classic FCHeadNet: flatten -> Dense(hidden, relu) -> Dropout -> Dense(softmax).
- :func:`gap_head` — global average pool -> [Dropout] -> Dense(softmax): the TF-Hub
  "frozen feature vector + one Dense" flow.

Layer names start with ``head_`` so they are easy to find (``--layer head_fc`` to use
a fine-tuned model as an extractor). The softmax layer computes in float32 even
under a mixed-precision policy.
"""

from __future__ import annotations

from typing import Any

from featurebench.errors import FeaturebenchError

#: Head name -> (pool it applies to the body output, layer holding the feature vector it classifies).
HEAD_INFO = {"fc": ("flatten", "head_flatten"), "gap": ("avg", "head_gap")}


def fc_head(x: Any, classes: int, hidden: int = 256, dropout: float = 0.5) -> Any:
    """FCHeadNet on the body output ``x`` (a symbolic Keras tensor)."""
    import keras

    x = keras.layers.Flatten(name="head_flatten")(x)
    x = keras.layers.Dense(hidden, activation="relu", name="head_fc")(x)
    x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    return keras.layers.Dense(classes, activation="softmax", name="head_predictions", dtype="float32")(x)


def gap_head(x: Any, classes: int, dropout: float = 0.0) -> Any:
    """Global average pooling (skipped for an already flat body) then Dense softmax."""
    import keras

    if len(x.shape) == 4:
        x = keras.layers.GlobalAveragePooling2D(name="head_gap")(x)
    elif len(x.shape) > 2:
        x = keras.layers.Flatten(name="head_gap")(x)
    else:
        x = keras.layers.Identity(name="head_gap")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    return keras.layers.Dense(classes, activation="softmax", name="head_predictions", dtype="float32")(x)


def build_head(kind: str, x: Any, classes: int, hidden: int = 256, dropout: float = 0.5) -> Any:
    if kind == "fc":
        return fc_head(x, classes, hidden, dropout)
    if kind == "gap":
        return gap_head(x, classes, dropout)
    raise FeaturebenchError(f"head {kind!r}: choose one of {', '.join(HEAD_INFO)}")


__all__ = ["HEAD_INFO", "build_head", "fc_head", "gap_head"]
