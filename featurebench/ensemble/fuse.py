"""``featurebench fuse A.h5 B.h5 ... -o AB.h5``: early fusion, the features of several extractors side by side.

The inputs must hold the same rows: the same paths in the same order, the same labels and
label names and the same split index (files extracted from one source with one seed) —
anything else is refused, naming the files and the first difference. The output is a normal
feature file (``featurebench fit`` and ``info`` read it) whose columns are A's then B's ...;
its ``parts`` attribute (JSON) records every part's file, model, layer, pool, weights,
preprocessing, dimension and column range. Rows are copied block by block (memory stays flat)
through the same journal + assembly code as ``extract``.

Each part is scaled by default (``scale="standard"``): blocks of different extractors have
different scales (a 1,024-d uint8-dequantised block next to a 1,280-d float block), and a plain
concatenation lets the larger one dominate. ``standard`` centres and divides every column by its
mean and std over the **train rows** of the stored split (rows ``[:split_index]``; never test rows);
``block`` divides each part by the mean L2 norm of its train rows (keeps each part's geometry);
``none`` is the raw concatenation. The choice is the file's ``fusion_scale`` attribute (and every
run's provenance); results/bench_ensemble.md measures the three.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from featurebench import __version__
from featurebench.errors import FeaturebenchError
from featurebench.outputs import check_not_an_input
from featurebench.store.identity import check_joinable
from featurebench.store.reader import FeatureFile, open_feature_file

#: Attributes copied into each part's provenance.
PART_KEYS = ("model", "model_source", "layer", "pool", "weights", "weights_sha256", "preprocessing", "input_size",
             "resize", "dtype", "created", "command")
#: ``fuse --scale`` choices, the default first.
FUSE_SCALES = ("standard", "block", "none")
_SCALE_TEXT = {"standard": "per column: (x - mean) / std over the train rows [:{i}] of each part",
               "block": "per part: x / (mean L2 norm of the part's train rows [:{i}])",
               "none": "raw concatenation (no scaling)"}

@dataclass
class FuseSummary:
    output: Path
    n_rows: int
    feature_dim: int
    parts: list[dict]
    seconds: float


def _check_same_rows(files: list[FeatureFile]) -> None:
    """Refuse inputs that are not the same images in the same order (their identities, checked
    by :func:`featurebench.store.identity.check_joinable`), naming the first difference."""
    first = files[0]
    first_identity = first.identity
    for other in files[1:]:
        def detail(field: str, other: FeatureFile = other) -> str | None:
            if field == "n_rows":
                return f"they hold {other.n_rows} and {first.n_rows} rows"
            if field == "rows_digest":
                a, b = first.paths, other.paths
                i = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)
                if i is not None:
                    return f"they differ at row {i}: {b[i]!r} vs {a[i]!r}"
                return "the same paths with different labels"
            return None
        check_joinable("fuse", first_identity, other.identity, str(first.path), str(other.path), detail)


def _train_statistics(f: FeatureFile, scale: str, block_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """``(shift, divisor)`` per column of ``f`` from its train rows ``[:split_index]`` only, read in blocks."""
    train = f.split_index
    total = np.zeros(f.feature_dim)
    squares = np.zeros(f.feature_dim)
    norms = 0.0
    for start in range(0, train, block_rows):
        block = np.asarray(f.features[start:min(train, start + block_rows)], dtype=np.float64)
        total += block.sum(axis=0)
        squares += (block ** 2).sum(axis=0)
        norms += float(np.linalg.norm(block, axis=1).sum())
    if scale == "block":
        mean_norm = norms / max(train, 1)
        return np.zeros(f.feature_dim), np.full(f.feature_dim, mean_norm if mean_norm > 0 else 1.0)
    mean = total / max(train, 1)
    std = np.sqrt(np.maximum(squares / max(train, 1) - mean ** 2, 0.0))
    return mean, np.where(std > 1e-12, std, 1.0)  # constant columns stay constant (0), not NaN


def fuse_features(inputs: list[str | Path], output: str | Path, force: bool = False, block_rows: int = 1024,
                  command: str = "", scale: str = "standard") -> FuseSummary:
    """Concatenate the features of ``inputs`` (same rows, checked) into the feature file ``output``,
    each part scaled as ``scale`` says (:data:`FUSE_SCALES`; statistics from train rows only)."""
    if scale not in FUSE_SCALES:
        raise FeaturebenchError(f"--scale {scale!r}: choose one of {', '.join(FUSE_SCALES)}")
    from featurebench.fit.run import extractor_name
    from featurebench.store.journal import Journal
    from featurebench.store.writer import assemble_feature_file

    if len(inputs) < 2:
        raise FeaturebenchError("fuse needs at least 2 feature files")
    output = Path(output).expanduser().resolve()
    resolved = [Path(p).expanduser().resolve() for p in inputs]
    check_not_an_input(output, resolved, "-o")
    if output.exists() and not force:
        raise FeaturebenchError(f"{output} already exists; pass --force to overwrite it (or choose another -o).")
    if not output.parent.is_dir():
        raise FeaturebenchError(f"Output folder {output.parent} does not exist; create it first.")
    started = time.perf_counter()
    files = [open_feature_file(p) for p in resolved]
    try:
        _check_same_rows(files)
        first = files[0]
        if scale != "none" and first.split_index < 2:
            raise FeaturebenchError(f"--scale {scale} needs train rows for its statistics ({first.path} has "
                                    f"{first.split_index}); pass --scale none")
        stats = [_train_statistics(f, scale, block_rows) if scale != "none" else None for f in files]
        parts, column = [], 0
        for f, stat in zip(files, stats):
            parts.append({"file": str(f.path), "feature_dim": f.feature_dim, "columns": [column, column + f.feature_dim],
                          **{k: f.attrs.get(k) for k in PART_KEYS if k in f.attrs},
                          **({"mean_train_norm": float(stat[1][0])} if scale == "block" else {})})
            column += f.feature_dim
        names = [extractor_name(f.attrs) for f in files]
        paths, labels, skipped = first.paths, first.labels, first.skipped
        # The inputs' tables stay with the rows: skipped images, ignored files, duplicates.
        manifest = {"fingerprint": f"fuse-{'+'.join(str(p) for p in resolved)}-{time.time_ns()}",
                    "settings": {"feature_dim": column},
                    "candidates": [[p, int(label), None] for p, label in zip(paths, labels)]
                                  + [[p, -1, reason] for p, reason in skipped],
                    "label_names": list(first.label_names), "ignored": [list(item) for item in first.ignored]}
        n = first.n_rows
        # The writer stores split_index = int(n * train_fraction): keep the first file's fraction when
        # it gives the same index, else half a row past the index (exact under float rounding).
        train_fraction = float(first.attrs.get("train_fraction", 0.75))
        if int(n * train_fraction) != first.split_index:
            train_fraction = (first.split_index + 0.5) / n
        attrs = {
            "featurebench_version": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "model": "+".join(names), "model_source": "fused", "layer": "+".join(str(f.attrs.get("layer", "")) for f in files),
            "pool": "+".join(str(f.attrs.get("pool", "")) for f in files), "input_size": "", "resize": "",
            "preprocessing": "per part", "weights": "+".join(str(f.attrs.get("weights", "")) for f in files),
            "weights_sha256": "", "seed": first.attrs.get("seed", 0), "train_fraction": train_fraction,
            "source": first.attrs.get("source", ""), "source_kind": first.attrs.get("source_kind", ""),
            "dataset": first.attrs.get("dataset", output.stem), "parts": json.dumps(parts), "fusion": "concatenate",
            "fusion_scale": scale, "fusion_scale_method": _SCALE_TEXT[scale].format(i=first.split_index),
            "command": command,
        }
        with Journal.open(output, manifest, force=True) as journal:
            for start in range(0, n, block_rows):
                stop = min(n, start + block_rows)
                block = np.concatenate([_scaled(np.asarray(f.features[start:stop], dtype=np.float32), stat)
                                        for f, stat in zip(files, stats)], axis=1)
                journal.commit(start, stop, block, list(range(start, stop)), [])
            journal.commit(n, n + len(skipped), np.zeros((0, column), np.float32), [],
                           [(n + i, reason) for i, (_, reason) in enumerate(skipped)])
            assemble_feature_file(journal, output, attrs, dtype="float32",
                                  content=first.identity.get("content_digest"), duplicates=first.duplicate_rows())
            journal.remove()
    finally:
        for f in files:
            f.close()
    return FuseSummary(output, n, column, parts, time.perf_counter() - started)


def _scaled(block: np.ndarray, stat: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    if stat is None:
        return block
    return ((block - stat[0]) / stat[1]).astype(np.float32)


__all__ = ["FUSE_SCALES", "FuseSummary", "fuse_features"]
