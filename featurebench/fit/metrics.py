"""Test-set metrics: accuracy, rank-k, mean per-class accuracy, P/R/F1, confusion, bootstrap CI.

Everything works in the run's full label space (``label_names``): an estimator
trained on a subset of the classes gets ``-inf`` scores for the others.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np


def estimator_scores(estimator: Any, X: np.ndarray) -> tuple[np.ndarray, str]:
    """Per-class scores ``(n, K)`` for ranking: ``predict_proba`` if available, else
    ``decision_function`` (a binary 1-d decision becomes ``[-d, d]``)."""
    if hasattr(estimator, "predict_proba"):
        try:
            return np.asarray(estimator.predict_proba(X), dtype=np.float64), "probability"
        except AttributeError:  # e.g. SVC(probability=False) exposes the method but refuses
            pass
    decision = np.asarray(estimator.decision_function(X), dtype=np.float64)
    if decision.ndim == 1:
        decision = np.column_stack([-decision, decision])
    return decision, "decision"


def expand_scores(scores: np.ndarray, classes: np.ndarray, n_classes: int) -> np.ndarray:
    """Scores for ``classes`` (label indices, one per column) placed into ``n_classes`` columns;
    classes the estimator never saw score ``-inf``."""
    full = np.full((scores.shape[0], n_classes), -np.inf, dtype=np.float64)
    full[:, np.asarray(classes, dtype=np.int64)] = scores
    return full


def true_class_rank(scores: np.ndarray, y_true: np.ndarray) -> np.ndarray:
    """0-based rank of the true class in each row, best first; ties go to the lower class index
    (the order of a stable descending sort)."""
    scores = np.asarray(scores, dtype=np.float64)
    y_true = np.asarray(y_true, dtype=np.int64)
    true_score = scores[np.arange(len(y_true)), y_true][:, None]
    columns = np.arange(scores.shape[1])[None, :]
    higher = scores > true_score
    tied_before = (scores == true_score) & (columns < y_true[:, None])
    return (higher | tied_before).sum(axis=1)


def rank_k_accuracy(scores: np.ndarray, y_true: np.ndarray, k: int) -> float:
    """Share of rows whose true class is among the ``k`` highest scores."""
    if len(y_true) == 0:
        return float("nan")
    return float(np.mean(true_class_rank(scores, y_true) < k))


def bootstrap_ci(correct: np.ndarray, n_boot: int = 1000, seed: int = 42, level: float = 0.95
                 ) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean of ``correct`` (0/1 per test row)."""
    correct = np.asarray(correct, dtype=np.float64)
    if len(correct) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    for start in range(0, n_boot, 256):  # bounded memory for big test sets
        stop = min(start + 256, n_boot)
        idx = rng.integers(0, len(correct), size=(stop - start, len(correct)))
        means[start:stop] = correct[idx].mean(axis=1)
    alpha = (1 - level) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return float(low), float(high)


def mean_per_class_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean recall over the classes present in ``y_true``."""
    classes = np.unique(y_true)
    if not len(classes):
        return float("nan")
    return float(np.mean([np.mean(y_pred[y_true == c] == c) for c in classes]))


def mean_ci95(values: list[float]) -> list[float] | None:
    """Student-t 95% confidence interval of the mean of ``values`` (split scores), clipped to [0, 1];
    ``None`` for fewer than 2 values."""
    from scipy import stats

    values = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if len(values) < 2:
        return None
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return [float(max(0.0, values.mean() - half)), float(min(1.0, values.mean() + half))]


def evaluate(y_true: np.ndarray, y_pred: np.ndarray, scores: np.ndarray, label_names: list[str],
             seed: int = 42, n_boot: int = 1000, ks: tuple[int, ...] = (1, 5)) -> dict[str, Any]:
    """All test metrics of ``docs/metrics.md`` that depend on predictions only."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    n_classes = len(label_names)
    labels = np.arange(n_classes)
    correct = y_true == y_pred
    out: dict[str, Any] = {"accuracy": float(correct.mean()) if len(correct) else float("nan")}
    out["accuracy_ci95"] = list(bootstrap_ci(correct, n_boot, seed))
    rank_k = {f"rank{k}": (rank_k_accuracy(scores, y_true, k) if k < n_classes or k == 1 else None) for k in ks}
    # rank-k for every k < n_classes that the caller asked for; rank5 null with <= 5 classes
    out.update(rank_k)
    out["mean_per_class_accuracy"] = mean_per_class_accuracy(y_true, y_pred)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        present = np.union1d(y_true, y_pred)
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=present, average="macro", zero_division=0)
        _, _, wf, _ = precision_recall_fscore_support(y_true, y_pred, labels=present, average="weighted",
                                                      zero_division=0)
        pc, rc, fc, sc = precision_recall_fscore_support(y_true, y_pred, labels=labels, average=None,
                                                         zero_division=0)
    out.update(macro_precision=float(p), macro_recall=float(r), macro_f1=float(f), weighted_f1=float(wf))
    out["per_class"] = [{"label": name, "precision": float(pc[i]), "recall": float(rc[i]), "f1": float(fc[i]),
                         "support": int(sc[i])} for i, name in enumerate(label_names)]
    matrix = confusion_matrix(y_true, y_pred, labels=labels) if len(y_true) else np.zeros((n_classes, n_classes))
    out["confusion"] = {"labels": list(label_names), "matrix": matrix.astype(int).tolist()}
    return out


def classification_report_text(y_true: np.ndarray, y_pred: np.ndarray, label_names: list[str]) -> str:
    """scikit-learn's classification report with class names (every class listed)."""
    from sklearn.metrics import classification_report

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return classification_report(y_true, y_pred, labels=np.arange(len(label_names)), target_names=label_names,
                                     digits=4, zero_division=0)


def confusion_csv(confusion: dict[str, Any]) -> str:
    """The confusion matrix as CSV: a header of predicted labels, one row per true label."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["true\\predicted", *confusion["labels"]])
    for name, row in zip(confusion["labels"], confusion["matrix"]):
        writer.writerow([name, *row])
    return buffer.getvalue()
