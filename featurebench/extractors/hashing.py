"""Content hashes that identify weights files in provenance, and the identity record of a model file
(shared by every model-file backend: Keras/SavedModel, ONNX)."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any


def read_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read now (no memo: for checking a file against a recorded digest)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@lru_cache(maxsize=32)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    return read_sha256(path)


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, or of every file in a folder (sorted by relative path)."""
    path = Path(path)
    if path.is_dir():
        digest = hashlib.sha256()
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(child.relative_to(path).as_posix().encode())
            digest.update(file_sha256(child).encode())
        return digest.hexdigest()
    stat = path.stat()
    return _sha256(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def _fields(data: bytes):
    """``(field number, wire type, value)`` of a protobuf message; length-delimited values as bytes."""
    i, n = 0, len(data)

    def varint() -> int:
        nonlocal i
        shift = value = 0
        while True:
            if i >= n:
                raise ValueError("truncated varint")
            byte = data[i]
            i += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7

    while i < n:
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            yield number, wire, varint()
        elif wire == 1:
            i += 8
        elif wire == 2:
            length = varint()
            yield number, wire, data[i:i + length]
            i += length
        elif wire == 5:
            i += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")


#: Where TensorProtos sit in an ONNX file: message field -> the fields holding tensors / graphs / nodes.
_GRAPH_TENSORS, _GRAPH_NODES, _GRAPH_SPARSE = 5, 1, 15
_NODE_ATTRIBUTES = 5
_ATTR_TENSOR, _ATTR_GRAPH, _ATTR_TENSORS, _ATTR_GRAPHS = 5, 6, 10, 11
_TENSOR_EXTERNAL_DATA = 13


def _tensor_locations(tensor: bytes) -> list[str]:
    locations = []
    for number, wire, value in _fields(tensor):
        if number == _TENSOR_EXTERNAL_DATA and wire == 2:
            entry = {k: v for k, _, v in _fields(value)}
            if entry.get(1) == b"location" and isinstance(entry.get(2), bytes):
                locations.append(entry[2].decode("utf-8", "replace"))
    return locations


def _graph_locations(graph: bytes) -> list[str]:
    locations: list[str] = []
    for number, wire, value in _fields(graph):
        if wire != 2:
            continue
        if number == _GRAPH_TENSORS:
            locations += _tensor_locations(value)
        elif number == _GRAPH_SPARSE:  # SparseTensorProto: values (1) and indices (2) are tensors
            for _, w, part in _fields(value):
                if w == 2:
                    locations += _tensor_locations(part)
        elif number == _GRAPH_NODES:
            for attr_number, w, attribute in _fields(value):
                if attr_number != _NODE_ATTRIBUTES or w != 2:
                    continue
                for field, w2, item in _fields(attribute):
                    if w2 == 2 and field in (_ATTR_TENSOR, _ATTR_TENSORS):
                        locations += _tensor_locations(item)
                    elif w2 == 2 and field in (_ATTR_GRAPH, _ATTR_GRAPHS):
                        locations += _graph_locations(item)
    return locations


def onnx_external_files(path: str | Path) -> list[Path]:
    """The external data files an ONNX model names (tensors stored outside the ``.onnx``, e.g. ``model.onnx.data``),
    sorted, without duplicates; read from the protobuf directly (no onnx package needed)."""
    path = Path(path)
    data = path.read_bytes()
    try:
        graphs = [value for number, wire, value in _fields(data) if number == 7 and wire == 2]
        names = sorted({name for graph in graphs for name in _graph_locations(graph)})
    except ValueError:
        return []  # not a protobuf featurebench can walk: OpenVINO reports what is wrong with it
    return [path.parent / name for name in names]


def weights_sha256(path: str | Path) -> str:
    """SHA-256 identifying every byte of a model's weights: the file (or folder), and for an ONNX
    model also each external data file it names (a missing one is named in the digest, so the
    digest still changes when it appears)."""
    path = Path(path)
    main = file_sha256(path)
    if path.suffix.lower() != ".onnx" or path.is_dir():
        return main
    external = onnx_external_files(path)
    if not external:
        return main
    digest = hashlib.sha256(main.encode())
    for extra in external:
        digest.update(extra.name.encode())
        digest.update(file_sha256(extra).encode() if extra.is_file() else b"missing")
    return digest.hexdigest()


def file_provenance(path: Path, source: str) -> dict[str, Any]:
    """Identity of a model file for the feature file: name, source kind, path and the sha256 of all
    its weight bytes (an ONNX model's external data files included, listed in ``weights_files``)."""
    provenance = {"model": path.name, "model_source": source, "model_path": str(path.resolve()),
                  "weights": f"file:{path.name}", "weights_sha256": weights_sha256(path), "random_init": False}
    if path.suffix.lower() == ".onnx" and path.is_file():
        external = onnx_external_files(path)
        if external:
            provenance["weights_files"] = [path.name, *(p.name for p in external)]
    return provenance
