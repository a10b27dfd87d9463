"""What a Ray run asks of the cluster, checked before anything starts.

Every request is validated before Ray is imported or a worker starts: an address that is not
one (``ray.init`` would spend seconds starting up first), zero, negative or NaN CPUs / GPUs /
memory (``num_cpus=0`` would let Ray start any number of model copies on one node), and a
total the cluster cannot hold at once (Ray would wait for it forever). Each extract worker
asks Ray for memory as well as CPUs, derived from the model it loads, so an autoscaler (and
Ray's scheduler) places workers by what they really take.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from featurebench.errors import FeaturebenchError

#: What a worker process holds besides the model: the Python runtime, NumPy/OpenCV, decode
#: buffers, and for Keras models TensorFlow + Keras (~600 MB RSS on import, DESIGN.md); with the
#: weights below, EfficientNet-Lite0 asks for 654 MB (about what one copy was seen to take).
RUNTIME_BYTES = {"light": 300 << 20, "keras": 600 << 20}
#: Model files run without TensorFlow in the worker (LiteRT, OpenVINO reading ONNX).
LIGHT_MODEL_SUFFIXES = (".tflite", ".onnx")
#: A model's weights are held about this many times (the file, the runtime's graph, the
#: compiled copy OpenVINO makes).
WEIGHT_COPIES = 3

_HOST = r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*)"
_ADDRESS = re.compile(rf"^(?:ray://)?{_HOST}:(?P<port>\d{{1,5}})$")


def check_address(address: str | None) -> None:
    """Refuse a ``--address`` that is neither ``auto``, ``HOST:PORT`` (the head's GCS) nor
    ``ray://HOST:PORT`` (Ray Client), before Ray spends seconds trying it."""
    if address is None or address == "auto":
        return
    match = _ADDRESS.match(address)
    if match is None or not 1 <= int(match.group("port")) <= 65535:
        raise FeaturebenchError(
            f"--address {address!r} is not a Ray cluster address: give auto (the cluster on this node), "
            "HOST:PORT of the head (e.g. 10.0.0.5:6379) or ray://HOST:10001 (Ray Client); leave it out to "
            "start a cluster on this machine.")


def check_cluster_options(address: str | None, spill_dir: str | None = None) -> None:
    """:func:`check_address`, and refuse ``--spill-dir`` for a cluster that is not started here."""
    check_address(address)
    if spill_dir and address:
        raise FeaturebenchError(
            "--spill-dir sets up a cluster started here; for the cluster at --address set it where the "
            "cluster starts: `ray start --head --object-spilling-directory DIR` (KubeRay: rayStartParams).")


def _check_amount(flag: str, value: float, minimum: float, kind: str) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= minimum):
        raise FeaturebenchError(f"{flag} {value}: give {kind}")


def check_worker_request(workers: int, cpus: float, gpus: float = 0.0, memory_mb: float | None = None,
                         flags: tuple[str, str, str] = ("--workers", "--cpus-per-worker", "--gpus-per-worker")
                         ) -> None:
    """Refuse a request no cluster should get: fewer than 1 worker or CPU per worker, negative or
    NaN GPUs, a memory request that is not a positive number."""
    workers_flag, cpus_flag, gpus_flag = flags
    _check_amount(workers_flag, workers, 1, "at least 1")
    _check_amount(cpus_flag, cpus, 1, "at least 1 CPU (each worker's threads run on its CPUs)")
    _check_amount(gpus_flag, gpus, 0, "0 (none) or a positive number of GPUs, e.g. 0.5 or 1")
    if memory_mb is not None:
        _check_amount("--memory-per-worker", memory_mb, 1, "a positive number of MB")


def _model_bytes(path: Path) -> int:
    if path.is_dir():  # a SavedModel folder
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def worker_memory_bytes(model_args: dict[str, Any]) -> int:
    """The memory one extract worker asks Ray for: its runtime plus :data:`WEIGHT_COPIES` x the
    model's weights (the model file, the ``--weights`` file, or a registry model's local
    ImageNet weights file when there is one)."""
    weights = 0
    light = False
    for key in ("model", "weights"):
        value = model_args.get(key)
        if value and Path(value).expanduser().exists():
            path = Path(value).expanduser()
            weights += _model_bytes(path)
            light = light or (key == "model" and path.suffix.lower() in LIGHT_MODEL_SUFFIXES)
    if not weights:
        weights = _registry_weights_bytes(str(model_args.get("model", "")))
    return RUNTIME_BYTES["light" if light else "keras"] + WEIGHT_COPIES * weights


def _registry_weights_bytes(name: str) -> int:
    """Bytes of a registry model's local ImageNet weights file (0 when unknown or not local)."""
    from featurebench.extractors.registry import get_spec

    try:
        locate = get_spec(name).locate_imagenet_weights
        found = locate() if locate else None
    except Exception:  # noqa: BLE001 - an estimate: an unknown name or missing package only means "unknown"
        found = None
    return Path(found).stat().st_size if found and Path(found).is_file() else 0


def check_fits(nodes: list[dict[str, float]], workers: int, cpus: float, gpus: float, memory: int = 0) -> None:
    """Refuse workers the cluster cannot hold all at once (Ray would wait for them forever): in
    total, and packed onto its nodes (``nodes``: each live node's resources; a worker runs on one
    node, so 3 nodes of 1.5 GB do not hold a 3 GB worker)."""
    need = {"CPU": cpus, "GPU": gpus, "memory": memory}
    flags = {"CPU": "--cpus-per-worker", "GPU": "--gpus-per-worker", "memory": "--memory-per-worker"}
    for name, each in need.items():
        unit = 1 << 20 if name == "memory" else 1
        have = sum(node.get(name, 0.0) for node in nodes)
        if each and workers * each > have:
            what = "MB of memory" if name == "memory" else f"{name}s"
            raise FeaturebenchError(
                f"--workers {workers} x {flags[name]} {each / unit:g} needs {workers * each / unit:g} {what}; the "
                f"Ray cluster has {have / unit:g}. Lower --workers or {flags[name]}, or add nodes to the cluster.")
    held = sum(int(min(node.get(name, 0.0) // each for name, each in need.items() if each)) for node in nodes)
    if held < workers:
        largest = max(nodes, key=lambda node: node.get("CPU", 0.0), default={})
        raise FeaturebenchError(
            f"--workers {workers} of {cpus:g} CPU(s), {gpus:g} GPU(s), {memory >> 20} MB each: the Ray cluster's "
            f"nodes hold {held} of them at once (the largest has {largest.get('CPU', 0):g} CPUs, "
            f"{largest.get('GPU', 0):g} GPUs, {int(largest.get('memory', 0)) >> 20} MB). Lower --workers, "
            "--cpus-per-worker or --memory-per-worker, or add bigger nodes.")
