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


def test_auto_falling_back_to_fp32_is_the_exact_fp32_path(simulate, monkeypatch, tmp_path, class_folders, tiny_model_file):
    from featurebench.extract import ExtractOptions, run_extract

    simulate("avx2")
    monkeypatch.setitem(auto.AUTO_CHOICES, "avx2", auto.AutoChoice("int8", True, "a test"))
    notes: list[str] = []
    out = tmp_path / "auto.h5"
    run_extract(ExtractOptions(str(class_folders), str(out), model=str(tiny_model_file), precision="auto",
                               precision_given=True),
                notify=notes.append)
    with h5py.File(out) as h5:
        # 12 images are too few to calibrate on: fp32, said so, with a full decode (the exact fp32 path,
        # as under --ray; the reduced decode comes with int8: tests/test_int8.py).
        assert h5.attrs["precision"] == "fp32" and h5.attrs["precision_requested"] == "auto"
        assert not h5.attrs["fast_decode"]
    assert any("--precision auto: fp32" in note for note in notes)


def test_auto_is_the_default_of_extract():
    from typer.testing import CliRunner

    from featurebench.cli import app
    from featurebench.extract import ExtractOptions

    opts = ExtractOptions("data", "out.h5")
    assert opts.precision == "auto" and not opts.precision_given
    shown = " ".join(CliRunner().invoke(app, ["extract", "--help"], terminal_width=200).stdout.split())
    assert "auto (the default)" in shown and "[default: auto]" in shown


def _features(path):
    with h5py.File(path) as h5:
        return h5["features"][()], dict(h5.attrs)


@pytest.mark.parametrize("cpu_class", [name for name in sorted(CLASSES) if name not in auto.AUTO_CHOICES])
def test_the_default_on_a_class_not_measured_is_the_fp32_run(simulate, cpu_class, tmp_path, class_folders,
                                                             tiny_model_file):
    import numpy as np

    from featurebench.extract import ExtractOptions, _load_extractor, _manifest, run_extract

    simulate(cpu_class)
    notes: list[str] = []
    details: list[str] = []
    default = ExtractOptions(str(class_folders), str(tmp_path / "default.h5"), model=str(tiny_model_file))
    exact = ExtractOptions(str(class_folders), str(tmp_path / "fp32.h5"), model=str(tiny_model_file),
                           precision="fp32", precision_given=True)
    fp32_notes: list[str] = []
    run_extract(default, notify=notes.append, detail=details.append)
    run_extract(exact, notify=fp32_notes.append)
    (got, attrs), (want, fp32_attrs) = _features(default.output), _features(exact.output)
    np.testing.assert_array_equal(got, want)
    assert attrs["precision"] == "fp32" and attrs["precision_requested"] == "auto (default)"
    assert not attrs["fast_decode"] and "precision_requested" not in fp32_attrs
    assert notes == fp32_notes and any(cpu_class in line for line in details)  # why fp32: only with -v
    # The same resume fingerprint as --precision fp32: a default run resumes (and merges with) an fp32 one.
    listing = default.list_images(default.source)
    fingerprints = [_manifest(opts, listing, _load_extractor(opts, listing)[1])["fingerprint"]
                    for opts in (default, exact)]
    assert fingerprints[0] == fingerprints[1]


def test_the_default_on_the_measured_class_is_quiet_on_a_small_source(simulate, monkeypatch, tmp_path,
                                                                      class_folders, tiny_model_file, capsys):
    import sys

    from featurebench.cli import main

    simulate("avx512-vnni")
    out = tmp_path / "small.h5"
    command = ["featurebench", "extract", str(class_folders), "-o", str(out), "--model", str(tiny_model_file), "-q"]
    monkeypatch.setattr(sys, "argv", command)
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code in (0, None)
    assert "precision" not in capsys.readouterr().err  # 12 images: too few to calibrate on, fp32, every run
    _, attrs = _features(out)
    assert attrs["precision"] == "fp32" and attrs["precision_requested"] == "auto (default)"
    monkeypatch.setattr(sys, "argv", [*command, "--force", "-v"])
    with pytest.raises(SystemExit):
        main()
    assert "--precision int8 needs at least" in capsys.readouterr().err  # -v says why
    monkeypatch.setattr(sys, "argv", [*command, "--force", "--precision", "auto"])
    with pytest.raises(SystemExit):
        main()
    assert "note: --precision auto: fp32 (--precision int8 needs" in capsys.readouterr().err  # asked: said


@pytest.mark.parametrize("scale", [{"ray": True}, {"shards": 2}])
def test_the_default_runs_fp32_under_ray_and_shards(simulate, tmp_path, class_folders, scale):
    from featurebench.errors import FeaturebenchError
    from featurebench.extract import ExtractOptions, _resolve_precision, run_extract

    flag = "--ray" if "ray" in scale else "--shards"
    for cpu_class in ("avx512-vnni", "avx2"):
        simulate(cpu_class)
        opts = ExtractOptions(str(class_folders), str(tmp_path / "out.h5"), model="resnet50", **scale)
        resolved, precision, notes, details = _resolve_precision(opts, opts.list_images(opts.source))
        assert (precision, resolved.fast_decode, details) == ("fp32", False, [])
        # One line, only where this CPU class would have run something else.
        assert notes == ([f"{flag}: fp32 with a full decode (the default --precision auto would run int8 with a "
                          f"reduced decode on this CPU class, not yet with {flag})."] if cpu_class == "avx512-vnni"
                         else [])
    if "ray" in scale:  # asked for explicitly, auto and int8 are still refused with --ray (before Ray starts)
        for precision in ("auto", "int8"):
            asked = ExtractOptions(str(class_folders), str(tmp_path / "out.h5"), model="resnet50", ray=True,
                                   precision=precision, precision_given=True)
            with pytest.raises(FeaturebenchError, match=f"--precision {precision} does not run with --ray"):
                run_extract(asked)


def test_the_default_is_quietly_fp32_where_int8_does_not_apply(simulate, tmp_path, class_folders):
    from featurebench.extract import ExtractOptions, _resolve_precision

    simulate("avx512-vnni")
    for model, engine in (("model.tflite", None), ("model.onnx", None), ("resnet50", "tensorflow")):
        opts = ExtractOptions(str(class_folders), str(tmp_path / "out.h5"), model=model, engine=engine)
        _, precision, notes, details = _resolve_precision(opts, opts.list_images(opts.source))
        assert precision == "fp32" and notes == [] and any("OpenVINO" in line for line in details)


def test_without_nncf_auto_runs_fp32_and_the_default_says_so_only_with_v(simulate, monkeypatch, tmp_path,
                                                                         class_folders):
    from featurebench.extract import ExtractOptions, _resolve_precision

    simulate("avx512-vnni")
    monkeypatch.setattr(auto, "_nncf_installed", lambda: False)  # the [int8] extra not installed
    for given in (False, True):
        opts = ExtractOptions(str(class_folders), str(tmp_path / "out.h5"), model="resnet50", precision_given=given)
        resolved, precision, notes, details = _resolve_precision(opts, opts.list_images(opts.source))
        assert precision == "fp32" and not resolved.fast_decode  # fp32 under auto: the exact fp32 path
        assert any("featurebench[int8]" in line for line in (notes if given else details))
        assert (details if given else notes) == []
