"""``extract --ray``: the same file as a local extract; a killed driver resumes; a killed worker is
restarted by Ray and its block recomputed (featurebench.scale.distributor/worker/reader/writer)."""

from __future__ import annotations

import os
import re
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
    with pytest.raises(FeaturebenchError, match="needs 4 CPUs; the Ray cluster has 3"):
        run_extract(_options(images, tmp_path / "x.h5", tiny_tflite_file, ray=True, workers=4))
    with pytest.raises(FeaturebenchError, match="GPUs; the Ray cluster has 0"):
        run_extract(_options(images, tmp_path / "x.h5", tiny_tflite_file, ray=True, workers=1, gpus_per_worker=1))


def test_missing_ray_is_one_clear_message(images, tiny_tflite_file, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` sees without the [ray] extra
    with pytest.raises(FeaturebenchError, match=r"pip install 'featurebench\[ray\]'"):
        run_extract(_options(images, tmp_path / "x.h5", tiny_tflite_file, ray=True))
    assert not (tmp_path / "x.h5.partial").exists()


def test_node_lost_mid_extract_the_run_completes_with_the_local_rows(images, tiny_tflite_file, reference_tflite,
                                                                    ray_nodes, tmp_path):
    """A whole node of the simulated cluster dies (raylet, object store, the worker on it): Ray
    restarts that worker on the spare node and its block runs again; no row lost or doubled."""
    lost: list[int] = []

    def kill_a_node(done: int, total: int) -> None:
        if not lost and 0 < done < total - 4 * BATCH:
            pid = sorted(_actor_pids())[0]
            node = ray_nodes.node_of(pid)
            assert node is not None, "the worker runs on no worker node"
            ray_nodes.kill_node(node)
            lost.append(pid)

    run_extract(_options(images, tmp_path / "ray.h5", tiny_tflite_file, ray=True, workers=2), progress=kill_a_node)
    assert lost, "the run finished before a node could be killed"
    assert lost[0] not in _actor_pids()
    assert_same_file(tmp_path / "ray.h5", reference_tflite)


@pytest.mark.parametrize("flags, message", [
    ({"cpus_per_worker": 0}, "--cpus-per-worker 0: give at least 1 CPU"),
    ({"cpus_per_worker": -3}, "--cpus-per-worker -3"),
    ({"gpus_per_worker": float("nan")}, "--gpus-per-worker nan"),
    ({"gpus_per_worker": -1.0}, "--gpus-per-worker -1.0"),
    ({"workers": 0}, "--workers 0"),
    ({"memory_per_worker_mb": 0}, "--memory-per-worker 0"),
    ({"address": "not a host"}, "--address 'not a host' is not a Ray cluster address"),
    ({"address": "head:99999"}, "--address 'head:99999'"),
])
def test_bad_ray_requests_are_refused_before_anything_starts(flags, message, tiny_tflite_file, tmp_path,
                                                             monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # nothing may import Ray (or start a cluster) first
    with pytest.raises(FeaturebenchError, match=re.escape(message)):
        run_extract(_options(tmp_path / "no-such-source", tmp_path / "x.h5", tiny_tflite_file, ray=True, **flags))
    assert not list(tmp_path.iterdir())


def test_workers_are_bounded_by_memory(images, tiny_tflite_file, ray_cluster, tmp_path):
    # The cluster: 3 nodes x 1536 MB + the head's 512 MB. 3 x 2000 MB: more than it holds in total;
    # 2 x 2000 MB: less, but more than any one node holds.
    with pytest.raises(FeaturebenchError, match=r"needs 6000 MB of memory; the Ray cluster has 5120"):
        run_extract(_options(images, tmp_path / "x.h5", tiny_tflite_file, ray=True, workers=3,
                             memory_per_worker_mb=2000))
    with pytest.raises(FeaturebenchError, match=r"nodes hold 0 of them at once \(the largest has 1 CPUs, 0 GPUs, "
                                                r"1536 MB\)"):
        run_extract(_options(images, tmp_path / "x.h5", tiny_tflite_file, ray=True, workers=2,
                             memory_per_worker_mb=2000))
    from featurebench.scale.resources import RUNTIME_BYTES, worker_memory_bytes

    light = worker_memory_bytes({"model": str(tiny_tflite_file)})
    assert light == RUNTIME_BYTES["light"] + 3 * tiny_tflite_file.stat().st_size
    assert worker_memory_bytes({"model": "efficientnet_lite0"}) > RUNTIME_BYTES["keras"] > light


def test_spill_dir_is_refused_for_an_existing_cluster(images, tiny_tflite_file, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # refused before Ray is imported
    with pytest.raises(FeaturebenchError, match="object-spilling-directory"):
        run_extract(_options(images, tmp_path / "x.h5", tiny_tflite_file, ray=True, address="auto",
                             spill_dir=str(tmp_path / "spill")))


def test_worker_thread_limit_caps_openvino_and_litert(monkeypatch):
    """What a Ray worker sets (FEATUREBENCH_THREADS = its CPUs) is the thread count of OpenVINO's
    compiled model and of LiteRT, instead of every core of the node."""
    import openvino as ov
    import openvino.opset13 as ops

    from featurebench.extractors.openvino_engine import compile_for_cpu
    from featurebench.extractors.tflite_backend import default_threads
    from featurebench.scale.worker import THREAD_VARIABLES

    assert "FEATUREBENCH_THREADS" in THREAD_VARIABLES
    monkeypatch.setenv("FEATUREBENCH_THREADS", "1")
    param = ops.parameter([1, 4], ov.Type.f32)
    compiled = compile_for_cpu(ov.Model([ops.relu(param)], [param]))
    assert int(compiled.get_property("INFERENCE_NUM_THREADS")) == 1
    assert default_threads() == 1
