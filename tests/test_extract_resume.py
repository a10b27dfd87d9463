"""Interrupting ``featurebench extract`` (SIGKILL, Ctrl+C) and resuming gives the uninterrupted result."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import default_sigint, make_class_folders
from featurebench.extract import ExtractOptions, run_extract


@pytest.fixture(scope="module")
def big_folders(tmp_path_factory) -> Path:
    """Enough large JPEGs that decoding takes a few seconds: time to interrupt mid-run. An
    interrupted run takes about a second to exit (the last batch is flushed, the interpreter
    with TensorFlow winds down), so the run must outlast that by a margin on a fast decoder."""
    root = tmp_path_factory.mktemp("resume") / "data"
    return make_class_folders(root, classes=("a", "b", "c"), per_class=300, size=(480, 640))


def _command(source: Path, output: Path, model: Path) -> list[str]:
    return [sys.executable, "-m", "featurebench", "extract", str(source), "-o", str(output),
            "--model", str(model), "--flush-rows", "16", "--batch-size", "8", "--workers", "1",
            "--precision", "fp32"]  # the exact path: auto's int8 + reduced decode could finish before the signal


def _start_and_signal(source: Path, output: Path, model: Path, sig: int) -> subprocess.CompletedProcess:
    """Start extract in a subprocess, send ``sig`` once the first shard is on disk, wait for it."""
    partial = output.with_name(output.name + ".partial")
    process = subprocess.Popen(_command(source, output, model), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, preexec_fn=default_sigint)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if partial.is_dir() and any(partial.glob("rows-*.npz")):
            process.send_signal(sig)
            break
        time.sleep(0.01)
    stdout, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def _rows(path: Path) -> tuple[list[bytes], np.ndarray, np.ndarray]:
    with h5py.File(path, "r") as h5:
        return list(h5["paths"][()]), h5["labels"][()], h5["features"][()]


@pytest.fixture(scope="module")
def reference(big_folders, tiny_model_file, tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("ref") / "ref.h5"
    run_extract(ExtractOptions(str(big_folders), str(output), str(tiny_model_file), batch_size=8, flush_rows=16,
                               precision="fp32"))
    return output


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["sigkill", "sigint"])
def test_interrupted_run_resumes_to_identical_rows(sig, big_folders, tiny_model_file, reference, tmp_path):
    output = tmp_path / "out.h5"
    interrupted = _start_and_signal(big_folders, output, tiny_model_file, sig)
    assert not output.exists(), "the run finished before it could be interrupted"
    partial = output.with_name("out.h5.partial")
    assert partial.is_dir() and any(partial.glob("rows-*.npz"))
    if sig == signal.SIGINT:
        assert interrupted.returncode == 130
        assert "run the same command again to resume" in interrupted.stderr
    else:
        assert interrupted.returncode == -signal.SIGKILL

    resumed = subprocess.run(_command(big_folders, output, tiny_model_file), capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "Resuming:" in resumed.stderr
    paths, labels, features = _rows(output)
    ref_paths, ref_labels, ref_features = _rows(reference)
    assert paths == ref_paths and len(set(paths)) == len(paths) == 900
    np.testing.assert_array_equal(labels, ref_labels)
    np.testing.assert_allclose(features, ref_features, rtol=1e-5, atol=1e-6)
    assert not partial.exists()


def test_second_writer_is_refused_while_one_holds_the_journal(class_folders, tiny_model_file, tmp_path):
    from featurebench.errors import FeaturebenchError
    from featurebench.store.journal import Journal

    output = tmp_path / "out.h5"
    with Journal.open(output, {"fingerprint": "held", "settings": {}}):
        with pytest.raises(FeaturebenchError, match="Another featurebench process is writing"):
            run_extract(ExtractOptions(str(class_folders), str(output), str(tiny_model_file)))
    assert run_extract(ExtractOptions(str(class_folders), str(output), str(tiny_model_file), force=True)).n_rows == 12
