"""The OpenVINO engine (default for Keras models) gives TensorFlow's features, and says so.

Speed is measured in scripts/bench_extract.py, not here: these tests check that the fast
engine is a faithful one (features equal to the TensorFlow reference within float32
rounding, on real ImageNet weights and real photos), that any batch size works, and that
the engine is recorded in the file and in the resume fingerprint.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from featurebench.errors import FeaturebenchError


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def _sample_photos(shared_dir: Path, size: tuple[int, int]) -> np.ndarray:
    from featurebench.data.pipeline import DecodeOptions, load_image

    photos = sorted((shared_dir / "datasets" / "flowers17").rglob("*.jpg"))[::113]
    photos += sorted((shared_dir / "images" / "samples").glob("*.*[gp]"))  # .jpg, .bmp
    if len(photos) < 4:
        pytest.skip("needs the real photos in ../shared/images/samples (a checkout beside the repository)")
    return np.stack([load_image(p, DecodeOptions(size)) for p in photos])


def test_openvino_matches_tensorflow_on_real_weights_and_photos(shared_dir):
    from featurebench.extractors import load_extractor

    reference = load_extractor("efficientnet_lite0", engine="tensorflow")
    fast = load_extractor("efficientnet_lite0", engine="openvino")  # what auto picks on a CPU: test_devices.py
    assert fast.provenance["engine"] == "openvino" and reference.provenance["engine"] == "tensorflow"
    assert fast.provenance["openvino_version"]
    images = _sample_photos(shared_dir, reference.input_size)
    a, b = reference.extract(images), fast.extract(images)
    assert b.dtype == np.float32 and b.shape == a.shape == (len(images), 1280)
    assert _cosines(a, b).min() > 0.99999
    np.testing.assert_allclose(b, a, rtol=0, atol=1e-4 * np.abs(a).max())


def test_openvino_runs_any_batch_size_and_returns_fresh_arrays():
    from featurebench.extractors import load_extractor

    extractor = load_extractor("mobilenet", weights="none", seed=1, layer="conv_pw_13_relu", pool="avg")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (7, 224, 224, 3), dtype=np.uint8)
    whole = extractor.extract(images)
    first, rest = extractor.extract(images[:5]), extractor.extract(images[5:])
    assert first.shape == (5, 1024) and rest.shape == (2, 1024)
    # The first result must not be overwritten by the next call on the same infer request.
    np.testing.assert_allclose(np.concatenate([first, rest]), whole, rtol=1e-5, atol=1e-6 * np.abs(whole).max())
    assert not np.shares_memory(first, rest)


def test_engine_is_recorded_and_splits_the_resume_fingerprint(tmp_path, class_folders, tiny_model_file):
    import h5py

    from featurebench.data.sources import list_source
    from featurebench.extract import ExtractOptions, _manifest, run_extract
    from featurebench.info import describe

    files = {}
    for engine in ("openvino", "tensorflow"):
        files[engine] = tmp_path / f"{engine}.h5"
        run_extract(ExtractOptions(str(class_folders), str(files[engine]), model=str(tiny_model_file), engine=engine))
    with h5py.File(files["openvino"]) as fast, h5py.File(files["tensorflow"]) as ref:
        assert fast.attrs["engine"] == "openvino" and ref.attrs["engine"] == "tensorflow"
        assert "openvino_version" in fast.attrs and "openvino_version" not in ref.attrs
        assert list(fast["paths"][()]) == list(ref["paths"][()])
        np.testing.assert_allclose(fast["features"][()], ref["features"][()], rtol=1e-5, atol=1e-6)
    shown = {line.split(":", 1)[0].strip(): line.split(":", 1)[1].strip()
             for line in describe(files["openvino"]).splitlines() if line.startswith("  ") and ":" in line}
    assert shown["engine"] == "openvino" and shown["precision"] == "fp32" and shown["openvino_version"]
    listing = list_source(str(class_folders))
    provenance = {"model": "m", "weights": "w", "layer": "l", "pool": "p", "preprocessing": "none",
                  "input_size": [32, 32], "feature_dim": 8}
    options = ExtractOptions(str(class_folders), "x.h5")
    prints = {_manifest(options, listing, {**provenance, "engine": e})["fingerprint"] for e in ("openvino", "tensorflow")}
    assert len(prints) == 2


def test_engine_choice_is_checked(tmp_path, tiny_model_file, coral_extractor_path):
    from featurebench.extractors import load_extractor

    with pytest.raises(FeaturebenchError, match="--engine 'onnx'"):
        load_extractor(str(tiny_model_file), engine="onnx")
    with pytest.raises(FeaturebenchError, match="LiteRT"):
        load_extractor(str(coral_extractor_path), engine="openvino")
    assert load_extractor(str(coral_extractor_path)).provenance["backend"] == "litert"


def test_conversion_failure_names_the_fallback(monkeypatch, tiny_model_file):
    from featurebench.extractors import load_extractor
    from featurebench.extractors.openvino_engine import import_openvino

    openvino = import_openvino()

    def refuse(*args, **kwargs):
        raise RuntimeError("unsupported operation FancyOp")

    monkeypatch.setattr(openvino, "convert_model", refuse)
    with pytest.raises(FeaturebenchError, match="FancyOp.*--engine tensorflow"):
        load_extractor(str(tiny_model_file))
    assert load_extractor(str(tiny_model_file), engine="tensorflow").provenance["engine"] == "tensorflow"


def test_cli_engine_flag(tmp_path, class_folders, tiny_model_file, monkeypatch, capsys):
    import sys

    import h5py

    from featurebench.cli import main

    def run(*args: str) -> int:
        monkeypatch.setattr(sys, "argv", ["featurebench", "extract", str(class_folders), "--model",
                                          str(tiny_model_file), *args])
        with pytest.raises(SystemExit) as exit_info:
            main()
        return exit_info.value.code

    out = tmp_path / "cli.h5"
    assert run("-o", str(out), "--engine", "tensorflow") in (0, None)
    with h5py.File(out) as h5:
        assert h5.attrs["engine"] == "tensorflow"
    assert run("-o", str(tmp_path / "bad.h5"), "--engine", "torch") == 2
    assert "error: --engine 'torch': choose one of auto, openvino, tensorflow" in capsys.readouterr().err
    assert not (tmp_path / "bad.h5").exists()


def test_conversion_sends_no_telemetry_and_forks_nothing(tiny_model_file):
    """A fresh interpreter, as a user's: converting a model starts no process (OpenVINO telemetry is off)."""
    import os
    import subprocess
    import sys

    code = f"""
import multiprocessing, os, sys
started = []
original = multiprocessing.process.BaseProcess.start
multiprocessing.process.BaseProcess.start = lambda self: started.append(self) or original(self)
from featurebench.extractors import load_extractor
import numpy as np
extractor = load_extractor({str(tiny_model_file)!r}, engine="openvino")
extractor.extract(np.zeros((2, 32, 32, 3), np.uint8))
assert extractor.provenance["engine"] == "openvino"
print("telemetry module:", sys.modules.get("openvino_telemetry"), "processes started:", len(started))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "HOME": str(tiny_model_file.parent)})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "telemetry module: None processes started: 0" in result.stdout
    assert not (tiny_model_file.parent / "intel").exists()  # no telemetry client id written to $HOME
