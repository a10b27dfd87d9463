"""The fine-tune run record: ``metrics.json`` in the docs/metrics.md shape (``kind = "finetune"``).

Metrics come from :mod:`featurebench.fit.metrics` and the JSON helpers from
:mod:`featurebench.fit.record`, so fine-tuned and feature-extraction runs are scored
and written the same way and ``featurebench report`` shows them side by side.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from featurebench.fit import metrics as M
from featurebench.fit import record as R


def build_record(*, run_name: str, dataset: str, extractor: str, layer: str, pool: str, weights: str,
                 random_init: bool, y_true: np.ndarray, proba: np.ndarray, label_names: list[str], seed: int,
                 best_params: dict[str, Any], n_train: int, feature_dim: int, fit_seconds: float,
                 predict_seconds: float, provenance: dict[str, Any], command: str,
                 extra: dict[str, Any] | None = None, kind: str = "finetune") -> dict[str, Any]:
    """Every docs/metrics.md key (non-applicable ones ``None``) plus ``extra`` keys after them.

    ``kind`` (and ``classifier``): ``finetune``, or ``scratch`` for a network trained from scratch."""
    y_pred = proba.argmax(axis=1) if len(proba) else np.zeros(0, np.int64)
    scores = M.evaluate(y_true, y_pred, proba.astype(np.float64), label_names, seed)
    record: dict[str, Any] = {
        "schema": R.SCHEMA, "schema_version": R.SCHEMA_VERSION, "run_name": run_name, "kind": kind,
        "dataset": dataset, "extractor": extractor, "layer": layer, "pool": pool, "weights": weights,
        "random_init": bool(random_init), "classifier": kind,
        **{k: scores[k] for k in ("accuracy", "accuracy_ci95", "rank1", "rank5", "mean_per_class_accuracy",
                                  "macro_precision", "macro_recall", "macro_f1", "weighted_f1", "per_class",
                                  "confusion")},
        "cv": None, "best_params": best_params, "grid": None,
        "n_train": int(n_train), "n_test": int(len(y_true)), "n_classes": len(label_names),
        "feature_dim": int(feature_dim), "split": "index",
        "fit_seconds": round(float(fit_seconds), 4), "predict_seconds": round(float(predict_seconds), 4),
        "extract_images_per_second": None, "feature_file": None, "feature_file_bytes": None,
        "provenance": R.jsonable(provenance), "versions": {**R.versions(), **_keras_version()},
        "command": command, "created": R.now_iso(),
    }
    missing = set(R.METRICS_KEYS) - set(record)
    if missing:  # the schema grew: add the new keys above
        raise RuntimeError(f"{kind} record lacks schema key(s) {sorted(missing)}")
    return R.jsonable({**record, **(extra or {})})


def _keras_version() -> dict[str, str | None]:
    from importlib import metadata

    try:
        return {"keras": metadata.version("keras")}
    except metadata.PackageNotFoundError:
        return {"keras": None}


def report_files(record: dict[str, Any], y_true: np.ndarray, proba: np.ndarray, label_names: list[str],
                 test_paths: list[str] | None = None) -> dict[str, str]:
    """``classification_report.txt`` and ``confusion.csv``, as ``fit`` writes them, and ``predictions.csv``
    (``row`` = position among the test images) when ``test_paths`` gives one path per test row."""
    from featurebench.fit.exclude import PREDICTIONS_FILE, predictions_csv

    y_pred = proba.argmax(axis=1) if len(proba) else np.zeros(0, np.int64)
    header = (f"{record['run_name']}\naccuracy {record['accuracy']:.4f}  ({record['n_test']} test images, "
              f"index split)\n\n")
    files = {"classification_report.txt": header + M.classification_report_text(y_true, y_pred, label_names),
             "confusion.csv": M.confusion_csv(record["confusion"])}
    if test_paths is not None and len(test_paths) == len(y_true):
        rows = np.arange(len(y_true))
        files[PREDICTIONS_FILE] = predictions_csv(rows, test_paths, y_true, y_pred, proba.astype(np.float64),
                                                  label_names)
    return files


def write_record(run_dir: Path, record: dict[str, Any], files: dict[str, str], test_paths: list[str],
                 y_true: np.ndarray, proba: np.ndarray, label_names: list[str]) -> None:
    """The text ``files``, ``probabilities.npz`` (per test image: path, label, probabilities) and
    ``metrics.json`` (last, so a run folder with metrics.json is complete).

    Adds to ``record`` (in place) the digest of the test rows, ``n_splits`` and, unless given,
    ``test_set`` (the stored split: these runs test on the rows past the file's split index)."""
    record.setdefault("test_rows_digest", R.test_rows_digest(test_paths, y_true, label_names))
    record.setdefault("n_splits", 1)
    record.setdefault("test_set", R.test_set(R.STORED_SPLIT, "stored split", len(y_true)))
    for name, text in files.items():
        (run_dir / name).write_text(text, encoding="utf-8")
    R.write_probabilities(run_dir / R.PROBABILITIES_FILE, test_paths, y_true, proba, label_names)
    R.write_json(run_dir / "metrics.json", record)


__all__ = ["build_record", "report_files", "write_record"]
