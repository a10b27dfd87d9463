"""Memory budgets: parse ``--max-memory`` and estimate what an in-memory fit needs."""

from __future__ import annotations

import os
import re

from featurebench.errors import FeaturebenchError

#: Default budget: this fraction of the memory available when the run starts.
DEFAULT_FRACTION = 0.5

_UNITS = {"": 1, "b": 1, "k": 1e3, "kb": 1e3, "kib": 2**10, "m": 1e6, "mb": 1e6, "mib": 2**20,
          "g": 1e9, "gb": 1e9, "gib": 2**30, "t": 1e12, "tb": 1e12, "tib": 2**40}


def available_memory() -> int:
    """Bytes of memory available now (``MemAvailable``; total physical memory as a fallback)."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 4 * 2**30


def parse_memory(value: str | int | float | None) -> int:
    """Bytes from ``--max-memory``: ``None`` (default fraction of available memory), a number of
    bytes, ``"512MB"``, ``"2GiB"``, or a percentage of available memory (``"25%"``)."""
    if value is None:
        return int(available_memory() * DEFAULT_FRACTION)
    if isinstance(value, (int, float)):
        if value <= 0:
            raise FeaturebenchError(f"--max-memory {value}: must be positive")
        return int(value)
    text = str(value).strip().lower().replace(" ", "")
    if text.endswith("%"):
        try:
            percent = float(text[:-1])
        except ValueError:
            percent = -1.0
        if not 0 < percent <= 100:
            raise FeaturebenchError(f"--max-memory {value!r}: a percentage must be in (0, 100]")
        return int(available_memory() * percent / 100)
    match = re.fullmatch(r"([0-9]*\.?[0-9]+(?:e[0-9]+)?)([a-z]*)", text)
    if not match or match.group(2) not in _UNITS or float(match.group(1)) <= 0:
        raise FeaturebenchError(
            f"--max-memory {value!r}: write a size such as 512MB, 2GB, 1.5GiB, 1000000 (bytes) or 25%"
        )
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def human_bytes(n: float) -> str:
    """``1536`` -> ``'1.5 KiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def in_memory_bytes(n_rows: int, n_features: int, workers: int = 1, n_splits: int = 3) -> int:
    """Estimated peak bytes of an in-memory search on ``n_rows`` float32 rows: the train slice
    plus one copy of it per concurrent fold (train part + validation part)."""
    slice_bytes = n_rows * n_features * 4
    return slice_bytes * (1 + max(1, min(workers, n_splits)))
