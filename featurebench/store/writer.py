"""Assemble the final HDF5 feature file from a finished journal.

The file is written under a temporary name in the output folder, flushed and
fsynced, then renamed over the target in one step, so a reader never sees a
half-written file under the real name. Memory stays flat: one shard at a time.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from featurebench.store import format as fmt
from featurebench.store.journal import Journal

#: Target bytes per HDF5 chunk of ``features``: whole rows, about 1 MiB, so a row
#: slice reads few chunks and a chunk is cheap to decompress.
CHUNK_BYTES = 1 << 20

_STR = h5py.string_dtype("utf-8")


def attr_value(value: Any) -> Any:
    """Convert a Python value to something h5py stores as a plain attribute."""
    if value is None:
        return ""
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=str)
    return value


def chunk_rows(feature_dim: int, itemsize: int) -> int:
    """Rows per chunk so that one chunk is about :data:`CHUNK_BYTES`."""
    return max(1, CHUNK_BYTES // max(1, feature_dim * itemsize))


def _write_strings(group: h5py.Group, name: str, values: list[str]) -> None:
    group.create_dataset(name, data=np.array(values, dtype=object), dtype=_STR)


def assemble_feature_file(journal: Journal, output: Path, attrs: dict[str, Any],
                          dtype: str = "float32", compression: str | None = None) -> dict[str, Any]:
    """Write ``output`` from the journal's shards; return the counts and skip reasons.

    ``attrs`` are stored as file attributes (``complete`` is set last).
    """
    manifest = journal.manifest
    candidates = manifest["candidates"]
    feature_dim = int(manifest["settings"]["feature_dim"])
    row_index: list[int] = []
    skipped: list[tuple[int, str]] = []
    for shard in journal.shards():
        row_index.extend(int(i) for i in shard.row_index)
        skipped.extend(zip((int(i) for i in shard.skip_index), (str(r) for r in shard.skip_reason)))
    n_rows = len(row_index)
    np_dtype = np.dtype(dtype)
    tmp = output.with_name(f".{output.name}.tmp-{os.getpid()}")
    try:
        with h5py.File(tmp, "w") as h5:
            chunks = (min(n_rows, chunk_rows(feature_dim, np_dtype.itemsize)), feature_dim) if n_rows else None
            features = h5.create_dataset(fmt.FEATURES, shape=(n_rows, feature_dim), dtype=np_dtype,
                                         chunks=chunks, compression=compression if n_rows else None)
            offset = 0
            for shard in journal.shards():
                count = len(shard.row_index)
                if count:
                    features[offset:offset + count] = shard.features.astype(np_dtype, copy=False)
                offset += count
            h5.create_dataset(fmt.LABELS, data=np.array([candidates[i][1] for i in row_index], dtype=np.int32))
            _write_strings(h5, fmt.LABEL_NAMES, manifest["label_names"])
            _write_strings(h5, fmt.PATHS, [candidates[i][0] for i in row_index])
            skipped_group = h5.create_group(fmt.SKIPPED)
            _write_strings(skipped_group, "path", [candidates[i][0] for i, _ in skipped])
            _write_strings(skipped_group, "reason", [reason for _, reason in skipped])
            ignored_group = h5.create_group(fmt.IGNORED)
            _write_strings(ignored_group, "path", [p for p, _ in manifest["ignored"]])
            _write_strings(ignored_group, "reason", [r for _, r in manifest["ignored"]])
            counts: dict[str, Any] = {"n_rows": n_rows, "n_skipped": len(skipped),
                                      "n_ignored": len(manifest["ignored"]), "n_candidates": len(candidates)}
            train_fraction = float(attrs["train_fraction"])
            all_attrs = {**attrs, **counts, "split_index": int(n_rows * train_fraction),
                         "feature_dim": feature_dim, "dtype": np_dtype.name,
                         "compression": compression or "none",
                         "format": fmt.FORMAT_NAME, "format_version": fmt.FORMAT_VERSION}
            for key, value in all_attrs.items():
                h5.attrs[key] = attr_value(value)
            h5.attrs["complete"] = True
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
    counts["skipped_reasons"] = skip_reason_counts(reason for _, reason in skipped)
    return counts


def skip_reason_counts(reasons) -> dict[str, int]:
    """Count skip reasons by their short code (the text before the first colon)."""
    counts: dict[str, int] = {}
    for reason in reasons:
        key = str(reason).split(":", 1)[0]
        counts[key] = counts.get(key, 0) + 1
    return counts


def write_feature_arrays(output: str | Path, features: np.ndarray, labels, label_names: list[str],
                         paths: list[str] | None = None, attrs: dict[str, Any] | None = None,
                         train_fraction: float = 0.75, dtype: str = "float32") -> Path:
    """Write in-memory arrays as a complete feature file (for tests, tools and small data).

    Goes through the same journal and assembly code as ``extract``; ``attrs`` fill in or
    override the provenance attributes.
    """
    import time

    from featurebench import __version__

    output = Path(output)
    features = np.asarray(features, dtype=np.float32)
    labels = [int(label) for label in labels]
    paths = paths or [f"row-{i:06d}" for i in range(len(labels))]
    manifest = {
        "fingerprint": f"arrays-{time.time_ns()}",
        "settings": {"feature_dim": int(features.shape[1])},
        "candidates": [[p, label, None] for p, label in zip(paths, labels)],
        "label_names": list(label_names),
        "ignored": [],
    }
    base_attrs = {
        "featurebench_version": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "model": "arrays", "layer": "", "pool": "", "input_size": "", "resize": "", "preprocessing": "",
        "weights": "", "weights_sha256": "", "seed": 0, "train_fraction": train_fraction,
        "source": "", "source_kind": "arrays", "dataset": output.stem,
    }
    with Journal.open(output, manifest, force=True) as journal:
        journal.commit(0, len(labels), features, list(range(len(labels))), [])
        assemble_feature_file(journal, output, {**base_attrs, **(attrs or {})}, dtype=dtype)
        journal.remove()
    return output
