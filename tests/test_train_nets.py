"""The from-scratch architectures: output shapes and parameter counts as published, options checked."""

from __future__ import annotations

import pytest

from featurebench.errors import FeaturebenchError

pytest.importorskip("keras")


def _count(*layers):
    """Parameters of conv/dense (kernel + bias) and BatchNorm (4 per channel) layers, by hand."""
    return sum(layers)


def test_minivggnet_at_64_with_17_classes():
    from featurebench.train.nets import build_net

    model = build_net("minivggnet", 64, 17)
    assert model.input_shape == (None, 64, 64, 3) and model.output_shape == (None, 17)
    conv = lambda k_in, k_out: 9 * k_in * k_out + k_out  # noqa: E731
    expected = _count(conv(3, 32), 4 * 32, conv(32, 32), 4 * 32, conv(32, 64), 4 * 64, conv(64, 64), 4 * 64,
                      16 * 16 * 64 * 512 + 512, 4 * 512, 512 * 17 + 17)
    assert model.count_params() == expected == 8_466_225
    assert model.get_layer("flatten").output.shape[-1] == 16 * 16 * 64


def test_alexnet_at_227_flattens_6x6x256():
    from featurebench.train.nets import build_net

    model = build_net("alexnet", 227, 2)
    assert model.output_shape == (None, 2)
    assert tuple(model.get_layer("conv1").output.shape[1:]) == (57, 57, 96)   # 227 / 4, "same"
    assert tuple(model.get_layer("block3_pool").output.shape[1:]) == (6, 6, 256)
    assert model.count_params() == 58_327_810
    assert model.get_layer("fc1").kernel_regularizer.l2 == pytest.approx(2e-4)


def test_minigooglenet_and_resnet_published_settings():
    from featurebench.train.nets import NETS, build_net

    google = build_net("minigooglenet", 32, 10)
    assert google.output_shape == (None, 10) and google.count_params() == 1_656_250
    assert tuple(google.get_layer("downsample8").output.shape[1:3]) == (7, 7)
    resnet = build_net("resnet", 32, 10)
    assert resnet.output_shape == (None, 10) and resnet.count_params() == 886_102
    assert sum(1 for layer in resnet.layers if layer.name.endswith("_add")) == 27     # 9 + 9 + 9 modules
    bn = resnet.get_layer("stage1_block1_bn1")
    assert (bn.epsilon, bn.momentum) == (2e-5, 0.9)
    assert tuple(resnet.get_layer("final_relu").output.shape[1:]) == (8, 8, 256)
    assert NETS["resnet"].options["stages"] == (9, 9, 9) and NETS["resnet"].options["filters"] == (64, 64, 128, 256)


def test_resnet_tiny_imagenet_stem_and_small_options():
    from featurebench.train.nets import build_net

    model = build_net("resnet", 64, 200, stem="tiny-imagenet", stages=(1, 1), filters=(8, 8, 16), l2=0.0)
    assert tuple(model.get_layer("stem_pool").output.shape[1:]) == (32, 32, 8)
    assert tuple(model.get_layer("final_relu").output.shape[1:]) == (16, 16, 16)
    with pytest.raises(FeaturebenchError, match="one more number than --stages"):
        build_net("resnet", 32, 10, stages=(1, 1), filters=(8, 8))
    with pytest.raises(FeaturebenchError, match="does not take hidden"):
        build_net("resnet", 32, 10, hidden=3)
    with pytest.raises(FeaturebenchError, match="choose one of minivggnet"):
        build_net("lenet")


def test_settings_take_the_nets_recipe_and_refuse_foreign_options():
    from featurebench.train.settings import resolve_settings

    s = resolve_settings("alexnet", {})
    assert (s.image_size, s.optimizer, s.lr, s.batch_size, s.patch, s.ten_crop, s.load_size) == \
        (227, "adam", 1e-3, 128, True, True, 256)
    s = resolve_settings("minivggnet", {"filters": "4,8", "epochs": 2})
    assert (s.image_size, s.optimizer, s.lr, s.filters, s.epochs) == (64, "sgd", 0.05, (4, 8), 2)
    assert s.net_options() == {"filters": (4, 8)}
    with pytest.raises(FeaturebenchError, match="does not take --stages"):
        resolve_settings("minivggnet", {"stages": "3,3"})
    with pytest.raises(FeaturebenchError, match="--schedule 'cosine'"):
        resolve_settings("resnet", {"schedule": "cosine"})
