"""Which engine runs a Keras model (``--engine auto``), on which device, with what batch size.

``auto`` (the default) picks TensorFlow when TensorFlow sees a GPU (with the
``featurebench[gpu]`` install, see README) and OpenVINO on the CPU otherwise: on a CPU
OpenVINO's fp32 forward pass is 1.5-2x TensorFlow's for the same features
(docs/performance.md), and OpenVINO's CPU runtime cannot use an NVIDIA GPU. The choice is
said in one line and recorded in the feature file (``engine``, ``device``,
``engine_selection``). The device list comes from :func:`visible_gpus`, which the tests mock.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from featurebench.errors import FeaturebenchError

#: Runtimes that can run a Keras model (``--engine``).
ENGINES = ("auto", "openvino", "tensorflow")
DEFAULT_ENGINE = "auto"
#: Rough activation memory per image of a 224x224 fp32 CNN forward pass (no gradients), with
#: margin: what :func:`gpu_batch_size` divides a quarter of the GPU's memory by. A heuristic,
#: not a measurement (no GPU was lent while writing it): pass --batch-size to override.
BYTES_PER_IMAGE_224_FP32 = 32 * 2**20
GPU_BATCH_RANGE = (16, 512)


@dataclass(frozen=True)
class EngineChoice:
    """The engine that will run, the device it runs on, and why (one line for the user)."""

    engine: str
    device: str
    reason: str
    requested: str
    #: Total memory of the GPU in MiB when a GPU runs the model and it could be read.
    gpu_memory_mib: int | None = None

    @property
    def on_gpu(self) -> bool:
        """True when the model runs on a GPU."""
        return self.device.startswith("GPU")


def check_engine(engine: str) -> None:
    """Refuse an ``--engine`` that is not one of :data:`ENGINES`."""
    if engine not in ENGINES:
        raise FeaturebenchError(f"--engine {engine!r}: choose one of {', '.join(ENGINES)}")


#: Device nodes a GPU driver creates on Linux (NVIDIA, WSL's GPU paravirtualisation, ROCm).
GPU_DEVICE_NODES = ("nvidia*", "dxg", "kfd")


def gpu_driver_present(dev: Path = Path("/dev")) -> bool:
    """False on Linux when no GPU driver device node exists (TensorFlow can then see no GPU);
    True elsewhere, where only TensorFlow can tell."""
    if not sys.platform.startswith("linux"):
        return True
    return any(next(dev.glob(pattern), None) is not None for pattern in GPU_DEVICE_NODES)


def visible_gpus() -> list[str]:
    """Names of the GPUs TensorFlow can use; empty with the ``tensorflow-cpu`` wheel or no GPU.

    TensorFlow (6-16 s to import) is not imported where no GPU driver is present, so a run
    that OpenVINO serves from its model cache starts without it."""
    if not gpu_driver_present():
        return []
    import tensorflow as tf

    names = []
    for device in tf.config.list_physical_devices("GPU"):
        try:
            details = tf.config.experimental.get_device_details(device)
        except Exception:  # noqa: BLE001 - details are optional, the device is what matters
            details = {}
        names.append(str(details.get("device_name") or device.name))
    return names


def gpu_memory_mib() -> int | None:
    """Total memory of GPU 0 in MiB from ``nvidia-smi``, or None where it cannot be read."""
    try:
        result = subprocess.run(["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
                                capture_output=True, text=True, timeout=20, check=True)
        return int(result.stdout.split()[0])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def choose_engine(requested: str = DEFAULT_ENGINE, gpus: list[str] | None = None) -> EngineChoice:
    """Resolve ``--engine``: ``auto`` -> TensorFlow on a visible GPU, else OpenVINO on the CPU.

    ``gpus`` (names) defaults to :func:`visible_gpus`; it is only asked for when it matters.
    """
    check_engine(requested)
    if requested == "openvino":
        return EngineChoice("openvino", "CPU", "--engine openvino: OpenVINO on the CPU", requested)
    gpus = visible_gpus() if gpus is None else gpus
    if gpus:
        more = f" (+{len(gpus) - 1} more not used)" if len(gpus) > 1 else ""
        device = f"GPU:0 {gpus[0]}"
        how = "--engine auto" if requested == "auto" else "--engine tensorflow"
        return EngineChoice("tensorflow", device, f"{how}: TensorFlow on {device}{more}", requested,
                            gpu_memory_mib())
    if requested == "tensorflow":
        return EngineChoice("tensorflow", "CPU", "--engine tensorflow: TensorFlow on the CPU (it sees no GPU)",
                            requested)
    return EngineChoice("openvino", "CPU", "--engine auto: OpenVINO on the CPU (TensorFlow sees no GPU)", requested)


def gpu_batch_size(memory_mib: int | None, input_size: int, precision: str, fallback: int) -> int:
    """A batch size for a forward pass on a GPU with ``memory_mib``: a quarter of the memory over
    :data:`BYTES_PER_IMAGE_224_FP32` scaled by input area (halved per image under fp16/bf16),
    rounded down to a power of two within :data:`GPU_BATCH_RANGE`; ``fallback`` when the memory
    is unknown."""
    if not memory_mib:
        return fallback
    per_image = BYTES_PER_IMAGE_224_FP32 * (input_size / 224) ** 2 / (2 if precision in ("fp16", "bf16") else 1)
    fits = int(memory_mib * 2**20 / 4 / per_image)
    low, high = GPU_BATCH_RANGE
    return max(low, min(high, 1 << max(fits, 1).bit_length() - 1))
