"""Hand finished blocks to the driver's journal in the global candidate order.

Blocks finish in any order on a cluster; the journal (``featurebench.store.journal``) is
written by the one driver process, by ``extract``'s own loop, strictly in order, so the
file is the one a single machine writes and a killed driver resumes after the last shard.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator


def in_global_order(completed: Iterable[tuple[int, list[tuple[Any, Any]]]]) -> Iterator[tuple[Any, Any]]:
    """``(batch, features)`` of blocks numbered 0, 1, 2, ..., from ``(number, pairs)`` in any order.

    Holds a finished block only until the blocks before it are in (the distributor bounds how
    far ahead blocks run, so this buffer is bounded too).
    """
    waiting: dict[int, list] = {}
    expected = 0
    for number, pairs in completed:
        waiting[number] = pairs
        while expected in waiting:
            yield from waiting.pop(expected)
            expected += 1
