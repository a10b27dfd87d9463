"""Near-duplicate images across the train/test split, found in feature space.

A resized or re-encoded copy of an image lands almost on the same feature vector. Rows are
centred on the train mean and L2-normalised; a (train, test) pair is flagged when its cosine
similarity reaches the threshold, whatever the two labels (a copy with another label is a
leak and a label error at once). How close "almost the same" is depends on the extractor and
the data, so the default threshold adapts: a pair must be ``ratio`` times closer than the
typical gap between a train row and its nearest *different* train row.

The typical gap is measured on de-duplicated rows, so that it stays meaningful however many
rows have copies (when most rows have one, the plain median nearest-neighbour distance is
the distance to a copy, 0 for exact ones, and the threshold would collapse to cosine 1.0:
heavy duplication reported as none). For up to 2,000 sampled train rows it takes the
distance to the nearest other row that is not an exact copy (distance > 1e-3), then
repeats, starting from the largest of these distances: rows whose nearest distance is below
``ratio`` times the current gap count as having a near copy and are left out, and the gap
is the median over the rows left. This stops when the gap no longer changes; with few
copies it is the plain median (copies are a small tail), with many it is the median over
the rows that have none. An explicit cosine threshold overrides it. The search runs block
by block, in float32: besides the feature array, memory is one unit-length copy of the train
rows and one block of similarities (at most :data:`BLOCK_BYTES`, and at most a quarter of that
copy), never a test x train matrix.
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
    """Rows of ``X`` minus ``centre``, scaled to unit length (zero rows stay zero), as a new float32 array."""
    return _to_unit(np.array(X, dtype=np.float32), centre)  # the one copy, centred and scaled in place


def _to_unit(Z: np.ndarray, centre: np.ndarray | float = 0.0) -> np.ndarray:
    """``Z`` (float32) minus ``centre`` and scaled to unit rows, in place; returns ``Z``."""
    Z -= centre
    Z /= np.maximum(np.sqrt(np.einsum("ij,ij->i", Z, Z))[:, None], 1e-12)
    return Z


#: Rows centred and scaled per step when a unit copy is made from a feature array.
ROW_BLOCK = 2048
#: Bytes of one block of similarities (test rows x train rows) in :func:`near_duplicates`.
BLOCK_BYTES = 64 << 20


def row_mean(X: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """The mean of ``X[rows]`` (all rows when None) as float32, summed block by block in float64
    (no copy of the rows)."""
    index = np.arange(len(X)) if rows is None else np.asarray(rows)
    total = np.zeros(X.shape[1], dtype=np.float64)
    for start in range(0, len(index), ROW_BLOCK):
        total += X[index[start:start + ROW_BLOCK]].sum(axis=0, dtype=np.float64)
    return (total / max(len(index), 1)).astype(np.float32)


def unit_rows_of(X: np.ndarray, rows: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """:func:`unit_rows` of ``X[rows]``, filled block by block: the result is the only copy made."""
    Z = np.empty((len(rows), X.shape[1]), dtype=np.float32)
    for start in range(0, len(rows), ROW_BLOCK):
        Z[start:start + ROW_BLOCK] = X[rows[start:start + ROW_BLOCK]]
        _to_unit(Z[start:start + ROW_BLOCK], centre)
    return Z


#: Distances up to this are exact copies (float32 rounding of identical rows), left out of the gap.
EXACT_COPY_DISTANCE = 1e-3


def nearest_distinct_distances(train: np.ndarray, sample: int = 2000, seed: int = 0) -> np.ndarray:
    """For (sampled) unit train rows, the distance to the nearest other row that is not an exact
    copy (``inf`` when every other row is one)."""
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(train), min(sample, len(train)), replace=False)
    best = np.full(len(picked), -np.inf)
    limit = 1 - EXACT_COPY_DISTANCE ** 2 / 2  # cosine of the exact-copy distance
    rows = train[picked]
    for start in range(0, len(train), 512):  # a (sample x 512) block of similarities at a time
        sims = rows @ train[start:start + 512].T
        sims[sims > limit] = -np.inf  # itself and its exact copies
        best = np.maximum(best, sims.max(axis=1))
    return np.where(np.isfinite(best), np.sqrt(np.maximum(0.0, 2 - 2 * best)), np.inf)


def typical_gap(train: np.ndarray, ratio: float = DEFAULT_RATIO, sample: int = 2000, seed: int = 0) -> float:
    """The typical distance from a unit train row to its nearest different row, over the rows
    without a near copy (the rule in the module docstring); 2.0 (the largest distance between
    unit rows) when every row is an exact copy of every other."""
    distances = nearest_distinct_distances(train, sample, seed)
    distances = distances[np.isfinite(distances)]
    if not len(distances):
        return 2.0
    gap = float(distances.max())
    for _ in range(100):  # a non-increasing sequence over finitely many medians: a few steps
        kept = distances[distances >= ratio * gap]
        new = float(np.median(kept))
        if new == gap:
            break
        gap = new
    return gap


def adaptive_threshold(train: np.ndarray, ratio: float = DEFAULT_RATIO) -> float:
    """The cosine similarity at ``ratio`` times the :func:`typical_gap` (unit rows: d^2 = 2 - 2 cos)."""
    return float(1 - (ratio * typical_gap(train, ratio)) ** 2 / 2)


def near_duplicates(X: np.ndarray, train_rows: np.ndarray, test_rows: np.ndarray, threshold: float | None = None,
                    ratio: float = DEFAULT_RATIO, block: int | None = None) -> tuple[list[DuplicatePair], float]:
    """Every (train, test) pair with centred cosine similarity >= the threshold (default adaptive),
    most similar first, and the threshold used. ``block``: test rows per step (default: as many as
    keep one block of similarities within :data:`BLOCK_BYTES` and a quarter of the unit train copy)."""
    centre = row_mean(X, train_rows)
    train = unit_rows_of(X, train_rows, centre)
    if threshold is None:
        threshold = adaptive_threshold(train, ratio)
    if block is None:
        block = int(np.clip(min(BLOCK_BYTES // (4 * max(len(train), 1)), X.shape[1] // 4), 16, 1024))
    pairs: list[DuplicatePair] = []
    for start in range(0, len(test_rows), block):
        rows = test_rows[start:start + block]
        sims = unit_rows(X[rows], centre) @ train.T
        hit_test, hit_train = np.nonzero(sims >= threshold)
        pairs += [DuplicatePair(int(train_rows[j]), int(rows[i]), float(sims[i, j]))
                  for i, j in zip(hit_test, hit_train)]
        del sims
    return sorted(pairs, key=lambda p: (-p.similarity, p.test_row, p.train_row)), threshold
