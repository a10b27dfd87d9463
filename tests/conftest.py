"""Shared fixtures: the ../shared folder, small generated image sets, a tiny Keras model file."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The read-only ../shared folder beside the repository (skips when absent)."""
    if not SHARED.is_dir():
        pytest.skip(f"../shared not found at {SHARED}: real models/images are not available here")
    return SHARED


@pytest.fixture(scope="session")
def coral_extractor_path(shared_dir: Path) -> Path:
    """The real ImageNet-pretrained MobileNet v1 embedding extractor (TFLite, 1,024-d)."""
    path = shared_dir / "models" / "coral" / "mobilenet_v1_1.0_224_quant_embedding_extractor.tflite"
    if not path.exists():
        pytest.skip(f"{path} not found")
    return path


def write_image(path: Path, array: np.ndarray, **save_kwargs) -> Path:
    """Save an RGB/gray uint8 array with Pillow (format from the suffix, or ``format=``)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **save_kwargs)
    return path


def make_class_folders(root: Path, classes=("cat", "dog"), per_class: int = 6, size=(40, 56), seed: int = 0) -> Path:
    """A class-per-folder set of distinguishable JPEGs (class k is brighter in channel k)."""
    rng = np.random.default_rng(seed)
    for k, cls in enumerate(classes):
        for i in range(per_class):
            img = rng.integers(0, 80, (*size, 3), dtype=np.uint8)
            img[..., k % 3] += 150
            write_image(root / cls / f"{cls}_{i:03d}.jpg", img)
    return root


def object_store_tree() -> dict[str, bytes]:
    """What both a disk folder and a bucket hold in the object-storage tests: JPEGs in class
    folders, a nested folder, a duplicate, an undecodable and an empty image, clutter and a hidden folder."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        root = make_class_folders(Path(folder), classes=("cat", "dog", "owl"), per_class=5, size=(24, 32))
        files = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*.jpg")}
    files["dog/sub/dog_nested.jpg"] = files["dog/dog_001.jpg"][:-2] + b"\xff\xd9"
    files["dog/copy_of_cat.jpg"] = files["cat/cat_000.jpg"]
    files["cat/garbage.jpg"] = b"not an image at all"
    files["cat/empty.jpg"] = b""
    files["owl/notes.txt"] = b"clutter"
    files["owl/.cache/hidden.jpg"] = files["owl/owl_000.jpg"]
    files["stray.jpg"] = files["owl/owl_001.jpg"]
    return files


def fill_bucket(fs, bucket: str, disk: Path) -> None:
    """Make ``bucket`` through the fsspec file system ``fs`` and write :func:`object_store_tree`
    both under the folder ``disk`` and under the prefix ``bucket/pets/``."""
    fs.mkdir(bucket)
    for rel, data in object_store_tree().items():
        (disk / rel).parent.mkdir(parents=True, exist_ok=True)
        (disk / rel).write_bytes(data)
        fs.pipe(f"{bucket}/pets/{rel}", data)



def assert_listed_like_the_disk(remote, local, url: str) -> None:
    """The listing of bucket prefix ``url`` equals ``local``, that of the folder holding the same
    files: the same candidates in the same (walk) order (dog/sub/... after dog's own files, as on
    disk), the same class names, the same ignored entries."""
    assert remote.root == url.rstrip("/") and remote.kind == local.kind == "class-folders"
    assert [(c.path, c.label) for c in remote.candidates] == [(c.path, c.label) for c in local.candidates]
    assert remote.label_names == local.label_names == ["cat", "dog", "owl"]
    assert sorted(remote.ignored) == sorted(local.ignored)
    assert ("owl/.cache", "hidden folder (not searched)") in remote.ignored


def assert_extracted_like_the_disk(bucket_file: Path, disk_file: Path, url: str) -> None:
    """The features file extracted from bucket prefix ``url`` has the rows, skips and duplicates
    of ``disk_file``, extracted from the folder holding the same files."""
    import h5py

    with h5py.File(bucket_file, "r") as got, h5py.File(disk_file, "r") as want:
        assert got.attrs["source"] == url.rstrip("/") and got.attrs["dataset"] == "pets"
        for name in ("paths", "labels", "label_names", "skipped/path", "skipped/reason", "duplicates/row",
                     "duplicates/path"):
            assert list(got[name][()]) == list(want[name][()]), name
        np.testing.assert_array_equal(got["features"][()], want["features"][()])
        assert got.attrs["n_rows"] == want.attrs["n_rows"] > 0 and got.attrs["split_index"] == want.attrs["split_index"]

