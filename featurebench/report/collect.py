"""Collect run records: every ``RESULTS_DIR/<run>/metrics.json``, parsed and checked against the schema.

The schema is ``docs/metrics.md`` (``schema = "featurebench-run"``, version 1). A run folder whose
``metrics.json`` is missing, not JSON, or breaks the schema is returned as an :class:`UnreadableRun`
with a reason that names the file and the fault; every other run is still returned.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from featurebench.errors import FeaturebenchError, note_file

METRICS_FILE = "metrics.json"
SCHEMA_NAME = "featurebench-run"
SCHEMA_VERSION = 1

#: Keys that must be present and non-null for a run to be reported at all.
REQUIRED = ("schema", "schema_version", "dataset", "extractor", "classifier", "accuracy")


# --- value checks: each returns None when fine, else a short description of the fault ----------

def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _str(value: Any) -> str | None:
    return None if isinstance(value, str) else "expected a string"


def _bool(value: Any) -> str | None:
    return None if isinstance(value, bool) else "expected true or false"


def _int(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return "expected an integer"
    return None if value >= 0 else "expected a non-negative integer"


def _nonneg(value: Any) -> str | None:
    if not _is_number(value):
        return "expected a number"
    if math.isnan(value):
        return None  # NaN means "not measured"; shown as a blank
    return None if value >= 0 else "expected a non-negative number"


def _fraction(value: Any) -> str | None:
    if not _is_number(value):
        return "expected a number between 0 and 1"
    if math.isnan(value):
        return None
    return None if 0.0 <= value <= 1.0 else f"expected a number between 0 and 1, got {value!r}"


def _ci(value: Any) -> str | None:
    if not (isinstance(value, list) and len(value) == 2 and all(_fraction(v) is None for v in value)):
        return "expected [low, high] with numbers between 0 and 1"
    return None


def _object(value: Any) -> str | None:
    return None if isinstance(value, dict) else "expected a JSON object"


def _grid(value: Any) -> str | None:
    if isinstance(value, dict) or (isinstance(value, list) and all(isinstance(v, dict) for v in value)):
        return None
    return "expected a JSON object (or a list of them)"


def _per_class(value: Any) -> str | None:
    if not isinstance(value, list):
        return "expected a list of {label, precision, recall, f1, support}"
    for i, row in enumerate(value):
        if not isinstance(row, dict) or not isinstance(row.get("label"), str):
            return f"entry {i} is not an object with a string 'label'"
        for key in ("precision", "recall", "f1"):
            if row.get(key) is not None and _fraction(row[key]) is not None:
                return f"entry {i} ({row['label']!r}): '{key}' {_fraction(row[key])}"
        if row.get("support") is not None and _int(row["support"]) is not None:
            return f"entry {i} ({row['label']!r}): 'support' {_int(row['support'])}"
    return None


def _confusion(value: Any) -> str | None:
    if not isinstance(value, dict):
        return "expected {labels: [...], matrix: [[...]]}"
    labels, matrix = value.get("labels"), value.get("matrix")
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        return "'labels' must be a list of strings"
    n = len(labels)
    if not isinstance(matrix, list) or len(matrix) != n:
        return f"'matrix' must have one row per label ({n})"
    for row in matrix:
        if not isinstance(row, list) or len(row) != n or not all(_nonneg(x) is None for x in row):
            return f"'matrix' must be {n}x{n} non-negative counts"
    return None


def _cv(value: Any) -> str | None:
    if not isinstance(value, dict):
        return "expected {param, results: [...]}"
    if value.get("param") is not None and not isinstance(value["param"], str):
        return "'param' must be a string or null"
    results = value.get("results")
    if not isinstance(results, list):
        return "'results' must be a list"
    for i, row in enumerate(results):
        if not isinstance(row, dict) or not isinstance(row.get("params"), dict):
            return f"results[{i}] must be an object with 'params'"
        for key in ("mean_test_score", "std_test_score"):
            if row.get(key) is not None and not _is_number(row[key]):
                return f"results[{i}].{key} must be a number"
    return None


#: Every key of schema version 1 and its check (docs/metrics.md).
SCHEMA: dict[str, Callable[[Any], str | None]] = {
    "schema": _str, "schema_version": _int, "run_name": _str, "kind": _str,
    "dataset": _str, "extractor": _str, "layer": _str, "pool": _str, "weights": _str,
    "random_init": _bool, "classifier": _str,
    "accuracy": _fraction, "accuracy_ci95": _ci, "rank1": _fraction, "rank5": _fraction,
    "mean_per_class_accuracy": _fraction, "macro_precision": _fraction, "macro_recall": _fraction,
    "macro_f1": _fraction, "weighted_f1": _fraction,
    "per_class": _per_class, "confusion": _confusion, "cv": _cv,
    "best_params": _object, "grid": _grid,
    "n_train": _int, "n_test": _int, "n_classes": _int, "feature_dim": _int,
    "split": _str, "fit_seconds": _nonneg, "predict_seconds": _nonneg,
    "extract_images_per_second": _nonneg, "feature_file": _str, "feature_file_bytes": _int,
    "provenance": _object, "versions": _object, "command": _str, "created": _str,
}


@dataclass(frozen=True)
class Run:
    """One readable run: its folder name (relative to RESULTS_DIR), folder, and the parsed record.

    ``metrics`` holds every schema key (missing optional keys filled with ``None``; ``notes``
    says which were missing).
    """

    name: str
    path: Path
    metrics: dict[str, Any]
    notes: tuple[str, ...] = ()

    @property
    def random_init(self) -> bool:
        return bool(self.metrics.get("random_init"))

    @property
    def title(self) -> str:
        m = self.metrics
        title = f"{m['dataset']} · {m['extractor']} · {m['classifier']}"
        return f"{title} (random-init baseline)" if self.random_init else title


@dataclass(frozen=True)
class UnreadableRun:
    """A run folder that could not be reported, and why."""

    name: str
    path: Path
    reason: str


@dataclass
class Collection:
    runs: list[Run] = field(default_factory=list)
    unreadable: list[UnreadableRun] = field(default_factory=list)


def validate(record: Any) -> tuple[dict[str, Any], list[str]]:
    """Check one parsed ``metrics.json`` against schema version 1.

    Returns the record with every schema key present (missing optional ones as ``None``) and notes
    about missing optional keys. Raises ``ValueError`` naming the first faulty key.
    """
    if not isinstance(record, dict):
        raise ValueError(f"top level is a JSON {type(record).__name__}, expected an object")
    if record.get("schema") != SCHEMA_NAME:
        raise ValueError(f"'schema' is {record.get('schema')!r}, expected {SCHEMA_NAME!r} (not a featurebench run record)")
    version = record.get("schema_version")
    if _int(version) is not None:
        raise ValueError(f"'schema_version' is {version!r}, expected an integer")
    if version > SCHEMA_VERSION:
        raise ValueError(f"schema_version {version} is newer than this featurebench reads ({SCHEMA_VERSION}); upgrade featurebench")
    missing_required = [k for k in REQUIRED if record.get(k) is None]
    if missing_required:
        raise ValueError(f"required key(s) missing or null: {', '.join(missing_required)}")
    out = dict(record)
    notes = []
    missing = [k for k in SCHEMA if k not in record]
    if missing:
        notes.append(f"metrics.json lacks key(s) {', '.join(missing)} (shown as blank)")
    for key, check in SCHEMA.items():
        value = out.setdefault(key, None)
        if value is None:
            continue
        fault = check(value)
        if fault:
            raise ValueError(f"key '{key}': {fault}")
    if isinstance(out["accuracy"], float) and math.isnan(out["accuracy"]):
        raise ValueError("key 'accuracy' is NaN")
    return out, notes


def read_run(run_dir: Path, name: str) -> Run | UnreadableRun:
    """Read and validate ``run_dir/metrics.json``."""
    path = run_dir / METRICS_FILE
    note_file(path)
    if not path.is_file():
        return UnreadableRun(name, run_dir, f"no {METRICS_FILE} in this folder (run unfinished, or not a run folder)")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return UnreadableRun(name, run_dir, f"cannot read {METRICS_FILE}: {exc}")
    if not text.strip():
        return UnreadableRun(name, run_dir, f"{METRICS_FILE} is empty")
    try:
        record = json.loads(text)
    except RecursionError:
        return UnreadableRun(name, run_dir, f"{METRICS_FILE} is nested too deeply to read")
    except ValueError as exc:  # JSONDecodeError, or an integer with more digits than Python converts
        return UnreadableRun(name, run_dir, f"{METRICS_FILE} is not valid JSON: {exc}")
    try:
        metrics, notes = validate(record)
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        return UnreadableRun(name, run_dir, f"{METRICS_FILE} does not match the run-record schema: "
                             f"{exc if isinstance(exc, ValueError) else f'{type(exc).__name__}: {exc}'}")
    return Run(name, run_dir, metrics, tuple(notes))


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith((".", "__")) for part in path.relative_to(root).parts)


def _holds_feature_files(folder: Path) -> bool:
    return any(p.suffix in (".h5", ".hdf5") for p in folder.iterdir())


def collect_runs(results_dir: str | Path) -> Collection:
    """Every run under ``results_dir``, sorted by folder name.

    A run is a folder holding ``metrics.json`` (at any depth). Any top-level folder with no
    ``metrics.json`` anywhere below it is listed as unreadable too, so a run that died before
    writing its record is visible in the report. Hidden folders, ``*.partial`` folders and folders
    of feature files (holding ``*.h5``) are ignored.
    """
    root = Path(results_dir)
    if not root.is_dir():
        raise FeaturebenchError(f"results folder {root} does not exist or is not a folder; "
                                "pass the --out folder of `featurebench fit`.")
    run_dirs = sorted({p.parent for p in root.rglob(METRICS_FILE)
                       if not _hidden(p, root) and not any(s.endswith(".partial") for s in p.relative_to(root).parts)})
    covered = {d.relative_to(root).parts[0] for d in run_dirs if d != root}
    for child in sorted(root.iterdir()):
        if (child.is_dir() and child.name not in covered and not child.name.startswith((".", "__"))
                and not child.name.endswith(".partial") and not _holds_feature_files(child)):
            run_dirs.append(child)
    collection = Collection()
    for run_dir in sorted(run_dirs):
        name = run_dir.relative_to(root).as_posix() if run_dir != root else root.name
        result = read_run(run_dir, name)
        (collection.runs if isinstance(result, Run) else collection.unreadable).append(result)
    return collection
