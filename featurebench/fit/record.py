"""The run record: ``metrics.json`` (docs/metrics.md, schema version 1) and the files beside it."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import platform
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

SCHEMA = "featurebench-run"
SCHEMA_VERSION = 1

#: Every key of docs/metrics.md, in its order.
METRICS_KEYS = (
    "schema", "schema_version", "run_name", "kind", "dataset", "extractor", "layer", "pool", "weights",
    "random_init", "classifier", "accuracy", "accuracy_ci95", "rank1", "rank5", "mean_per_class_accuracy",
    "macro_precision", "macro_recall", "macro_f1", "weighted_f1", "per_class", "confusion", "cv", "best_params",
    "grid", "n_train", "n_test", "n_classes", "feature_dim", "split", "fit_seconds", "predict_seconds",
    "extract_images_per_second", "feature_file", "feature_file_bytes", "provenance", "versions", "command",
    "created",
)


def jsonable(value: Any) -> Any:
    """Plain JSON values: numpy scalars/arrays converted, NaN/inf -> null."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def provenance(attrs: dict[str, Any]) -> dict[str, Any]:
    """Every feature-file attribute, with JSON-encoded lists/dicts decoded."""
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        if isinstance(value, str) and value[:1] in ("[", "{"):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                pass
        out[key] = value
    return jsonable(out)


def versions() -> dict[str, Any]:
    """Versions of what made the run (TensorFlow only when it was already imported)."""
    from importlib import metadata

    from featurebench import __version__

    def version(dist: str) -> str | None:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    out = {"python": platform.python_version(), "featurebench": __version__,
           "scikit-learn": version("scikit-learn"), "xgboost": version("xgboost"), "numpy": version("numpy"),
           "scipy": version("scipy"), "h5py": version("h5py"), "skops": version("skops")}
    out["tensorflow"] = (version("tensorflow-cpu") or version("tensorflow")) if "tensorflow" in sys.modules else None
    return out


def now_iso() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


def cv_block(table: list[dict[str, Any]], param: str | None) -> dict[str, Any]:
    """The ``cv`` entry: the main swept parameter and the search table."""
    return {"param": param, "results": [
        {"params": row["params"], "mean_test_score": row["mean_test_score"], "std_test_score": row["std_test_score"]}
        for row in table]}


def cv_results_csv(table: list[dict[str, Any]]) -> str:
    """The whole search table as CSV (one ``param_<name>`` column per parameter)."""
    names = sorted({k for row in table for k in row["params"]})
    extra = sorted({k for row in table for k in row} - {"params"})
    first = ["rank_test_score", "mean_test_score", "std_test_score"]
    columns = [f"param_{n}" for n in names] + first + [k for k in extra if k not in first] + ["params"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in table:
        values = [row["params"].get(n, "") for n in names] + [row.get(k, "") for k in columns[len(names):-1]]
        writer.writerow([*values, json.dumps(jsonable(row["params"]), sort_keys=True)])
    return buffer.getvalue()


#: Per-test-row class scores of a run (``featurebench ensemble`` reads them; ``predictions.csv`` keeps
#: only the top and the true class's score).
PROBABILITIES_FILE = "probabilities.npz"


def write_probabilities(path: Path, paths: list[str], y_true: np.ndarray, scores: np.ndarray,
                        label_names: list[str], score_kind: str = "probability") -> None:
    """Write the test rows' paths, true labels and class scores (``probability`` or ``decision``)
    as a plain ``.npz`` (no pickled objects: ``np.load`` reads it with ``allow_pickle=False``)."""
    if not (len(paths) == len(y_true) == len(scores)):
        raise ValueError(f"probabilities: {len(paths)} paths, {len(y_true)} labels, {len(scores)} score rows")
    with open(path, "wb") as handle:
        np.savez(handle, paths=np.asarray(paths, dtype=str), y_true=np.asarray(y_true, dtype=np.int64),
                 scores=np.asarray(scores, dtype=np.float32), label_names=np.asarray(label_names, dtype=str),
                 score_kind=np.asarray(score_kind))


def read_probabilities(path: Path) -> dict[str, Any]:
    """``paths`` (list), ``y_true``, ``scores``, ``label_names`` (list), ``score_kind`` from a probabilities file."""
    with np.load(path, allow_pickle=False) as data:
        return {"paths": data["paths"].tolist(), "y_true": data["y_true"], "scores": data["scores"],
                "label_names": data["label_names"].tolist(), "score_kind": str(data["score_kind"])}


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(jsonable(data), indent=2, allow_nan=False) + "\n")


def test_rows_digest(paths: list[str], y_true: np.ndarray, label_names: list[str]) -> str:
    """A digest of the exact test rows a run scored: each row as its stored path and true label
    name, in sorted order (so the row order and the label space's numbering do not matter).

    Two runs with the same digest were scored on the same images with the same labels; the report
    ranks runs only against runs with the same digest."""
    rows = sorted(f"{path}\t{label_names[int(label)]}" for path, label in zip(paths, y_true))
    return "sha256:" + hashlib.sha256("\n".join(rows).encode("utf-8", "surrogateescape")).hexdigest()[:20]


def combined_digest(seeds: list[int], digests: list[str]) -> str:
    """The digest of several splits' test rows (``--repeats``), in seed order: equal only for runs
    over the same splits, so their per-split scores can be paired."""
    text = "\n".join(f"{seed}:{digest}" for seed, digest in zip(seeds, digests))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:20]


#: ``test_set.kind`` values: how a run's test rows were chosen.
STORED_SPLIT = "stored"


def test_set(kind: str, description: str, n_rows: int) -> dict[str, Any]:
    """The ``test_set`` entry: ``kind`` (``stored``: the feature file's stored split over the whole file;
    ``stratified``, ``repeats``, ``test-file``, ``audited``), a short description and the row count."""
    return {"kind": kind, "description": description, "n_rows": int(n_rows)}