def mounted_tmpfs(folder: Path, options: str):
    """Mount a tmpfs with ``options`` (e.g. ``size=8m``, ``ro,size=1m``) on the new folder
    ``folder``; yields it and unmounts after. Skips the test without root or mount rights."""
    import shutil
    import subprocess

    folder.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a tmpfs")
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True,
                            text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip()})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.fixture()
def class_folders(tmp_path: Path) -> Path:
    """Two classes x 6 JPEGs."""
    return make_class_folders(tmp_path / "data")


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory) -> Path:
    """A tiny Keras model file (32x32 input, 8 features) so extraction tests run in seconds."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(8, name="embedding")(x)
    model = keras.Model(inputs, outputs, name="tiny")
    path = tmp_path_factory.mktemp("models") / "tiny.keras"
    model.save(path)
    return path


#: The simulated cluster's worker nodes: 1 CPU and 1.5 GB of memory each, their own (test) S3
#: credentials (tests/test_sources_remote.py's server takes any), and a head node without CPUs,
#: where only the driver runs, as on a real cluster.
RAY_WORKER_NODE = {"num_cpus": 1, "memory": 1536 * 1024 * 1024, "object_store_memory": 80 * 1024 * 1024,
                   "env_vars": {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}}
RAY_WORKER_NODES = 3


class SimulatedCluster:
    """A multi-node Ray cluster on this machine (``ray.cluster_utils.Cluster``: one raylet and object
    store per node) that tests can take nodes away from; ``address`` is the head's GCS address."""

    def __init__(self, ray):
        from ray.cluster_utils import Cluster

        self.cluster = Cluster(initialize_head=True, head_node_args={
            "num_cpus": 0, "memory": 512 * 1024 * 1024, "object_store_memory": 80 * 1024 * 1024,
            # Lost nodes are noticed within seconds (defaults: ~30 s).
            "_system_config": {"health_check_initial_delay_ms": 0, "health_check_period_ms": 500,
                               "health_check_failure_threshold": 4}})
        for _ in range(RAY_WORKER_NODES):
            self.cluster.add_node(**RAY_WORKER_NODE)
        self.cluster.wait_for_nodes()
        ray.init(address=self.cluster.address, include_dashboard=False, log_to_driver=False,
                 configure_logging=True, logging_level="WARNING")
        self.address = self.cluster.address

    def node_of(self, pid: int):
        """The worker node whose raylet started process ``pid`` (a Ray worker), or None."""
        import psutil

        try:
            parents = {p.pid for p in psutil.Process(pid).parents()}
        except psutil.NoSuchProcess:
            return None
        return next((node for node in self.cluster.worker_nodes
                     if node.all_processes["raylet"][0].process.pid in parents), None)

    def kill_node(self, node) -> None:
        """Take ``node`` away at once (its raylet, object store and workers die), and add a fresh
        one, as an autoscaler would, so the cluster keeps its size for the next test."""
        self.cluster.remove_node(node, allow_graceful=False)
        self.cluster.add_node(**RAY_WORKER_NODE)

    def shutdown(self, ray) -> None:
        ray.shutdown()
        self.cluster.shutdown()


@pytest.fixture(scope="session")
def ray_nodes() -> SimulatedCluster:
    """One simulated multi-node Ray cluster for the whole session (3 worker nodes x 1 CPU, a head
    without CPUs), this process its driver. Skips when the [ray] extra is absent."""
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'featurebench[ray]'")
    cluster = SimulatedCluster(ray)
    yield cluster
    cluster.shutdown(ray)


@pytest.fixture(scope="session")
def ray_cluster(ray_nodes) -> str:
    """The GCS address of the session's simulated cluster (for a second driver in a subprocess)."""
    return ray_nodes.address


@pytest.fixture(scope="session")
def tiny_tflite_file(tiny_model_file, tmp_path_factory) -> Path:
    """``tiny_model_file`` converted to TFLite: loads in a fraction of a second without TensorFlow
    (for tests that start many worker processes)."""
    import keras
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(keras.models.load_model(tiny_model_file))
    path = tmp_path_factory.mktemp("models") / "tiny.tflite"
    path.write_bytes(converter.convert())
    return path


def default_sigint() -> None:
    """``preexec_fn`` for a child that a test interrupts with SIGINT: restore its default action.

    A shell starts a background job with SIGINT ignored, its children inherit that, and Python then
    installs no KeyboardInterrupt handler, so a Ctrl+C test run from such a job would see the child
    ignore the signal (finish its work, or hang on a blocked read) instead of exiting with 130.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
