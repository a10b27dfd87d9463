"""Outliers (rows far from every class) and class imbalance."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from featurebench.audit.duplicates import ROW_BLOCK, row_mean, unit_rows


@dataclass(frozen=True)
class Outlier:
    """A row whose features are far from every class centroid."""

    row: int
    label: int
    distance: float


def outliers(X: np.ndarray, y: np.ndarray, iqr_factor: float = 3.0) -> tuple[list[Outlier], float]:
    """Rows whose cosine distance (centred features) to the nearest class centroid exceeds
    ``Q3 + iqr_factor * IQR`` of all rows' distances; most distant first. Also returns the cut-off.

    Two passes over blocks of rows (class sums of the unit rows, then each row's distance): no
    copy of the features is made."""
    centre = row_mean(X)
    classes, codes = np.unique(y, return_inverse=True)
    sums = np.zeros((len(classes), X.shape[1]), dtype=np.float64)
    one_hot = np.eye(len(classes), dtype=np.float32)
    for start, Z in _unit_blocks(X, centre):
        sums += one_hot[codes[start:start + len(Z)]].T @ Z
    means = sums / np.bincount(codes, minlength=len(classes))[:, None]
    centroids = unit_rows(means.astype(np.float32), 0.0)
    distance = np.empty(len(X), dtype=np.float32)
    for start, Z in _unit_blocks(X, centre):
        distance[start:start + len(Z)] = 1.0 - (Z @ centroids.T).max(axis=1)
    q1, q3 = np.percentile(distance, [25, 75])
    cut = float(q3 + iqr_factor * (q3 - q1))
    flagged = np.flatnonzero(distance > cut)
    flagged = flagged[np.argsort(-distance[flagged], kind="stable")]
    return [Outlier(int(i), int(y[i]), float(distance[i])) for i in flagged], cut


def _unit_blocks(X: np.ndarray, centre: np.ndarray):
    """``(start, unit rows)`` of ``X`` (centred on ``centre``), :data:`ROW_BLOCK` rows at a time."""
    for start in range(0, len(X), ROW_BLOCK):
        yield start, unit_rows(X[start:start + ROW_BLOCK], centre)


def imbalance(y: np.ndarray, label_names: list[str], split_index: int) -> dict:
    """Rows per class overall, in train and in test, and the largest/smallest class ratio."""
    n = len(label_names)
    total = np.bincount(y, minlength=n)
    train = np.bincount(y[:split_index], minlength=n)
    test = np.bincount(y[split_index:], minlength=n)
    present = total[total > 0]
    return {"counts": {name: {"all": int(total[i]), "train": int(train[i]), "test": int(test[i])}
                       for i, name in enumerate(label_names)},
            "ratio_largest_to_smallest": float(present.max() / present.min()) if len(present) else None,
            "classes_missing_in_test": [label_names[i] for i in range(n) if train[i] and not test[i]],
            "classes_missing_in_train": [label_names[i] for i in range(n) if test[i] and not train[i]]}
