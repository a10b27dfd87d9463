"""``featurebench demo``: the whole job, offline, on an embedded dataset.

The dataset is scikit-learn's bundled ``load_digits`` (1,797 real 8x8 scans of
handwritten digits, 10 classes), written out as a class-folder image set so it
goes through exactly the path a user's folder does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from featurebench.errors import FeaturebenchError

#: Side of the PNGs the 8x8 digits are written as (upscaled, so they look like images).
DIGIT_IMAGE_SIZE = 64


def write_digits_dataset(root: Path, per_class: int | None = None) -> Path:
    """Write ``load_digits`` as ``root/<digit>/digit_NNNN.png`` (up to ``per_class`` each); return ``root``."""
    import cv2
    from sklearn.datasets import load_digits

    digits = load_digits()
    counts: dict[int, int] = {}
    for index, (image, target) in enumerate(zip(digits.images, digits.target)):
        if per_class is not None and counts.get(int(target), 0) >= per_class:
            continue
        counts[int(target)] = counts.get(int(target), 0) + 1
        pixels = np.round(image * (255.0 / 16.0)).astype(np.uint8)
        large = cv2.resize(pixels, (DIGIT_IMAGE_SIZE, DIGIT_IMAGE_SIZE), interpolation=cv2.INTER_CUBIC)
        folder = root / str(int(target))
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"digit_{index:04d}.png"), large)
    return root


@dataclass
class DemoPlan:
    """Where the demo writes: its dataset, feature file and results."""

    out: Path

    @property
    def dataset(self) -> Path:
        return self.out / "data" / "digits"

    def features(self, model: str) -> Path:
        return self.out / "features" / f"digits__{Path(model).stem}.h5"

    @property
    def results(self) -> Path:
        return self.out / "results"


def prepare_output(out: Path, force: bool) -> DemoPlan:
    """Create the demo folder; refuse to reuse a non-empty one without ``force``."""
    plan = DemoPlan(out)
    if out.exists() and any(out.iterdir()) and not force:
        raise FeaturebenchError(f"{out} already exists and is not empty; pass --force to redo the demo there "
                                "or --out to pick another folder.")
    for folder in (plan.dataset.parent, plan.features("x").parent, plan.results):
        folder.mkdir(parents=True, exist_ok=True)
    return plan


def demo_extract_options(plan: DemoPlan, model: str, weights: str, force: bool):
    """The ``extract`` settings the demo uses (classic protocol: seed 42, 75/25 index split)."""
    from featurebench.extract import ExtractOptions

    return ExtractOptions(source=str(plan.dataset), output=str(plan.features(model)), model=model,
                          weights=weights, force=force, dataset_name="digits",
                          command=f"featurebench demo --out {plan.out}")
