"""Run every audit on a feature file; write ``audit.json`` and ``exclude_rows.txt``.

With ``--run RUN_DIR`` the audit uses that run's test rows (its ``predictions.csv``) and writes
into the run folder, where ``featurebench report`` shows it; without, it uses the stored index
split and writes into ``--out``.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from featurebench.audit.duplicates import DEFAULT_RATIO, near_duplicates
from featurebench.audit.outliers import imbalance, outliers
from featurebench.errors import FeaturebenchError
from featurebench.fit.exclude import PREDICTIONS_FILE
from featurebench.fit.memory import human_bytes, parse_memory
from featurebench.outputs import check_writable_folder
from featurebench.store.identity import check_run_source
from featurebench.store.reader import open_feature_file

AUDIT_FILE = "audit.json"
EXCLUDE_FILE = "exclude_rows.txt"
AUDIT_SCHEMA = "featurebench-audit"


@dataclass
class AuditResult:
    """The audit record (as written to ``audit.json``) and where it went."""

    record: dict[str, Any]
    path: Path
    exclude_path: Path
    warnings: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """A few lines for the terminal."""
        r = self.record
        dup = r["near_duplicates"]
        acc = dup["accuracy"]
        lines = [f"{len(dup['pairs'])} near-duplicate train/test pair(s) at cosine >= {dup['threshold']:.4f} "
                 f"({dup['test_rows_affected']} test row(s)); {len(dup['exact_duplicates'])} byte-identical file(s)"]
        if acc and acc["without_duplicates"] is None:
            lines.append(f"  test accuracy {acc['all']:.4f}; every test row has a near-duplicate in train, so there "
                         f"is no accuracy without them ({acc['source']})")
        elif acc:
            lines.append(f"  test accuracy {acc['all']:.4f} -> {acc['without_duplicates']:.4f} without them "
                         f"({acc['n_test_without']} rows; {acc['source']})")
        labels = r["label_issues"]
        lines.append(f"{len(labels['rows'])} label issue(s) ({labels['method']})" if "rows" in labels
                     else f"label issues: skipped ({labels['skipped']})")
        lines.append(f"{len(r['outliers']['rows'])} outlier(s) (distance to nearest class > "
                     f"{r['outliers']['cutoff']:.3f})")
        ratio = r["imbalance"]["ratio_largest_to_smallest"]
        lines.append(f"class imbalance: largest/smallest = {ratio:.2f}" if ratio else "class imbalance: -")
        lines.append(f"wrote {self.path} and {self.exclude_path} (refit with `featurebench fit ... "
                     f"--exclude {self.exclude_path}`)")
        return "\n".join(lines)


def _run_test_rows(run_dir: Path) -> tuple[np.ndarray, dict[int, bool], dict[str, Any]]:
    """The run's test rows, whether each was classified correctly, and its metrics."""
    try:
        metrics = json.loads((run_dir / "metrics.json").read_text())
    except (OSError, ValueError) as exc:
        raise FeaturebenchError(f"--run {run_dir}: no readable metrics.json ({exc})") from None
    if not isinstance(metrics, dict):
        raise FeaturebenchError(f"--run {run_dir}: metrics.json is not a run record (a JSON {type(metrics).__name__})")
    if metrics.get("split") == "test-file":
        raise FeaturebenchError(f"--run {run_dir} tested on a separate --test-file: audit that pair without --run")
    path = run_dir / PREDICTIONS_FILE
    if not path.is_file():
        raise FeaturebenchError(f"--run {run_dir} has no {PREDICTIONS_FILE} (made by an older featurebench); "
                                "re-run its `featurebench fit` command with --force")
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    correct = {int(r["row"]): r["true"] == r["predicted"] for r in rows}
    return np.array(sorted(correct), dtype=np.int64), correct, metrics


def _reference_correct(X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray) -> dict[int, bool]:
    """A scaled logistic regression (C=1) fitted on ``train``: is each test row classified right?"""
    from featurebench.audit.labels import ScaledLogisticRegression

    # X[train] and X[test] are copies of their own: the model scales them in place.
    model = ScaledLogisticRegression(1.0).fit(X[train], y[train])
    return {int(r): bool(p == t) for r, p, t in zip(test, model.predict(X[test]), y[test])}


