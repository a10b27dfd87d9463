"""Network surgery: heads, freeze / unfreeze by index or name, BatchNorm kept frozen, normalisation layers."""

from __future__ import annotations

import numpy as np
import pytest

from featurebench.errors import FeaturebenchError
from finetune_support import register_tiny, tiny_model  # noqa: F401 - fixture

HEAD_WEIGHTS = {"head_fc/kernel", "head_fc/bias", "head_predictions/kernel", "head_predictions/bias"}


def names(weights) -> set[str]:
    return {w.path.split("/", 1)[-1] if w.path.count("/") > 1 else w.path for w in weights}


def snapshot(layer) -> list[np.ndarray]:
    return [w.numpy().copy() for w in layer.weights]


def changed(before, layer) -> list[bool]:
    return [not np.array_equal(a, w.numpy()) for a, w in zip(before, layer.weights)]


def fit_once(model, optimizer="rmsprop", lr=1e-2):
    from featurebench.training.optimization import compile_model

    compile_model(model, optimizer, lr)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (16, 24, 24, 3)).astype("float32")
    model.fit(x, np.arange(16) % 3, epochs=1, batch_size=8, verbose=0)


def test_fc_head_layers_and_flags_before_and_after_unfreeze(tiny_model):
    from featurebench.finetune.surgery import body_of, freeze_body, head_layers, unfreeze_from

    model = tiny_model
    body = body_of(model)
    assert [layer.name for layer in body.layers] == ["input_layer", "c1", "bn1", "r1", "c2", "bn2", "r2", "pool"]
    assert [layer.name for layer in head_layers(model)] == ["head_flatten", "head_fc", "head_dropout", "head_predictions"]
    assert model.get_layer("head_dropout").rate == 0.5
    assert model.get_layer("head_predictions").activation.__name__ == "softmax"
    assert model.output_shape == (None, 3)

    freeze_body(model)
    assert names(model.trainable_weights) == HEAD_WEIGHTS
    assert not any(layer.trainable for layer in body.layers)

    index = unfreeze_from(model, "c2")
    assert index == 4
    assert names(model.trainable_weights) == HEAD_WEIGHTS | {"c2/kernel", "c2/bias"}
    assert [layer.name for layer in body.layers if layer.trainable] == ["c2", "r2", "pool"]
    assert not body.get_layer("bn2").trainable and not body.get_layer("bn1").trainable

    # Index, negative index and name resolve to the same cut.
    for at in (4, -4):
        assert unfreeze_from(model, at) == 4
        assert names(model.trainable_weights) == HEAD_WEIGHTS | {"c2/kernel", "c2/bias"}
    unfreeze_from(model, 0)
    assert names(model.trainable_weights) == HEAD_WEIGHTS | {"c1/kernel", "c1/bias", "c2/kernel", "c2/bias"}


def test_unfreeze_errors_name_the_layers(tiny_model):
    from featurebench.finetune.surgery import unfreeze_from

    with pytest.raises(FeaturebenchError, match="no layer of that name.*featurebench inspect"):
        unfreeze_from(tiny_model, "block5_conv1")
    with pytest.raises(FeaturebenchError, match="has 8 layers"):
        unfreeze_from(tiny_model, 8)


def test_gap_head_is_pool_plus_softmax():
    from featurebench.finetune.surgery import assemble, body_spec, build_body

    body, _ = build_body(body_spec(register_tiny()), "none")
    model = assemble(body, 5, "gap", dropout=0.0)
    assert [layer.name for layer in model.layers][-2:] == ["head_gap", "head_predictions"]
    assert type(model.get_layer("head_gap")).__name__ == "GlobalAveragePooling2D"
    assert model.get_layer("head_predictions").kernel.shape == (6, 5)


