"""Near-duplicate images across the train/test split, found in feature space.

A resized or re-encoded copy of an image lands almost on the same feature vector. Rows are
centred on the train mean and L2-normalised; a (train, test) pair is flagged when its cosine
similarity reaches the threshold, whatever the two labels (a copy with another label is a
leak and a label error at once). How close "almost the same" is depends on the extractor and
the data, so the default threshold adapts: a pair must be ``ratio`` times closer than the
typical distance between a train row and its nearest other train row (the median over up to
2,000 rows). An explicit cosine threshold overrides it. The search runs block by block:
memory is one block of similarities.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Default: a near-duplicate is this many times closer than the typical nearest-neighbour distance.
DEFAULT_RATIO = 0.25


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


def typical_gap(train: np.ndarray, sample: int = 2000, seed: int = 0) -> float:
    """Median distance from a (sampled) unit train row to its nearest other train row."""
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(train), min(sample, len(train)), replace=False)
    best = np.full(len(picked), -np.inf)
    for start in range(0, len(train), 4096):
        sims = train[picked] @ train[start:start + 4096].T
        own = picked[:, None] == np.arange(start, start + sims.shape[1])[None, :]
        sims[own] = -np.inf
        best = np.maximum(best, sims.max(axis=1))
    return float(np.median(np.sqrt(np.maximum(0.0, 2 - 2 * best))))


def adaptive_threshold(train: np.ndarray, ratio: float = DEFAULT_RATIO) -> float:
    """The cosine similarity at ``ratio`` times the :func:`typical_gap` (unit rows: d^2 = 2 - 2 cos)."""
    return float(1 - (ratio * typical_gap(train)) ** 2 / 2)


def near_duplicates(X: np.ndarray, train_rows: np.ndarray, test_rows: np.ndarray, threshold: float | None = None,
                    ratio: float = DEFAULT_RATIO, block: int = 1024) -> tuple[list[DuplicatePair], float]:
    """Every (train, test) pair with centred cosine similarity >= the threshold (default adaptive),
    most similar first, and the threshold used."""
    centre = X[train_rows].mean(axis=0)
    train = unit_rows(X[train_rows], centre)
    if threshold is None:
        threshold = adaptive_threshold(train, ratio)
    pairs: list[DuplicatePair] = []
    for start in range(0, len(test_rows), block):
        rows = test_rows[start:start + block]
        sims = unit_rows(X[rows], centre) @ train.T
        hit_test, hit_train = np.nonzero(sims >= threshold)
        pairs += [DuplicatePair(int(train_rows[j]), int(rows[i]), float(sims[i, j]))
                  for i, j in zip(hit_test, hit_train)]
    return sorted(pairs, key=lambda p: (-p.similarity, p.test_row, p.train_row)), threshold
