"""``extract --ray``: the same file as a local extract; a killed driver resumes; a killed worker is
restarted by Ray and its block recomputed (featurebench.scale.distributor/worker/reader/writer)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import make_class_folders
from featurebench.errors import FeaturebenchError
from featurebench.extract import ExtractOptions, run_extract
from featurebench.scale.distributor import block_ranges
from featurebench.scale.writer import in_global_order

FLUSH, BATCH = 16, 8


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    """Large-ish JPEGs (decoding takes time to interrupt), an unreadable file and a duplicate."""
    root = make_class_folders(tmp_path_factory.mktemp("scale") / "data", classes=("a", "b", "c"), per_class=50,
                              size=(480, 640))
    (root / "a" / "broken.jpg").write_bytes(b"not an image at all")
    (root / "b" / "copy_of_a0.jpg").write_bytes((root / "a" / "a_000.jpg").read_bytes())
    return root


def _options(source: Path, output: Path, model: Path, **kwargs) -> ExtractOptions:
    return ExtractOptions(str(source), str(output), str(model), batch_size=BATCH, flush_rows=FLUSH, **kwargs)


@pytest.fixture(scope="module")
def reference(images, tiny_model_file, tmp_path_factory) -> Path:
    """The same extraction run locally, without Ray (Keras model)."""
    output = tmp_path_factory.mktemp("ref") / "local.h5"
    run_extract(_options(images, output, tiny_model_file))
    return output


@pytest.fixture(scope="module")
def reference_tflite(images, tiny_tflite_file, tmp_path_factory) -> Path:
    """The same extraction run locally with the TFLite model (which workers load in well under a second)."""
    output = tmp_path_factory.mktemp("ref") / "local_tflite.h5"
    run_extract(_options(images, output, tiny_tflite_file))
    return output


def assert_same_file(path: Path, reference: Path) -> None:
    """Rows, order, labels, skipped, duplicates and split equal; features within float tolerance."""
    with h5py.File(path, "r") as got, h5py.File(reference, "r") as ref:
        for name in ("paths", "labels", "label_names", "skipped/path", "skipped/reason", "ignored/path",
                     "duplicates/row", "duplicates/first_row", "duplicates/path"):
            assert list(got[name][()]) == list(ref[name][()]), name
        for key in ("n_rows", "n_skipped", "n_candidates", "n_duplicates", "split_index", "model", "seed",
                    "feature_dim", "weights_sha256", "complete"):
            assert got.attrs[key] == ref.attrs[key], key
        np.testing.assert_allclose(got["features"][()], ref["features"][()], rtol=1e-5, atol=1e-6)
        assert len(set(got["paths"][()])) == got.attrs["n_rows"]


def test_in_global_order_reorders_and_blocks_cover_the_range():
    pairs = [(2, ["c"]), (0, ["a0", "a1"]), (1, ["b"])]
    assert list(in_global_order(pairs)) == ["a0", "a1", "b", "c"]
    assert block_ranges(5, 20, 8) == [(5, 13), (13, 20)]


def test_ray_extract_equals_local_extract(images, tiny_model_file, reference, ray_cluster, tmp_path):
    # The Keras model: TensorFlow + OpenVINO load inside the worker process. One worker (each
    # imports TensorFlow); the two-worker runs below use the TFLite model.
    summary = run_extract(_options(images, tmp_path / "ray.h5", tiny_model_file, ray=True, workers=1))
    assert summary.n_skipped == 1 and summary.n_duplicates == 1
    assert "not an image" in summary.skipped[0][1]
    assert_same_file(tmp_path / "ray.h5", reference)
    assert not (tmp_path / "ray.h5.partial").exists()


def _actor_pids() -> set[int]:
    import psutil

    return {p.pid for p in psutil.process_iter(["cmdline"])
            if any("ray::ExtractWorker" in part for part in (p.info["cmdline"] or []))}


def test_killed_worker_is_restarted_and_its_block_recomputed(images, tiny_tflite_file, reference_tflite,
                                                             ray_cluster, tmp_path):
    killed: list[tuple[int, int]] = []

    def kill_one(done: int, total: int) -> None:
        if not killed and 0 < done < total - 4 * BATCH:
            pid = sorted(_actor_pids())[0]
            os.kill(pid, signal.SIGKILL)
            killed.append((pid, done))

    run_extract(_options(images, tmp_path / "ray.h5", tiny_tflite_file, ray=True, workers=2), progress=kill_one)
    assert killed, "the run finished before a worker could be killed"
    assert killed[0][0] not in _actor_pids()
    assert_same_file(tmp_path / "ray.h5", reference_tflite)


def test_killed_driver_resumes_from_the_journal(images, tiny_tflite_file, reference_tflite, ray_cluster, tmp_path):
    output = tmp_path / "ray.h5"
    partial = output.with_name("ray.h5.partial")
    command = [sys.executable, "-m", "featurebench", "extract", str(images), "-o", str(output), "--model",
               str(tiny_tflite_file), "--batch-size", str(BATCH), "--flush-rows", str(FLUSH), "--ray",
               "--workers", "1", "--address", ray_cluster]
    driver = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline and driver.poll() is None:
        if partial.is_dir() and any(partial.glob("rows-*.npz")):
            driver.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    _, stderr = driver.communicate(timeout=60)
    assert driver.returncode == -signal.SIGKILL, stderr
    assert not output.exists(), "the run finished before the driver could be killed"
    resumed = run_extract(_options(images, output, tiny_tflite_file, ray=True, workers=1))
    assert resumed.resumed_from > 0
    assert_same_file(output, reference_tflite)


def test_ray_worker_load_error_is_one_clear_message(images, ray_cluster, tmp_path):
    with pytest.raises(FeaturebenchError, match="not_a_model.keras"):
        run_extract(_options(images, tmp_path / "x.h5", tmp_path / "not_a_model.keras", ray=True, workers=1))


def test_more_workers_than_the_cluster_holds_is_refused(images, tiny_tflite_file, ray_cluster, tmp_path):
    with pytest.raises(FeaturebenchError, match="needs 3 CPUs; the Ray cluster has 2"):
        run_extract(_options(images, tmp_path / "x.h5", tiny_tflite_file, ray=True, workers=3))
    with pytest.raises(FeaturebenchError, match="GPUs; the Ray cluster has 0"):
        run_extract(_options(images, tmp_path / "x.h5", tiny_tflite_file, ray=True, workers=1, gpus_per_worker=1))


def test_missing_ray_is_one_clear_message(images, tiny_tflite_file, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` sees without the [ray] extra
    with pytest.raises(FeaturebenchError, match=r"pip install 'featurebench\[ray\]'"):
        run_extract(_options(images, tmp_path / "x.h5", tiny_tflite_file, ray=True))
    assert not (tmp_path / "x.h5.partial").exists()
