"""--engine auto: TensorFlow on a visible GPU, OpenVINO on the CPU; fp16 and GPU batch sizes.

The device list is mocked (no GPU is lent to these tests); with a mocked GPU, TensorFlow still
runs on this machine's CPU, so what is checked is the selection, its record and its one line.
"""

from __future__ import annotations

import numpy as np
import pytest

from featurebench.errors import FeaturebenchError
from featurebench.extractors import devices, load_extractor
from featurebench.extractors.devices import choose_engine, gpu_batch_size


@pytest.fixture()
def no_gpu(monkeypatch):
    monkeypatch.setattr(devices, "visible_gpus", lambda: [])


@pytest.fixture()
def fake_gpu(monkeypatch):
    monkeypatch.setattr(devices, "visible_gpus", lambda: ["Fake GPU 16GB", "Second GPU"])
    monkeypatch.setattr(devices, "gpu_memory_mib", lambda: 16384)


def test_auto_picks_tensorflow_on_a_gpu_and_openvino_on_the_cpu(monkeypatch):
    monkeypatch.setattr(devices, "gpu_memory_mib", lambda: 81559)
    gpu = choose_engine("auto", gpus=["NVIDIA H200"])
    assert (gpu.engine, gpu.device, gpu.on_gpu, gpu.gpu_memory_mib) == ("tensorflow", "GPU:0 NVIDIA H200", True, 81559)
    assert gpu.reason == "--engine auto: TensorFlow on GPU:0 NVIDIA H200"
    cpu = choose_engine("auto", gpus=[])
    assert (cpu.engine, cpu.device, cpu.on_gpu) == ("openvino", "CPU", False)
    assert cpu.reason == "--engine auto: OpenVINO on the CPU (TensorFlow sees no GPU)"
    assert "+1 more not used" in choose_engine("auto", gpus=["A", "B"]).reason


def test_explicit_engines_are_kept(monkeypatch):
    def must_not_ask():
        raise AssertionError("openvino needs no GPU query")

    monkeypatch.setattr(devices, "visible_gpus", must_not_ask)
    assert choose_engine("openvino").engine == "openvino"
    assert choose_engine("tensorflow", gpus=[]).device == "CPU"
    monkeypatch.setattr(devices, "gpu_memory_mib", lambda: None)
    assert choose_engine("tensorflow", gpus=["G"]).on_gpu
    with pytest.raises(FeaturebenchError, match="--engine 'cuda': choose one of auto, openvino, tensorflow"):
        choose_engine("cuda")


def test_gpu_batch_size_follows_memory_input_size_and_precision():
    assert gpu_batch_size(16384, 224, "fp32", 16) == 128
    assert gpu_batch_size(8192, 224, "fp32", 16) == 64
    assert gpu_batch_size(8192, 224, "fp16", 16) == 128
    assert gpu_batch_size(8192, 448, "fp32", 16) == 16  # 4x the pixels: 16 fits
    assert gpu_batch_size(143771, 224, "fp16", 16) == 512  # capped
    assert gpu_batch_size(1024, 299, "fp32", 16) == 16  # floor
    assert gpu_batch_size(None, 224, "fp32", 32) == 32  # memory unknown: the model's default


def test_auto_without_gpu_runs_openvino_and_says_so(no_gpu, tiny_model_file):
    ex = load_extractor(str(tiny_model_file))
    prov = ex.provenance
    assert (prov["engine"], prov["device"]) == ("openvino", "CPU")
    assert prov["engine_selection"] == "--engine auto: OpenVINO on the CPU (TensorFlow sees no GPU)"
    assert ex.notices[0] == prov["engine_selection"]
    explicit = load_extractor(str(tiny_model_file), engine="openvino")
    assert "engine_selection" not in explicit.provenance and not explicit.notices
    with pytest.raises(FeaturebenchError, match="fp16.*runs on a GPU.*OpenVINO on the CPU"):
        load_extractor("efficientnet_lite0", weights="none", precision="fp16")


def test_auto_with_a_gpu_picks_tensorflow_gpu_batch_and_fp16(fake_gpu, tmp_path, class_folders):
    from featurebench.extract import ExtractOptions, run_extract
    from featurebench.store.reader import open_feature_file

    out = tmp_path / "gpu.h5"
    notes: list[str] = []
    run_extract(ExtractOptions(str(class_folders), str(out), model="efficientnet_lite0", weights="none"),
                notify=notes.append)
    attrs = open_feature_file(out).attrs
    assert (attrs["engine"], attrs["device"]) == ("tensorflow", "GPU:0 Fake GPU 16GB")
    assert notes[0] == attrs["engine_selection"] == "--engine auto: TensorFlow on GPU:0 Fake GPU 16GB (+1 more not used)"

    half = load_extractor("efficientnet_lite0", precision="fp16")
    assert half.provenance["precision"] == "fp16" and half.provenance["engine"] == "tensorflow"
    assert half.batch_size == 256  # 16 GiB / 4 / (32 MiB / 2): sized for the GPU, not the CPU's 16
    assert half.model.get_layer("stem_conv").dtype_policy.name == "mixed_float16"
    full = load_extractor("efficientnet_lite0", engine="openvino", batch_size=8)
    assert full.batch_size == 8 and full.provenance["precision"] == "fp32"
    images = np.random.default_rng(0).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    a, b = half.extract(images), full.extract(images)
    assert a.dtype == np.float32
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cosine.min() > 0.99, cosine
