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


@pytest.fixture(scope="session")
def ray_cluster():
    """One small local Ray cluster for the whole test session (2 CPUs, ~100 MB object store);
    its GCS address (for a second driver in a subprocess). Skips when the [ray] extra is absent."""
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'featurebench[ray]'")
    if not ray.is_initialized():
        ray.init(num_cpus=2, object_store_memory=100 * 1024 * 1024, include_dashboard=False,
                 log_to_driver=False, configure_logging=True, logging_level="WARNING")
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


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