def test_vgg16_surgery_layer_counts_without_training():
    from featurebench.finetune.surgery import (assemble, body_of, body_spec, build_body, freeze_body,
                                               trainable_summary, unfreeze_from)

    body, info = build_body(body_spec("vgg16"), "none", seed=0)
    assert info["random_init"] and len(body.layers) == 19
    model = assemble(body, 17, "fc", hidden=256, dropout=0.5)
    head_params = 25088 * 256 + 256 + 256 * 17 + 17
    freeze_body(model)
    assert trainable_summary(model)["trainable_params"] == head_params
    assert len(model.trainable_weights) == 4
    conv = 3 * 3 * 512 * 512 + 512
    for at in (15, "15", "block5_conv1"):
        from featurebench.finetune.recipes import parse_unfreeze

        assert unfreeze_from(model, parse_unfreeze(at)) == 15
        summary = trainable_summary(model)
        assert summary["trainable_body_layers"] == ["block5_conv1", "block5_conv2", "block5_conv3"]
        assert summary["trainable_params"] == head_params + 3 * conv
        assert len(model.trainable_weights) == 4 + 6
        assert [layer.trainable for layer in body_of(model).layers] == [False] * 15 + [True] * 4


def test_warmup_changes_only_the_head(tiny_model):
    from featurebench.finetune.surgery import body_of, freeze_body, head_layers

    model = tiny_model
    freeze_body(model)
    body = body_of(model)
    body_before = snapshot(body)  # includes BatchNorm moving statistics
    head_before = {layer.name: snapshot(layer) for layer in head_layers(model) if layer.weights}
    fit_once(model, "rmsprop")
    assert not any(changed(body_before, body))
    for layer in head_layers(model):
        if layer.weights:
            assert all(changed(head_before[layer.name], layer)), layer.name


def test_batchnorm_stays_frozen_when_the_whole_body_trains(tiny_model):
    from featurebench.finetune.surgery import body_of, freeze_body, unfreeze_from

    model = tiny_model
    freeze_body(model)
    unfreeze_from(model, 0)
    body = body_of(model)
    bn = {name: snapshot(body.get_layer(name)) for name in ("bn1", "bn2")}
    conv = snapshot(body.get_layer("c1"))
    fit_once(model, "sgd", lr=0.1)
    assert all(changed(conv, body.get_layer("c1")))
    for name, before in bn.items():  # gamma, beta, moving mean, moving variance
        assert not any(changed(before, body.get_layer(name))), name


@pytest.mark.parametrize("mode", ["caffe", "tf", "torch", "lite", "scale", "dataset-mean", "dataset-mean-caffe"])
def test_normalisation_layers_match_the_numpy_preprocessors(mode):
    from featurebench.extractors.preprocessing import PREPROCESSORS
    from featurebench.training.normalize import normalization_layer

    x = np.random.default_rng(0).integers(0, 256, (2, 5, 7, 3)).astype(np.float32)
    means = np.array([120.5, 110.25, 90.0], np.float32)
    if mode == "scale":
        layer, expected = normalization_layer("scale", "tf"), x / 255.0
    elif mode == "dataset-mean":
        layer, expected = normalization_layer("dataset-mean", "tf", means), x - means
    elif mode == "dataset-mean-caffe":
        layer, expected = normalization_layer("dataset-mean", "caffe", means), x[..., ::-1] - means[::-1]
    else:
        layer, expected = normalization_layer("model", mode), PREPROCESSORS[mode](x)
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=1e-5, atol=1e-4)
    assert not layer.trainable_weights


def test_precision_policy_is_scoped():
    import keras

    from featurebench.training.optimization import precision_policy

    before = keras.config.dtype_policy().name
    with precision_policy("bf16") as policy:
        assert policy == "mixed_bfloat16" and keras.config.dtype_policy().name == "mixed_bfloat16"
        from featurebench.finetune.heads import gap_head

        inputs = keras.Input((4, 4, 2))
        assert gap_head(inputs, 3).dtype == "float32"  # softmax kept in float32
    assert keras.config.dtype_policy().name == before
    with pytest.raises(FeaturebenchError, match="fp32, bf16, fp16"):
        with precision_policy("int8"):
            pass
