"""Optimizers, compiling and the mixed-precision policy: what every Keras training run sets up.

- :data:`OPTIMIZERS` / :func:`make_optimizer` / :func:`compile_model` (sparse integer labels, accuracy);
- :data:`PRECISIONS` / :func:`precision_policy` — fp32, mixed bf16 or mixed fp16 for building and training.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from featurebench.errors import FeaturebenchError

OPTIMIZERS = ("sgd", "rmsprop", "adam", "adamw")
PRECISIONS = ("fp32", "bf16", "fp16")
PRECISION_POLICIES = {"fp32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}


def make_optimizer(name: str, lr: float, momentum: float = 0.0) -> Any:
    """The Keras optimizer ``name`` (one of :data:`OPTIMIZERS`) at learning rate ``lr``."""
    import keras

    opt = keras.optimizers
    if name == "sgd":
        return opt.SGD(learning_rate=lr, momentum=momentum)
    if name == "rmsprop":
        return opt.RMSprop(learning_rate=lr)
    if name == "adam":
        return opt.Adam(learning_rate=lr)
    if name == "adamw":
        return opt.AdamW(learning_rate=lr)
    raise FeaturebenchError(f"optimizer {name!r}: choose sgd, rmsprop, adam or adamw")


def compile_model(model: Any, optimizer: str, lr: float, momentum: float = 0.0) -> None:
    """Compile for sparse integer labels; call after every change of trainable flags."""
    model.compile(optimizer=make_optimizer(optimizer, lr, momentum), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])


@contextmanager
def precision_policy(precision: str) -> Iterator[str]:
    """Set the Keras global dtype policy (``fp32``, ``bf16`` = mixed_bfloat16, ``fp16`` =
    mixed_float16, which Keras pairs with loss scaling) for building and training; restored after."""
    import keras

    if precision not in PRECISION_POLICIES:
        raise FeaturebenchError(f"--precision {precision!r}: choose one of {', '.join(PRECISION_POLICIES)}")
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(PRECISION_POLICIES[precision])
    try:
        yield PRECISION_POLICIES[precision]
    finally:
        keras.config.set_dtype_policy(previous)


__all__ = ["OPTIMIZERS", "PRECISIONS", "PRECISION_POLICIES", "compile_model", "make_optimizer", "precision_policy"]
