"""``extract --shards N --shard-index I``: shard I of the global seeded order, in its own file.

The seam for schedulers other than Ray (Slurm arrays, Spark, a shell loop): N independent
``extract`` runs, each writing the contiguous slice ``[I*n//N, (I+1)*n//N)`` of the same
shuffled candidate list, then ``featurebench merge`` assembles the one file a single machine
writes. A shard file records which run it belongs to (the fingerprint of the whole list and
settings) and its rows' content digests, so the merge can check the set and find
duplicates across shards.
"""

from __future__ import annotations

import hashlib
from typing import Any

from featurebench.errors import FeaturebenchError

#: File attributes naming a shard (absent in a whole-run file).
SHARD_ATTRS = ("shard_index", "shard_count", "shard_of", "shard_start", "n_candidates_total")


#: The most shards a run is split into (more shards than images is fine: those shards are empty).
MAX_SHARDS = 1_000_000


def check_shard(count: int, index: int) -> None:
    """Refuse a shard count below 1 or above :data:`MAX_SHARDS`, or an index outside ``[0, count)``."""
    if not 1 <= count <= MAX_SHARDS:
        raise FeaturebenchError(f"--shards {count} must be between 1 and {MAX_SHARDS:,}")
    if not 0 <= index < count:
        raise FeaturebenchError(f"--shard-index {index} must be between 0 and {count - 1} (--shards {count})")


def shard_bounds(total: int, count: int, index: int) -> tuple[int, int]:
    """The candidate range ``[start, end)`` of shard ``index`` of ``count``."""
    return index * total // count, (index + 1) * total // count


def shard_manifest(manifest: dict[str, Any], count: int, index: int) -> dict[str, Any]:
    """The journal manifest of one shard of the whole-run ``manifest``."""
    total = len(manifest["candidates"])
    start, end = shard_bounds(total, count, index)
    whole = manifest["fingerprint"]
    shard = {"shard_index": index, "shard_count": count, "shard_of": whole, "shard_start": start,
             "n_candidates_total": total}
    return {**manifest, "candidates": manifest["candidates"][start:end], "shard": shard,
            "settings": {**manifest["settings"], "shard": [index, count]},
            "fingerprint": hashlib.sha256(f"{whole}:{index}/{count}".encode()).hexdigest()}


def shard_attrs(manifest: dict[str, Any]) -> dict[str, Any]:
    """The shard attributes for the feature file of a journal (none for a whole run)."""
    return dict(manifest.get("shard", {}))
