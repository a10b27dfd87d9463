"""The train/val/test index split shared by ``build-images`` and folder streaming.

Rows are in the seeded shuffled order of :func:`featurebench.extract.shuffled`.
``int(N * train_fraction)`` rows are train+val and the rest test, exactly as the
feature file's ``split_index``, so a fine-tuned run is scored on the same test images
as ``extract``/``fit`` runs of the same source and seed. Validation rows are the
last ``int(N * val_fraction)`` of the train part.
"""

from __future__ import annotations

SPLITS = ("train", "val", "test")


def split_bounds(n: int, train_fraction: float, val_fraction: float = 0.0) -> dict[str, tuple[int, int]]:
    """``{"train": (0, a), "val": (a, b), "test": (b, n)}`` row ranges."""
    end = int(n * train_fraction)
    n_val = min(int(n * val_fraction), max(end - 1, 0))
    return {"train": (0, end - n_val), "val": (end - n_val, end), "test": (end, n)}


def check_split(name: str) -> str:
    if name not in SPLITS:
        raise ValueError(f"unknown split {name!r}; one of {SPLITS}")
    return name


__all__ = ["SPLITS", "check_split", "split_bounds"]
