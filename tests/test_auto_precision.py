"""``--precision auto`` per CPU class (featurebench/extractors/auto.py), the classes simulated."""

from __future__ import annotations

import h5py
import pytest

from featurebench.extractors import auto, cpu

CLASSES = {  # the flags a CPU of each class reports
    "amx": {"avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8"},
    "avx512-vnni": {"avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16"},
    "avx512": {"avx2", "fma", "avx512f"},
    "avx2": {"avx2", "fma"},
    "other": set(),
}


@pytest.fixture()
def simulate(monkeypatch):
    """Make this CPU look like one of :data:`CLASSES` (by its flags, as cpu_class reads them)."""
    monkeypatch.setattr("featurebench.extractors.devices.visible_gpus", lambda: [])

    def as_class(name: str) -> None:
        flags = frozenset(CLASSES[name])
        monkeypatch.setattr(cpu, "cpu_flags", lambda cpuinfo="/proc/cpuinfo": flags)
        assert cpu.cpu_class() == name

    return as_class


@pytest.mark.parametrize("cpu_class", sorted(CLASSES))
def test_auto_runs_only_what_was_measured_on_each_class(simulate, cpu_class):
    simulate(cpu_class)
    resolved = auto.resolve_auto("resnet50", None)
    expected = auto.AUTO_CHOICES.get(cpu_class)
    if expected is None:  # not measured: the exact path
        assert (resolved.precision, resolved.fast_decode) == ("fp32", False)
        assert cpu_class in resolved.why and "fp32" in resolved.why
    else:
        assert (resolved.precision, resolved.fast_decode) == (expected.precision, expected.fast_decode)
        assert resolved.why == ""


def test_the_measured_class_picks_int8_and_the_others_fp32(simulate):
    # The table as measured on this project's machines (results/bench_extract_avx512-vnni.md).
    for name in CLASSES:
        simulate(name)
        resolved = auto.resolve_auto("resnet50", None)
        assert (resolved.precision, resolved.fast_decode) == (("int8", True) if name == "avx512-vnni"
                                                              else ("fp32", False))


def test_int8_only_for_keras_models_on_openvino(simulate, tmp_path):
    simulate("avx512-vnni")
    assert auto.resolve_auto("model.keras", None).precision == "int8"
    assert auto.resolve_auto("efficientnet_lite0", "openvino").precision == "int8"
    for model, engine in (("model.tflite", None), ("model.onnx", None), ("resnet50", "tensorflow")):
        resolved = auto.resolve_auto(model, engine)
        assert resolved.precision == "fp32" and "OpenVINO" in resolved.why


def test_auto_fast_decode_is_used_and_recorded(simulate, monkeypatch, tmp_path, class_folders, tiny_model_file):
    from featurebench.extract import ExtractOptions, run_extract

    simulate("avx2")
    monkeypatch.setitem(auto.AUTO_CHOICES, "avx2", auto.AutoChoice("int8", True, "a test"))
    notes: list[str] = []
    out = tmp_path / "auto.h5"
    run_extract(ExtractOptions(str(class_folders), str(out), model=str(tiny_model_file), precision="auto"),
                notify=notes.append)
    with h5py.File(out) as h5:
        # 12 images are too few to calibrate on: fp32, said so; the decode auto chose is recorded.
        assert h5.attrs["precision"] == "fp32" and h5.attrs["precision_requested"] == "auto"
        assert bool(h5.attrs["fast_decode"])
    assert any("--precision auto: fp32" in note for note in notes)