def _accuracy(correct: dict[int, bool], dropped: set[int], source: str) -> dict[str, Any]:
    kept = [ok for row, ok in correct.items() if row not in dropped]
    return {"all": float(np.mean(list(correct.values()))), "without_duplicates": float(np.mean(kept)) if kept else None,
            "n_test": len(correct), "n_test_without": len(kept), "source": source}


def run_audit(features_path: str | Path, run_dir: str | Path | None = None, out: str | Path | None = None,
              threshold: float | None = None, ratio: float = DEFAULT_RATIO, labels: bool = True, folds: int = 5, seed: int = 42,
              max_listed: int = 200, say: Callable[[str], Any] | None = None) -> AuditResult:
    """Audit a feature file: near-duplicates across the split, label issues, outliers, imbalance.

    ``say`` receives a line per stage (with the elapsed seconds) while it works."""
    started = time.perf_counter()

    def stage(text: str) -> None:
        if say is not None:
            say(f"[{time.perf_counter() - started:6.1f} s] {text}")
    if threshold is not None and not 0 < threshold <= 1:
        raise FeaturebenchError(f"--threshold {threshold}: a cosine similarity in (0, 1]")
    if not 0 < ratio < 1:
        raise FeaturebenchError(f"--ratio {ratio}: a fraction of the typical nearest-neighbour distance, in (0, 1)")
    if labels:
        from featurebench.audit.labels import require_cleanlab

        require_cleanlab()  # before the work, not after it
    run_path = Path(run_dir) if run_dir is not None else None
    folder = run_path if run_path is not None else Path(out or Path(features_path).with_suffix(".audit"))
    if run_path is None or run_path.is_dir():  # (a missing run folder is named below)
        check_writable_folder(folder, "--run" if run_path is not None else "--out", create=run_path is None)
    with open_feature_file(features_path) as features:
        need = features.n_rows * features.feature_dim * 4 * 2  # the rows and one copy (unit rows / a fold's scaled rows)
        if need > parse_memory(None):
            raise FeaturebenchError(
                f"auditing {features.path} needs about {human_bytes(need)} ({features.n_rows} x {features.feature_dim} "
                f"features in memory), more than half the available memory ({human_bytes(parse_memory(None))}); "
                "audit an average-pooled extraction (e.g. `--pool avg`) or a smaller dataset")
        X = features.read_rows()
        y = features.labels.astype(np.int64)
        names, paths, attrs = features.label_names, features.paths, features.attrs
        byte_duplicates = features.duplicates
        split_index = features.split_index
        file_identity = features.identity
    n = len(y)
    if run_path is not None:
        test, correct, metrics = _run_test_rows(run_path)
        check_run_source("audit --run", metrics, file_identity, str(run_path), str(features_path))
        if len(test) and test.max() >= n:
            raise FeaturebenchError(f"--run {run_path} was fitted on another feature file ({metrics.get('feature_file')})")
        source = f"run {run_path.name}"
    else:
        test = np.arange(split_index, n)
        correct, source = None, "reference logistic regression (C=1, scaled) on the train rows"
    train = np.setdiff1d(np.arange(n), test)
    _check_split(features_path, y, names, train, test)
    if correct is None:
        correct = _reference_correct(X, y, train, test)
    stage(f"near-duplicates: {len(test)} test x {len(train)} train rows")
    pairs, used = near_duplicates(X, train, test, threshold, ratio)
    dup_test = {p.test_row for p in pairs}
    path_row = {p: i for i, p in enumerate(paths)}
    test_set = set(test.tolist())
    exact = [{"path": a, "first_path": b, "crosses_split": (path_row.get(a, -1) in test_set)
              != (path_row.get(b, -1) in test_set)} for a, b in byte_duplicates]
    record: dict[str, Any] = {
        "schema": AUDIT_SCHEMA, "schema_version": 1, "feature_file": str(Path(features_path).resolve()),
        "source": str(attrs.get("source") or ""), "dataset": str(attrs.get("dataset") or ""),
        "extractor": str(attrs.get("model") or ""), "run": str(run_path) if run_path else None,
        "n_rows": n, "n_train": len(train), "n_test": len(test), "label_names": list(names),
        "near_duplicates": {
            "threshold": round(used, 6), "threshold_rule": (f"cosine >= {threshold} (given)" if threshold is not None else
                f"adaptive: {ratio} x the typical distance from a train row to its nearest different train "
                f"row (median over the rows without a near copy)"),
            "centred_on": "train mean",
            "pairs": [{"train_row": p.train_row, "test_row": p.test_row, "train_path": paths[p.train_row],
                       "test_path": paths[p.test_row], "similarity": round(p.similarity, 5)} for p in pairs],
            "test_rows_affected": len(dup_test), "exact_duplicates": exact,
            "accuracy": _accuracy(correct, dup_test, source)},
    }
    if labels:
        from featurebench.audit.labels import find_label_issues, out_of_fold_probabilities

        stage(f"label issues: {folds}-fold out-of-fold logistic regression on {n} rows")
        probs = out_of_fold_probabilities(X, y, len(names), folds, seed, progress=stage)
        issues = find_label_issues(y, probs)
        record["label_issues"] = {
            "method": f"confident learning (cleanlab) on {folds}-fold out-of-fold logistic-regression probabilities",
            "rows": [{"row": i.row, "path": paths[i.row], "given": names[i.given], "suggested": names[i.suggested],
                      "self_confidence": round(i.self_confidence, 5), "split": "test" if i.row in test_set else "train"}
                     for i in issues]}
    else:
        record["label_issues"] = {"skipped": "--no-labels"}
    stage("outliers and class balance")
    flagged, cut = outliers(X, y)
    record["outliers"] = {"cutoff": cut, "rule": "cosine distance to the nearest class centroid > Q3 + 3 IQR",
                          "rows": [{"row": o.row, "path": paths[o.row], "label": names[o.label],
                                    "distance": round(o.distance, 5)} for o in flagged[:max_listed]],
                          "n_flagged": len(flagged)}
    record["imbalance"] = imbalance(y, names, split_index)
    record["seconds"] = round(time.perf_counter() - started, 3)
    folder.mkdir(parents=True, exist_ok=True)
    record["exclude_file"] = EXCLUDE_FILE
    audit_path = folder / AUDIT_FILE
    tmp = audit_path.with_name(f".{AUDIT_FILE}.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(audit_path)
    exclude_path = folder / EXCLUDE_FILE
    exclude_path.write_text(_exclude_text(record, Path(features_path).name))
    return AuditResult(record, audit_path, exclude_path)


def _check_split(features_path: str | Path, y: np.ndarray, names: list[str], train: np.ndarray,
                 test: np.ndarray) -> None:
    """Refuse a split the audit cannot work on: no train or no test rows, or fewer than 2 classes
    among the train rows (the reference and label-audit classifiers are fitted on them)."""
    if not len(train) or not len(test):
        raise FeaturebenchError(f"{features_path}: the audit compares test rows with train rows, and this split has "
                                f"{len(train)} train and {len(test)} test rows; audit a larger file.")
    present = sorted({names[i] for i in np.unique(y[train])})
    if len(present) < 2:
        raise FeaturebenchError(f"{features_path}: the audit fits classifiers on the train rows, which need at least "
                                f"2 classes; its {len(train)} train row(s) hold {len(present)} "
                                f"({', '.join(map(repr, present))}); audit a file with more classes or rows.")


def _exclude_text(record: dict[str, Any], features_name: str) -> str:
    """The rows file for ``fit --exclude``: train copies of near-duplicates, then label issues."""
    lines = [f"# rows of {_one_line(features_name)} flagged by `featurebench audit` (edit freely; '#' starts a comment)"]
    seen: set[int] = set()
    for pair in record["near_duplicates"]["pairs"]:
        if pair["train_row"] not in seen:
            seen.add(pair["train_row"])
            lines.append(f"{pair['train_row']}  # near-duplicate of test row {pair['test_row']} "
                         f"(cosine {pair['similarity']:.3f})")
    for issue in record["label_issues"].get("rows", []):
        if issue["row"] not in seen:
            seen.add(issue["row"])
            lines.append(f"{issue['row']}  # label issue: labelled {_one_line(issue['given'])}, looks like "
                         f"{_one_line(issue['suggested'])}")
    return "\n".join(lines) + "\n"


def _one_line(name: str) -> str:
    """A label name for a comment line: quoted as JSON when it holds a line break or quote."""
    return json.dumps(name, ensure_ascii=False) if any(c in name for c in "\n\r\"") else name
