"""``--precision int8``: NNCF quantisation calibrated on the source's own train images, cached.

Mechanics only, no timing (speed and downstream accuracy: ``scripts/bench_extract.py --int8``):
the calibration sample is the recorded, reproducible front of the train slice; a second run
reuses the cached model instead of recalibrating; a source too small is refused (``auto``
runs fp32 instead); int8 features of a tiny model stay close to fp32; calibrating in a fresh
interpreter forks no telemetry process and keeps NNCF's output off stdout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import make_class_folders
from featurebench.errors import FeaturebenchError

pytest.importorskip("nncf", reason="the [int8] extra (NNCF) is not installed: pip install -e '.[int8]'")


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_calibration_sample_is_the_front_of_the_train_slice():
    from featurebench.extractors.int8 import MIN_CALIBRATION_IMAGES, calibration_sample

    candidates = [[f"img{i}.jpg", 0, "corrupt" if i % 10 == 0 else None] for i in range(400)]
    usable = [c[0] for c in candidates if not c[2]]  # 360
    sample = calibration_sample(candidates, 0.75, size=300)
    assert sample.calibration == usable[:int(0.9 * 270)]  # at most 90% of the 270 train images
    assert sample.holdout == usable[270:270 + 64]  # test slice only, never a calibration image
    assert sample == calibration_sample(candidates, 0.75, size=300)
    assert calibration_sample(candidates, 0.75, size=120).calibration == usable[:120]
    few = candidates[:90]  # 81 usable, 60 train, 54 < 64 calibration images
    with pytest.raises(FeaturebenchError, match=f"at least {MIN_CALIBRATION_IMAGES} calibration images.*"
                                                "gives 54 .*--precision fp32"):
        calibration_sample(few, 0.75)


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory, tiny_model_file):
    """One int8 extraction through the CLI in a fresh interpreter (as a user runs it), which
    fills a private cache; records the processes it started and what it printed where."""
    root = tmp_path_factory.mktemp("int8")
    data = make_class_folders(root / "data", per_class=80, size=(40, 56))  # 160 images: 64 of the 120 train images calibrate
    cache, out = root / "cache", root / "int8.h5"
    code = f"""
import multiprocessing, sys
started = []
original = multiprocessing.process.BaseProcess.start
multiprocessing.process.BaseProcess.start = lambda self: started.append(self) or original(self)
sys.argv = ["featurebench", "extract", {str(data)!r}, "-o", {str(out)!r}, "--model", {str(tiny_model_file)!r},
            "--precision", "int8"]
from featurebench.cli import main
try:
    main()
except SystemExit as exit_info:
    assert exit_info.code in (0, None), exit_info.code
import nncf.telemetry.wrapper as wrapper
print("telemetry:", sys.modules.get("openvino_telemetry"), "stub:", isinstance(wrapper.telemetry, wrapper.NNCFTelemetryStub),
      file=sys.stderr)
