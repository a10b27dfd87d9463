"""ONNX model files as extractors (OpenVINO), on small graphs built here with the onnx helper API."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from featurebench.errors import FeaturebenchError
from featurebench.extractors import load_extractor
from featurebench.extractors.preprocessing import get_preprocessor

onnx = pytest.importorskip("onnx", reason="the onnx test helper is not installed: pip install -e '.[test]'")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

RNG = np.random.default_rng(0)
#: 1x1 conv 3 -> 4 channels: W (out, in, 1, 1) and bias.
CONV_W = RNG.normal(size=(4, 3, 1, 1)).astype(np.float32)
CONV_B = RNG.normal(size=4).astype(np.float32)
FC_W = RNG.normal(size=(4, 5)).astype(np.float32)


def _save(path: Path, nodes, inputs, outputs, initializers) -> Path:
    graph = helper.make_graph(nodes, "tiny", inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def nchw_model(path: Path, height: int | None = 8, width: int | None = 8, batch: str | int = "N",
               dtype: int = TensorProto.FLOAT) -> Path:
    """image (N,3,H,W) -> conv_out -> relu "features" (N,4,H,W); -> avg pool -> "logits" (N,5)."""
    nodes = [helper.make_node("Cast", ["image"], ["x"], to=TensorProto.FLOAT),
             helper.make_node("Conv", ["x", "W", "B"], ["conv_out"]),
             helper.make_node("Relu", ["conv_out"], ["features"]),
             helper.make_node("GlobalAveragePool", ["features"], ["gap"]),
             helper.make_node("Flatten", ["gap"], ["flat"]),
             helper.make_node("MatMul", ["flat", "FC"], ["logits"])]
    inputs = [helper.make_tensor_value_info("image", dtype, [batch, 3, height, width])]
    outputs = [helper.make_tensor_value_info("features", TensorProto.FLOAT, [batch, 4, height, width]),
               helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, 5])]
    inits = [numpy_helper.from_array(CONV_W, "W"), numpy_helper.from_array(CONV_B, "B"),
             numpy_helper.from_array(FC_W, "FC")]
    return _save(path, nodes, inputs, outputs, inits)


def nhwc_model(path: Path) -> Path:
    """image (1,8,8,3) -> transpose -> conv -> relu -> transpose back: "features" (N,8,8,4)."""
    nodes = [helper.make_node("Transpose", ["image"], ["x"], perm=[0, 3, 1, 2]),
             helper.make_node("Conv", ["x", "W", "B"], ["conv_out"]),
             helper.make_node("Relu", ["conv_out"], ["relu"]),
             helper.make_node("Transpose", ["relu"], ["features"], perm=[0, 2, 3, 1])]
    inputs = [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 8, 8, 3])]
    outputs = [helper.make_tensor_value_info("features", TensorProto.FLOAT, [1, 8, 8, 4])]
    inits = [numpy_helper.from_array(CONV_W, "W"), numpy_helper.from_array(CONV_B, "B")]
    return _save(path, nodes, inputs, outputs, inits)


def reference(x: np.ndarray) -> np.ndarray:
    """The graph in NumPy on a preprocessed NHWC batch: conv_out as (N, H, W, 4)."""
    return x @ CONV_W[:, :, 0, 0].T + CONV_B


@pytest.fixture()
def images() -> np.ndarray:
    return RNG.integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)


def test_named_output_pooled_equals_numpy(tmp_path, images):
    path = nchw_model(tmp_path / "tiny.onnx")
    ex = load_extractor(str(path), layer="features", preprocess="tf")
    assert ex.input_size == (8, 8) and ex.feature_dim == 4 and ex.layout == "NCHW"
    expected = np.maximum(reference(get_preprocessor("tf")(images)), 0)
    np.testing.assert_allclose(ex.extract(images), expected.mean(axis=(1, 2)), rtol=1e-5, atol=1e-5)
    flat = load_extractor(str(path), layer="features", pool="flatten", preprocess="tf")
    assert flat.feature_dim == 4 * 8 * 8
    np.testing.assert_allclose(flat.extract(images), expected.transpose(0, 3, 1, 2).reshape(3, -1),
                               rtol=1e-5, atol=1e-5)
    logits = load_extractor(str(path), layer="logits", preprocess="tf")
    assert logits.feature_dim == 5 and logits.provenance["pool"] == "none"
    np.testing.assert_allclose(logits.extract(images), expected.mean(axis=(1, 2)) @ FC_W, rtol=1e-4, atol=1e-4)


def test_inner_tensor_and_mean_std_preprocessing(tmp_path, images):
    path = nchw_model(tmp_path / "tiny.onnx")
    prep = "mean=0.485,0.456,0.406;std=0.229,0.224,0.225"
    ex = load_extractor(str(path), layer="conv_out", pool="max", preprocess=prep)
    x = (images / 255.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(ex.extract(images), reference(x).max(axis=(1, 2)), rtol=1e-4, atol=1e-4)
    prov = ex.provenance
    assert prov["layer"] == "conv_out" and prov["preprocessing"] == prep and prov["pool"] == "max"
    assert prov["model_source"] == "onnx" and prov["engine"] == "openvino" and prov["backend"] == "onnx"
    assert prov["weights_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(FeaturebenchError, match="no tensor named 'nope'.*features, logits"):
        load_extractor(str(path), layer="nope")
    with pytest.raises(FeaturebenchError, match="Unknown preprocessing"):
        load_extractor(str(path), layer="features", preprocess="mean=1,2;std=1")


def test_several_outputs_need_layer_and_odd_inputs_are_refused(tmp_path):
    with pytest.raises(FeaturebenchError, match="2 outputs .*features, logits.*--layer"):
        load_extractor(str(nchw_model(tmp_path / "two.onnx")))
    with pytest.raises(FeaturebenchError, match="height and width are dynamic"):
        load_extractor(str(nchw_model(tmp_path / "dyn.onnx", height=None, width=None)), layer="logits")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a protobuf at all")
    with pytest.raises(FeaturebenchError, match="cannot read .*junk.onnx"):
        load_extractor(str(junk))
    with pytest.raises(FeaturebenchError, match="--engine applies to Keras models.*OpenVINO"):
        load_extractor(str(nchw_model(tmp_path / "e.onnx")), layer="logits", engine="tensorflow")


def test_nhwc_fixed_batch_and_uint8_input(tmp_path, images):
    ex = load_extractor(str(nhwc_model(tmp_path / "nhwc.onnx")))  # batch fixed at 1 in the file
    assert ex.layout == "NHWC" and ex.feature_dim == 4 and ex.preprocessing == "none"
    expected = np.maximum(reference(images.astype(np.float32)), 0).mean(axis=(1, 2))
    np.testing.assert_allclose(ex.extract(images), expected, rtol=1e-4, atol=1e-3)
    u8 = load_extractor(str(nchw_model(tmp_path / "u8.onnx", dtype=TensorProto.UINT8, batch=2)), layer="features")
    assert u8.preprocessing == "uint8"
    np.testing.assert_allclose(u8.extract(images), np.maximum(reference(images.astype(np.float32)), 0)
                               .mean(axis=(1, 2)), rtol=1e-4, atol=1e-3)


def test_extract_and_info_with_an_onnx_file(tmp_path, class_folders):
    from featurebench.extract import ExtractOptions, run_extract
    from featurebench.store.reader import open_feature_file

    path = nchw_model(tmp_path / "tiny.onnx", height=16, width=16)
    out = tmp_path / "f.h5"
    summary = run_extract(ExtractOptions(str(class_folders), str(out), model=str(path), layer="features",
                                         preprocess="torch"))
    assert summary.n_rows == 12
    attrs = open_feature_file(out).attrs
    assert attrs["model_source"] == "onnx" and attrs["layer"] == "features" and attrs["feature_dim"] == 4
    assert attrs["weights_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    from featurebench.fit.predict import build_extractor

    rebuilt = build_extractor(dict(attrs)).provenance  # what `predict` does with a bundle's spec
    assert {k: rebuilt[k] for k in ("layer", "pool", "preprocessing", "weights_sha256")} == \
        {k: attrs[k] for k in ("layer", "pool", "preprocessing", "weights_sha256")}


def test_keras_model_exported_to_onnx_gives_the_keras_features(tmp_path, images):
    """A small Keras CNN exported with tf2onnx: OpenVINO on the .onnx equals Keras on the model."""
    tf2onnx = pytest.importorskip("tf2onnx", reason="pip install tf2onnx to check a Keras -> ONNX export")
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(6, 3, activation="relu"),
                              keras.layers.DepthwiseConv2D(3, padding="same"),
                              keras.layers.GlobalAveragePooling2D()])
    spec = (tf.TensorSpec((None, 8, 8, 3), tf.float32, name="image"),)
    path = tmp_path / "keras.onnx"
    model.output_names = ["features"]
    tf2onnx.convert.from_keras(model, input_signature=spec, opset=17, output_path=str(path))
    ex = load_extractor(str(path), preprocess="tf")
    expected = np.asarray(model(get_preprocessor("tf")(images), training=False))
    np.testing.assert_allclose(ex.extract(images), expected, rtol=1e-4, atol=1e-5)
