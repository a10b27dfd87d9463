"""Per-channel RGB means of the training split, computed in one streamed pass and saved as JSON.

The classic mean-subtraction preprocessor: means come from the training images
only (never validation or test, which would leak), are saved next to the model
as ``means.json`` (``{"R": .., "G": .., "B": ..}`` as the classic scripts wrote,
plus counts), and are subtracted at training and test time alike.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import numpy as np

MEANS_FILE = "means.json"


def compute_means(batches: Iterable[np.ndarray]) -> dict[str, float | int]:
    """Mean R, G, B over every pixel of every (B, H, W, 3) batch; accumulates in float64."""
    total = np.zeros(3, dtype=np.float64)
    pixels = 0
    images = 0
    for batch in batches:
        batch = np.asarray(batch)
        total += batch.reshape(-1, 3).sum(axis=0, dtype=np.float64)
        pixels += batch.shape[0] * batch.shape[1] * batch.shape[2]
        images += batch.shape[0]
    if images == 0:
        raise ValueError("no training images to compute means from")
    r, g, b = (total / pixels).tolist()
    return {"R": r, "G": g, "B": b, "n_images": images, "n_pixels": pixels}


def save_means(means: dict, path: Path, split: str = "train") -> None:
    path.write_text(json.dumps({**means, "split": split}, indent=2) + "\n", encoding="utf-8")


def load_means(path: Path) -> np.ndarray:
    """RGB means as a float32 (3,) array."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return np.array([data["R"], data["G"], data["B"]], dtype=np.float32)


__all__ = ["MEANS_FILE", "compute_means", "load_means", "save_means"]
