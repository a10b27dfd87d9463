"""Registry networks converted to OpenVINO once, and read back without TensorFlow.

Building a registry model costs a run its largest fixed costs: importing TensorFlow and
Keras (6-16 s on 2 shared cores), building the network and converting it to OpenVINO
(another 5-15 s for ResNet50). The converted graph (OpenVINO IR, fp32) is stored under
``$FEATUREBENCH_CACHE/openvino/<digest>/`` (default ``~/.cache/featurebench``) with the
provenance of the run that made it, keyed by the model's full identity (:func:`identity`:
registry name, the bytes of its weights, layer, pool, input size, preprocessing,
precision, the Keras/TensorFlow/OpenVINO versions and the CPU class). A later run of the
same identity reads it and compiles it (0.2-0.4 s; importing an exported compiled model
measured no faster, so none is stored), and imports no TensorFlow at all.

Each entry's ``entry.json`` lists the SHA-256 of every file in it and of its own record;
they are checked on every reuse, and a damaged entry is rebuilt with a note.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from featurebench.extractors.hashing import read_sha256
from featurebench.extractors.spec import ModelSpec

#: Bumped when what an entry holds, or how a registry model is cut and converted, changes.
CACHE_VERSION = 1
#: Precisions whose OpenVINO graph is cached (int8 caches the fp32 graph its calibration starts from).
CACHED_PRECISIONS = ("fp32", "bf16", "int8")
#: Provenance fields of the run, not the model: set again by each run.
_RUN_FIELDS = ("engine", "device", "engine_selection", "precision", "precision_requested", "openvino_cache",
               "openvino_cache_hit")
_IR_FILES = ("model.xml", "model.bin")


def cache_root() -> Path:
    """``$FEATUREBENCH_CACHE/openvino`` (default ``~/.cache/featurebench/openvino``)."""
    from featurebench.extractors.efficientnet_lite import cache_dir

    return cache_dir() / "openvino"


def _distribution_version(*names: str) -> str:
    """The installed version of the first distribution found (no import of the package itself)."""
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return ""


def _weights_identity(spec: ModelSpec, weights: str, layer: str | None, seed: int) -> dict[str, Any] | None:
    """What the weights are, by the bytes they are loaded from; None where that is not known
    before building the network (imagenet weights that are missing, or a top layer's)."""
    from featurebench.errors import FeaturebenchError
    from featurebench.extractors.hashing import file_sha256
    from featurebench.extractors.spec import imagenet_weights_file

    if weights == "none":
        return {"weights": "random-init", "seed": seed}
    if weights == "imagenet":
        if layer in spec.top_layers:  # loaded from the include_top file Keras picks itself
            return None
        try:
            located = imagenet_weights_file(spec)
        except FeaturebenchError:
            return None
        if located is None or not located.is_file():
            return None
        return {"weights": "imagenet", "weights_file_sha256": file_sha256(located)}
    path = Path(weights).expanduser()
    if not path.is_file():
        return None
    return {"weights": f"file:{path.name}", "weights_file_sha256": file_sha256(path)}


def identity(spec: ModelSpec, weights: str, layer: str | None, pool: str | None, seed: int,
             precision: str) -> dict[str, Any] | None:
    """Everything that decides a registry model's converted graph, read without TensorFlow;
    None when the model cannot be cached (see :func:`_weights_identity`)."""
    from featurebench import __version__
    from featurebench.extractors.cpu import cpu_class
    from featurebench.extractors.openvino_engine import openvino_version

    if precision not in CACHED_PRECISIONS:
        return None
    layer = layer or spec.default_layer
    weights_id = _weights_identity(spec, weights, layer, seed)
    if weights_id is None:
        return None
    return {"cache_version": CACHE_VERSION, "featurebench_version": __version__, "model": spec.name,
            **weights_id, "layer": layer, "pool": pool, "input_size": spec.input_size,
            "preprocessing": spec.preprocessing, "precision": precision, "openvino_version": openvino_version(),
            "keras_version": _distribution_version("keras"),
            "tensorflow_version": _distribution_version("tensorflow", "tensorflow-cpu", "tensorflow_cpu"),
            "cpu_class": cpu_class()}


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def entry_path(model_identity: dict[str, Any]) -> Path:
    """The folder of the cache entry for ``model_identity``."""
    return cache_root() / _digest(model_identity)[:32]


@dataclass
class CachedModel:
    """A cache entry read back: the converted OpenVINO graph and the provenance of the model."""

    graph: Any
    provenance: dict[str, Any]
    entry: Path


def load(model_identity: dict[str, Any]) -> tuple[CachedModel | None, list[str]]:
    """The entry for ``model_identity`` with its files checked against their digests, and notes.

    ``(None, [])`` when there is none; ``(None, [note])`` when it is damaged (it is removed,
    so the caller builds and stores it again).
    """
    from featurebench.extractors.openvino_engine import import_openvino

    entry = entry_path(model_identity)
    if not (entry / "entry.json").is_file():
        return None, []
    try:
        record = json.loads((entry / "entry.json").read_text(encoding="utf-8"))
        body = record["body"]
        if record.get("body_sha256") != _digest(body):
            raise ValueError("its record does not match its digest")
        if body.get("identity") != model_identity:
            raise ValueError("its record names another model")
        for name in _IR_FILES:
            if read_sha256(entry / name) != body["files"][name]:
                raise ValueError(f"{name} does not match its digest")
        graph = import_openvino().Core().read_model(str(entry / "model.xml"))
    except Exception as exc:  # noqa: BLE001 - missing, truncated or altered files all mean: build again
        shutil.rmtree(entry, ignore_errors=True)
        reason = exc if isinstance(exc, ValueError) else f"{type(exc).__name__}: {str(exc)[:200]}"
        return None, [f"the cached OpenVINO model {entry} was damaged ({reason}); converting it again."]
    return CachedModel(graph, body["provenance"], entry), []


def store(model_identity: dict[str, Any], graph: Any, provenance: dict[str, Any]) -> tuple[Path | None, list[str]]:
    """Save ``graph`` (the converted fp32 OpenVINO model) and ``provenance`` as the entry for
    ``model_identity``; ``(entry, [])``, or ``(None, [note])`` when it cannot be written."""
    from featurebench.extractors.openvino_engine import import_openvino

    entry = entry_path(model_identity)
    tmp = entry.with_name(f".{entry.name}.tmp-{os.getpid()}")
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        import_openvino().save_model(graph, str(tmp / "model.xml"), compress_to_fp16=False)
        body = {"identity": model_identity, "files": {name: read_sha256(tmp / name) for name in _IR_FILES},
                "provenance": {key: value for key, value in provenance.items() if key not in _RUN_FIELDS}}
        (tmp / "entry.json").write_text(json.dumps({"body": body, "body_sha256": _digest(body)}, indent=1),
                                        encoding="utf-8")
        try:
            os.replace(tmp, entry)
        except OSError:  # another run stored the same entry first: keep that one
            shutil.rmtree(tmp, ignore_errors=True)
    except Exception as exc:  # noqa: BLE001 - a full disk or a read-only cache must not fail the run
        shutil.rmtree(tmp, ignore_errors=True)
        return None, [f"could not cache the converted OpenVINO model in {entry} ({type(exc).__name__}: "
                      f"{str(exc)[:200]}); the next run converts it again (set FEATUREBENCH_CACHE to a writable "
                      "folder)."]
    return entry, []


__all__ = ["CACHE_VERSION", "CachedModel", "cache_root", "entry_path", "identity", "load", "store"]
