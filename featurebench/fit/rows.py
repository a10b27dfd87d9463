"""Row selections of a feature file, read without extra copies.

A selection is either a contiguous range (the stored index split) or a sorted
array of row numbers (a stratified split). Reads go block by block straight
into one preallocated float32 array, so reading a selection costs the selection
plus one block, never the whole file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from featurebench.store.reader import FeatureFile

#: Default rows per read when the file's chunking gives no hint.
DEFAULT_BLOCK_ROWS = 4096


@dataclass(frozen=True)
class Rows:
    """Rows ``[start:stop]`` of a file, or the sorted row numbers ``index``."""

    start: int = 0
    stop: int = 0
    index: np.ndarray | None = None

    @classmethod
    def of(cls, index: np.ndarray) -> "Rows":
        """A selection from row numbers (sorted; stored as a range when contiguous)."""
        index = np.unique(np.asarray(index, dtype=np.int64))
        if len(index) and index[-1] - index[0] + 1 == len(index):
            return cls(int(index[0]), int(index[-1]) + 1)
        return cls(index=index)

    def __len__(self) -> int:
        return len(self.index) if self.index is not None else max(0, self.stop - self.start)

    @property
    def is_range(self) -> bool:
        return self.index is None

    def numbers(self) -> np.ndarray:
        """The row numbers as an int64 array."""
        return self.index if self.index is not None else np.arange(self.start, self.stop, dtype=np.int64)

    def take(self, values: np.ndarray) -> np.ndarray:
        """``values`` (one per file row, e.g. labels) at these rows."""
        return values[self.start:self.stop] if self.index is None else values[self.index]

    def describe(self) -> str:
        return f"rows [{self.start}:{self.stop}]" if self.is_range else f"{len(self)} selected rows"


def block_rows(feature_file: FeatureFile, budget_bytes: int | None = None) -> int:
    """Rows per read: a multiple of the HDF5 chunk, at most ``budget_bytes`` when given."""
    chunk = feature_file.features.chunks[0] if feature_file.features.chunks else DEFAULT_BLOCK_ROWS
    rows = max(chunk, DEFAULT_BLOCK_ROWS // chunk * chunk) if chunk < DEFAULT_BLOCK_ROWS else chunk
    if budget_bytes is not None:
        rows = min(rows, max(1, budget_bytes // (4 * max(1, feature_file.feature_dim))))
    return max(1, rows)


def iter_rows(feature_file: FeatureFile, rows: Rows, block: int | None = None,
              order: np.ndarray | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(positions, features)``: ``positions`` index into the selection, ``features`` are
    float32 rows read in blocks of at most ``block`` file rows. ``order`` permutes the blocks."""
    block = block or block_rows(feature_file)
    if rows.is_range:
        starts = np.arange(rows.start, rows.stop, block)
        for k in (order if order is not None else range(len(starts))):
            lo = int(starts[k])
            hi = min(lo + block, rows.stop)
            yield np.arange(lo - rows.start, hi - rows.start), feature_file.read_rows(lo, hi)
        return
    index = rows.index
    if not len(index):
        return
    starts = np.arange(int(index[0]) // block * block, int(index[-1]) + 1, block)
    for k in (order if order is not None else range(len(starts))):
        lo = int(starts[k])
        a, b = np.searchsorted(index, [lo, lo + block])
        if a == b:
            continue
        span_lo, span_hi = int(index[a]), int(index[b - 1]) + 1
        data = feature_file.read_rows(span_lo, span_hi)
        yield np.arange(a, b), data[index[a:b] - span_lo]


def n_blocks(feature_file: FeatureFile, rows: Rows, block: int) -> int:
    """How many blocks :func:`iter_rows` walks for ``rows`` (for shuffling their order)."""
    if rows.is_range:
        return len(range(rows.start, rows.stop, block))
    if not len(rows.index):
        return 0
    return len(range(int(rows.index[0]) // block * block, int(rows.index[-1]) + 1, block))


def read_selection(feature_file: FeatureFile, rows: Rows, block: int | None = None) -> np.ndarray:
    """The selected rows as one C-contiguous float32 array (the only full copy made)."""
    if rows.is_range:
        return feature_file.read_rows(rows.start, rows.stop)
    out = np.empty((len(rows), feature_file.feature_dim), dtype=np.float32)
    for positions, data in iter_rows(feature_file, rows, block):
        out[positions] = data
    return out
