"""Shared helpers for the fine-tuning tests (no tests here): a tiny registered body, tiny recipes.

The body is a 24x24 CNN with two BatchNorm layers, registered in the model registry
as ``tinybody`` only while tests run, so the whole fine-tuning path (registry ->
surgery -> training -> record) is exercised in seconds on a CPU.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import make_class_folders

TINY = "tinybody"
TINY_SIZE = 24


def tiny_builder(weights, include_top):
    import keras

    if weights not in (None,):
        raise ValueError("tinybody has no pretrained weights")
    inputs = keras.Input((TINY_SIZE, TINY_SIZE, 3), name="input_layer")
    x = keras.layers.Conv2D(4, 3, name="c1")(inputs)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.ReLU(name="r1")(x)
    x = keras.layers.Conv2D(6, 3, name="c2")(x)
    x = keras.layers.BatchNormalization(name="bn2")(x)
    x = keras.layers.ReLU(name="r2")(x)
    x = keras.layers.MaxPooling2D(4, name="pool")(x)
    return keras.Model(inputs, x, name=TINY)


def register_tiny() -> str:
    """Register ``tinybody`` once per session; returns its name."""
    from featurebench.extractors import registry
    from featurebench.extractors.spec import ModelSpec

    registry._load_plugins()
    if TINY not in registry._REGISTRY:
        registry.register(ModelSpec(TINY, TINY_SIZE, "tf", 150, tiny_builder, description="test-only tiny CNN"))
    return TINY


def tiny_recipe(**overrides):
    """A fast recipe on the tiny body: 1+1 epochs, batch 8, small head, unfreeze from c2."""
    from featurebench.finetune.recipes import Recipe, apply_overrides

    settings = dict(model=register_tiny(), weights="none", warmup_epochs=1, epochs=1, unfreeze_from="c2",
                    batch_size=8, head_hidden=8, augment="flip", val_fraction=0.15, name="tiny")
    settings.update(overrides)
    return apply_overrides(Recipe(), settings)


@pytest.fixture()
def tiny_set(tmp_path: Path) -> Path:
    """Three classes x 8 JPEGs (30x36), distinguishable by colour."""
    return make_class_folders(tmp_path / "flowers", classes=("daisy", "rose", "tulip"), per_class=8, size=(30, 36))


@pytest.fixture()
def tiny_model():
    """A fine-tuning model on the tiny body: tf-normalisation + body + FCHeadNet(8), 3 classes."""
    from featurebench.finetune.surgery import assemble, body_spec, build_body
    from featurebench.training.normalize import normalization_layer

    spec = body_spec(register_tiny())
    body, _ = build_body(spec, "none", seed=1)
    return assemble(body, 3, "fc", hidden=8, dropout=0.5, normalization=normalization_layer("model", "tf"), seed=1)