print("processes started:", len(started), file=sys.stderr)
"""
    env = {**os.environ, "HOME": str(root), "FEATUREBENCH_CACHE": str(cache)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return {"data": data, "cache": cache, "out": out, "stdout": result.stdout, "stderr": result.stderr}


def test_calibration_forks_nothing_and_keeps_stdout_for_results(calibrated):
    assert "telemetry: None stub: True" in calibrated["stderr"]  # NNCF's no-op stand-in, as OpenVINO's
    assert "processes started: 0" in calibrated["stderr"]
    assert not (calibrated["out"].parent / "intel").exists()  # no telemetry client id written to $HOME
    assert "Calibrating int8 on 64 train images" in calibrated["stderr"]
    assert "Statistics collection" in calibrated["stderr"]  # NNCF's progress, on stderr
    assert "Statistics" not in calibrated["stdout"] and "INFO" not in calibrated["stdout"]


def test_int8_records_its_calibration_and_stays_close_to_fp32(calibrated, tmp_path, tiny_model_file):
    import h5py

    from featurebench.extract import ExtractOptions, run_extract

    reference = tmp_path / "fp32.h5"
    run_extract(ExtractOptions(str(calibrated["data"]), str(reference), model=str(tiny_model_file)))
    with h5py.File(calibrated["out"]) as h5, h5py.File(reference) as ref:
        attrs = dict(h5.attrs)
        paths = [p.decode() for p in h5["paths"][()]]
        assert paths == [p.decode() for p in ref["paths"][()]]
        cos = _cosines(ref["features"][()], h5["features"][()])
        assert not np.array_equal(ref["features"][()], h5["features"][()])  # really quantised
    assert attrs["precision"] == "int8" and attrs["engine"] == "openvino" and attrs["nncf_version"]
    # The calibration set is recorded, and is the front of the stored train slice (no test row).
    recorded = json.loads(attrs["int8_calibration_paths"])
    assert attrs["int8_calibration_images"] == len(recorded) == 64
    assert recorded == paths[:64] and 64 <= attrs["split_index"]
    assert attrs["int8_holdout_images"] == 40 and attrs["int8_cache_hit"] == False  # noqa: E712 - numpy bool
    assert 0.98 < attrs["int8_cosine_min"] <= attrs["int8_cosine_mean"] < 1.0
    assert cos.min() > 0.98 and cos.mean() > 0.99, (cos.min(), cos.mean())
    from featurebench.info import describe

    shown = describe(calibrated["out"])
    assert "precision:    int8" in shown and f"int8_cosine_min: {attrs['int8_cosine_min']}" in shown
    entry = Path(attrs["int8_cache"])
    assert entry.parent.parent == calibrated["cache"] and (entry / "model.xml").is_file()
    assert attrs["int8_calibration_digest"].startswith(entry.name)


def test_second_run_uses_the_cache_and_gives_the_same_rows(calibrated, tmp_path, tiny_model_file, monkeypatch):
    import h5py

    import featurebench.extractors.int8 as int8
    from featurebench.extract import ExtractOptions, _load_extractor, _manifest, run_extract

    monkeypatch.setenv("FEATUREBENCH_CACHE", str(calibrated["cache"]))

    def no_recalibration(*args, **kwargs):
        raise AssertionError("recalibrated although the cache holds this model")

    monkeypatch.setattr(int8, "quantize", no_recalibration)
    again = tmp_path / "again.h5"
    notes: list[str] = []
    opts = ExtractOptions(str(calibrated["data"]), str(again), model=str(tiny_model_file), precision="int8")
    run_extract(opts, notify=notes.append)
    assert any("int8: cached calibration" in note for note in notes)
    with h5py.File(calibrated["out"]) as first, h5py.File(again) as second:
        assert second.attrs["int8_cache_hit"] == True  # noqa: E712 - numpy bool
        digest, paths = second.attrs["int8_calibration_digest"], json.loads(second.attrs["int8_calibration_paths"])
        assert digest == first.attrs["int8_calibration_digest"]
        np.testing.assert_array_equal(second["features"][()], first["features"][()])
    # Other calibration images (another seed's shuffle) make another model, and another resume fingerprint.
    monkeypatch.setattr(int8, "quantize", lambda model, images, prepare: model)  # stand-in: a fast "quantiser"
    listing = opts.list_images(opts.source)
    other = ExtractOptions(str(calibrated["data"]), "x.h5", model=str(tiny_model_file), precision="int8", seed=7)
    provenance = _load_extractor(other, listing)[1]
    assert provenance["int8_calibration_digest"] != digest and provenance["int8_calibration_paths"] != paths
    same_seed = _load_extractor(opts, listing)[1]
    assert _manifest(other, listing, provenance)["settings"]["int8_calibration"] == provenance["int8_calibration_digest"]
    assert _manifest(opts, listing, same_seed)["settings"]["int8_calibration"] == digest


def test_damaged_cache_entry_is_made_again(calibrated, tmp_path, tiny_model_file, monkeypatch):
    import shutil

    import h5py

    import featurebench.extractors.int8 as int8
    from featurebench.extract import ExtractOptions, _load_extractor

    shutil.copytree(calibrated["cache"], tmp_path / "cache")
    monkeypatch.setenv("FEATUREBENCH_CACHE", str(tmp_path / "cache"))
    with h5py.File(calibrated["out"]) as h5:
        entry = tmp_path / "cache" / "int8" / Path(h5.attrs["int8_cache"]).name
    (entry / "model.xml").write_text("<net", encoding="utf-8")  # a run killed mid-copy, a full disk...
    made = []
    monkeypatch.setattr(int8, "quantize", lambda model, images, prepare: made.append(len(images)) or model)
    opts = ExtractOptions(str(calibrated["data"]), "x.h5", model=str(tiny_model_file), precision="int8")
    provenance = _load_extractor(opts, opts.list_images(opts.source))[1]
    assert made == [64] and provenance["int8_cache_hit"] is False and provenance["int8_cache"] == str(entry)
    assert _load_extractor(opts, opts.list_images(opts.source))[1]["int8_cache_hit"] is True


def test_cache_entry_damaged_at_the_same_size_is_made_again(calibrated, tmp_path, tiny_model_file, monkeypatch):
    """A model.bin with one byte changed (same size, still loadable) is not used: its bytes differ
    from the digest the entry recorded (featurebench.store.identity, purpose ``cache``)."""
    import shutil

    import h5py

    import featurebench.extractors.int8 as int8
    from featurebench.extract import ExtractOptions, _load_extractor

    shutil.copytree(calibrated["cache"], tmp_path / "cache")
    monkeypatch.setenv("FEATUREBENCH_CACHE", str(tmp_path / "cache"))
    with h5py.File(calibrated["out"]) as h5:
        entry = tmp_path / "cache" / "int8" / Path(h5.attrs["int8_cache"]).name
    recorded = json.loads((entry / "calibration.json").read_text())["files"]
    assert set(recorded) == {"model.xml", "model.bin"}
    data = bytearray((entry / "model.bin").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (entry / "model.bin").write_bytes(bytes(data))
    made = []
    monkeypatch.setattr(int8, "quantize", lambda model, images, prepare: made.append(len(images)) or model)
    opts = ExtractOptions(str(calibrated["data"]), "x.h5", model=str(tiny_model_file), precision="int8")
    _, provenance, notices = _load_extractor(opts, opts.list_images(opts.source))
    assert made == [64] and provenance["int8_cache_hit"] is False
    assert any("is not used (cache: " in note and "model.bin" in note for note in notices), notices


def test_too_few_images_refused_and_auto_runs_fp32(tmp_path, class_folders, tiny_model_file, monkeypatch, capsys):
    import h5py

    import featurebench.extractors.cpu as cpu
    from featurebench.cli import main
    from featurebench.extract import ExtractOptions, run_extract
    from featurebench.extractors.int8 import MIN_CALIBRATION_IMAGES

    monkeypatch.setenv("FEATUREBENCH_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "small.h5"
    monkeypatch.setattr(sys, "argv", ["featurebench", "extract", str(class_folders), "-o", str(out), "--model",
                                      str(tiny_model_file), "--precision", "int8"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    assert f"needs at least {MIN_CALIBRATION_IMAGES} calibration images" in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "cache").exists()
    # auto on the measured CPU class: too few images to calibrate on, so fp32, and said so.
    monkeypatch.setattr(cpu, "cpu_class", lambda flags=None: "avx512-vnni")
    notes: list[str] = []
    run_extract(ExtractOptions(str(class_folders), str(out), model=str(tiny_model_file), precision="auto"),
                notify=notes.append)
    with h5py.File(out) as h5:
        assert h5.attrs["precision"] == "fp32" and h5.attrs["precision_requested"] == "auto"
        assert "int8_calibration_digest" not in h5.attrs
    assert any(note.startswith("--precision auto: fp32 (--precision int8 needs") for note in notes)
    # auto on a class where int8 was not measured: fp32 without trying.
    monkeypatch.setattr(cpu, "cpu_class", lambda flags=None: "avx2")
    notes.clear()
    run_extract(ExtractOptions(str(class_folders), str(out), model=str(tiny_model_file), precision="auto",
                               force=True), notify=notes.append)
    assert any("this CPU class, avx2" in note for note in notes)


def test_int8_only_where_it_applies(tiny_model_file, coral_extractor_path):
    from featurebench.extractors import load_extractor
    from featurebench.extractors.cpu import cpu_class

    with pytest.raises(FeaturebenchError, match="--precision int8 runs on the OpenVINO engine"):
        load_extractor(str(tiny_model_file), precision="int8", engine="tensorflow")
    with pytest.raises(FeaturebenchError, match="applies to Keras models"):
        load_extractor(str(coral_extractor_path), precision="int8")
    extractor = load_extractor(str(tiny_model_file), precision="int8")
    with pytest.raises(FeaturebenchError, match="only once calibrated"):
        extractor.extract(np.zeros((1, 32, 32, 3), np.uint8))
    assert cpu_class(frozenset({"avx2", "avx512f", "avx512_vnni", "amx_int8"})) == "amx"
    assert cpu_class(frozenset({"avx2", "avx512f", "avx512_vnni", "avx512_bf16"})) == "avx512-vnni"
    assert cpu_class(frozenset({"avx2", "fma"})) == "avx2"
