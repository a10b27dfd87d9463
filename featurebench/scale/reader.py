"""A block of candidates -> decoded batches, through the same decode path as a local ``extract``.

The block keeps its global candidate positions, so the rows and skips it yields carry the
indices the driver's journal expects, and the skip reasons are exactly the local ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

from featurebench.data.pipeline import Batch, DecodeOptions, iter_batches, iter_decoded
from featurebench.data.sources import Candidate


class _Block(Sequence):
    """Candidates ``[start, start + len(items))`` of the global list, indexed globally."""

    def __init__(self, start: int, items: Sequence[Candidate]):
        self.start, self.items = start, items

    def __len__(self) -> int:
        return self.start + len(self.items)

    def __getitem__(self, index):  # only global positions >= start are ever asked for
        return self.items[index - self.start]


def read_block(start: int, items: Sequence[Candidate], root: Path, decode: DecodeOptions, batch_size: int,
               threads: int) -> Iterator[Batch]:
    """Batches of the block starting at global position ``start`` (decoded by ``threads`` threads)."""
    return iter_batches(iter_decoded(_Block(start, items), root, decode, start, threads), batch_size)
