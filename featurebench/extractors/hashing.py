"""Content hashes that identify weights files in provenance, and the identity record of a model file
(shared by every model-file backend: Keras/SavedModel, ONNX)."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any


@lru_cache(maxsize=32)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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


def file_provenance(path: Path, source: str) -> dict[str, Any]:
    """Identity of a model file for the feature file: name, source kind, path and sha256."""
    return {"model": path.name, "model_source": source, "model_path": str(path.resolve()),
            "weights": f"file:{path.name}", "weights_sha256": file_sha256(path), "random_init": False}
