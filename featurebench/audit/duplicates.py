"""Near-duplicate images across the train/test split, found in feature space.

A resized or re-encoded copy of an image lands almost on the same feature vector. Rows are
centred on the train mean (so the shared "all photos look alike" direction does not count) and
L2-normalised; pairs of one train and one test row whose cosine similarity reaches the
threshold are flagged. The search runs block by block: memory is one block of similarities.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Default cosine similarity (after centring) from which a train/test pair counts as a near-duplicate.
DEFAULT_THRESHOLD = 0.95


@dataclass(frozen=True)
class DuplicatePair:
    """A train row and a test row whose features are nearly identical."""

    train_row: int
    test_row: int
    similarity: float


def unit_rows(X: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Rows of ``X`` minus ``centre``, scaled to unit length (zero rows stay zero)."""
    Z = np.asarray(X, dtype=np.float32) - centre
    norms = np.linalg.norm(Z, axis=1, keepdims=True)
    return Z / np.maximum(norms, 1e-12)


def near_duplicates(X: np.ndarray, train_rows: np.ndarray, test_rows: np.ndarray,
                    threshold: float = DEFAULT_THRESHOLD, block: int = 1024) -> list[DuplicatePair]:
    """Every (train, test) pair with centred cosine similarity >= ``threshold``, most similar first."""
    centre = X[train_rows].mean(axis=0)
    train = unit_rows(X[train_rows], centre)
    pairs: list[DuplicatePair] = []
    for start in range(0, len(test_rows), block):
        rows = test_rows[start:start + block]
        sims = unit_rows(X[rows], centre) @ train.T
        hit_test, hit_train = np.nonzero(sims >= threshold)
        pairs += [DuplicatePair(int(train_rows[j]), int(rows[i]), float(sims[i, j]))
                  for i, j in zip(hit_test, hit_train)]
    return sorted(pairs, key=lambda p: (-p.similarity, p.test_row, p.train_row))
