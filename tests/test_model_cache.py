"""The cache of converted OpenVINO models (featurebench/extractors/model_cache.py): a second
run of a registry model reads it, converts nothing and imports no TensorFlow; its features are
the first run's; a damaged entry is found by its digests and rebuilt."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

pytest.importorskip("openvino")

#: Registers ``tiny_cached``: a registry spec whose "weights file" is a whole tiny Keras model
#: (the builder imports Keras only when it is called, like the real registry builders).
REGISTER = """
from featurebench.extractors.registry import _REGISTRY, register
from featurebench.extractors.spec import ModelSpec

def build(weights, include_top):
    import keras
    return keras.models.load_model(weights)

if "tiny_cached" not in _REGISTRY:
    register(ModelSpec(name="tiny_cached", input_size=32, preprocessing="tf", feature_dim=8, builder=build))
"""

RUN = REGISTER + """
import json, sys
import featurebench.extractors.openvino_engine as engine
from featurebench.extract import ExtractOptions, run_extract

if sys.argv[1] == "forbid-conversion":
    def no_conversion(model):
        raise AssertionError("converted again although the cache holds this model")
    engine.convert_keras = no_conversion
notes = []
run_extract(ExtractOptions(source=sys.argv[2], output=sys.argv[3], model="tiny_cached", weights=sys.argv[4],
                           engine="openvino"), notify=notes.append)
print(json.dumps({"tensorflow": "tensorflow" in sys.modules, "keras": "keras" in sys.modules, "notes": notes}))
"""


def _run(mode: str, data: Path, out: Path, weights: Path, cache: Path) -> dict:
    env = {**os.environ, "FEATUREBENCH_CACHE": str(cache)}
    result = subprocess.run([sys.executable, "-c", RUN, mode, str(data), str(out), str(weights)],
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, tiny_model_file):
    """A first run that converts and stores the model, and a second one that may not convert."""
    from conftest import make_class_folders

    root = tmp_path_factory.mktemp("model_cache")
    data = make_class_folders(root / "data")
    cache = root / "cache"
    first = _run("allow-conversion", data, root / "first.h5", tiny_model_file, cache)
    second = _run("forbid-conversion", data, root / "second.h5", tiny_model_file, cache)
    return {"root": root, "data": data, "cache": cache, "first": first, "second": second}


def _features_and_attrs(path: Path) -> tuple[np.ndarray, dict]:
    with h5py.File(path) as h5:
        return h5["features"][:], dict(h5.attrs)


def test_second_run_reads_the_cache_and_imports_no_tensorflow(two_runs):
    assert two_runs["first"]["tensorflow"]  # the first run built the Keras model
    assert not two_runs["second"]["tensorflow"] and not two_runs["second"]["keras"]
    first, first_attrs = _features_and_attrs(two_runs["root"] / "first.h5")
    second, second_attrs = _features_and_attrs(two_runs["root"] / "second.h5")
    assert first_attrs["openvino_cache_hit"] == False and second_attrs["openvino_cache_hit"] == True  # noqa: E712
    assert first_attrs["openvino_cache"] == second_attrs["openvino_cache"]
    np.testing.assert_array_equal(first, second)
    # The provenance of the model is the first run's (TF/Keras versions, weights hash), not a blank.
    for key in ("weights_sha256", "tensorflow_version", "keras_version", "feature_dim", "input_size", "layer"):
        assert np.all(first_attrs[key] == second_attrs[key]) and first_attrs[key] is not None, key


@pytest.fixture()
def cache_copy(two_runs, tmp_path, monkeypatch):
    import shutil

    cache = tmp_path / "cache"
    shutil.copytree(two_runs["cache"], cache)
    monkeypatch.setenv("FEATUREBENCH_CACHE", str(cache))
    exec(REGISTER, {})
    entry = next((cache / "openvino").iterdir())
    return entry


@pytest.mark.parametrize("damage", ["flip a weight byte", "edit the record"])
def test_a_damaged_entry_is_detected_and_rebuilt(two_runs, cache_copy, tmp_path, tiny_model_file, damage):
    from featurebench.extract import ExtractOptions, run_extract

    entry = cache_copy
    if damage == "flip a weight byte":  # same size, same name: only the digest can tell
        data = bytearray((entry / "model.bin").read_bytes())
        data[len(data) // 2] ^= 0xFF
        (entry / "model.bin").write_bytes(bytes(data))
    else:
        record = json.loads((entry / "entry.json").read_text())
        record["body"]["provenance"]["layer"] = "someone else's"
        (entry / "entry.json").write_text(json.dumps(record))
    notes: list[str] = []
    out = tmp_path / "again.h5"
    run_extract(ExtractOptions(source=str(two_runs["data"]), output=str(out), model="tiny_cached",
                               weights=str(tiny_model_file), engine="openvino"), notify=notes.append)
    assert any("damaged" in note and str(entry) in note for note in notes), notes
    features, attrs = _features_and_attrs(out)
    assert attrs["openvino_cache_hit"] == False  # noqa: E712 - rebuilt, not read
    np.testing.assert_array_equal(features, _features_and_attrs(two_runs["root"] / "first.h5")[0])
    from featurebench.extractors import model_cache

    record = json.loads((entry / "entry.json").read_text())
    found, notes = model_cache.load(record["body"]["identity"])  # stored again, whole
    assert found is not None and notes == []


def test_identity_follows_the_weights_bytes_seed_and_precision(tmp_path, monkeypatch):
    from featurebench.extractors import get_spec, model_cache

    monkeypatch.setenv("FEATUREBENCH_CACHE", str(tmp_path / "cache"))
    spec = get_spec("resnet50")
    weights = tmp_path / "w.weights.h5"
    weights.write_bytes(b"one")
    base = model_cache.identity(spec, str(weights), None, None, 42, "fp32")
    assert base["weights_file_sha256"] and base["cpu_class"] and base["openvino_version"]
    paths = {model_cache.entry_path(base)}
    for variant in (model_cache.identity(spec, str(weights), None, None, 42, "bf16"),
                    model_cache.identity(spec, str(weights), "conv5_block3_out", None, 42, "fp32"),
                    model_cache.identity(spec, str(weights), None, "max", 42, "fp32"),
                    model_cache.identity(spec, "none", None, None, 42, "fp32"),
                    model_cache.identity(spec, "none", None, None, 7, "fp32")):
        paths.add(model_cache.entry_path(variant))
    weights.write_bytes(b"two")  # same name, other bytes
    paths.add(model_cache.entry_path(model_cache.identity(spec, str(weights), None, None, 42, "fp32")))
    assert len(paths) == 7
    # Nothing to key on: missing weights, or a top layer loaded from another file.
    assert model_cache.identity(spec, str(tmp_path / "missing.h5"), None, None, 42, "fp32") is None
    assert model_cache.identity(get_spec("vgg16"), "imagenet", "fc1", None, 42, "fp32") is None
    assert model_cache.identity(spec, "none", None, None, 42, "fp16") is None


def test_no_gpu_driver_means_no_tensorflow_to_ask(tmp_path, monkeypatch):
    from featurebench.extractors import devices

    monkeypatch.setattr(devices.sys, "platform", "linux")
    assert not devices.gpu_driver_present(tmp_path)
    (tmp_path / "nvidia0").touch()
    assert devices.gpu_driver_present(tmp_path)
    monkeypatch.setattr(devices.sys, "platform", "darwin")  # only TensorFlow can tell there
    assert devices.gpu_driver_present(tmp_path / "empty")
