"""``featurebench demo``: the whole job, offline, on an embedded dataset.

The dataset is scikit-learn's bundled ``load_digits`` (1,797 real 8x8 scans of
handwritten digits, 10 classes), written out as a class-folder image set so it
goes through exactly the path a user's folder does.
"""

from __future__ import annotations

import warnings
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


#: The classifiers the demo compares (grid-searched with their default grids).
DEMO_CLASSIFIERS = ("logreg", "svm")
#: When pretrained weights are unavailable: a random-init ResNet50 (random MobileNet features collapse
#: to ~zero variance), on a capped subset so the demo stays within a few minutes on 2 CPU cores.
FALLBACK_MODEL, FALLBACK_PER_CLASS = "resnet50", 30


@dataclass
class DemoResult:
    """What the demo produced."""

    plan: DemoPlan
    model: str
    random_init: bool
    runs: list
    report: Path


def run_demo(out: Path, model: str = "efficientnet_lite0", weights: str = "imagenet", per_class: int | None = None,
             force: bool = False, say=print, progress=None, on_start=None, result=None) -> DemoResult:
    """Extract -> fit (each of :data:`DEMO_CLASSIFIERS`) -> report, on the embedded digits set.

    ``say`` prints one-line stage messages and diagnostics, ``result`` the result lines (default: ``say``);
    ``progress``/``on_start`` are extraction progress callbacks.
    """
    tell = result or say
    from featurebench.errors import WeightsUnavailableError
    from featurebench.extract import ExtractOptions, run_extract
    from featurebench.fit import FitWarning, run_fit
    from featurebench.report import build_report

    plan = prepare_output(out, force)
    say("Writing the dataset...")
    write_digits_dataset(plan.dataset, per_class)
    say(f"Dataset: {plan.dataset} (scikit-learn's 1,797 handwritten digits as PNG class folders)")
    options = ExtractOptions(source=str(plan.dataset), output=str(plan.features(model)), model=model,
                             weights=weights, force=force, dataset_name="digits", precision="fp32",
                             command=f"featurebench demo --out {out}")  # the same features on every CPU
    say(f"Extracting features with {model}...")
    try:
        summary = run_extract(options, progress, on_start)
    except WeightsUnavailableError as exc:
        say(f"No pretrained weights for {model} here ({str(exc).split('.')[0]}); continuing with a "
            f"random-init {FALLBACK_MODEL} baseline on {FALLBACK_PER_CLASS} images per class.")
        model, weights = FALLBACK_MODEL, "none"
        import shutil

        shutil.rmtree(plan.dataset)
        write_digits_dataset(plan.dataset, min(per_class or FALLBACK_PER_CLASS, FALLBACK_PER_CLASS))
        options.model, options.weights, options.output = model, weights, str(plan.features(model))
        summary = run_extract(options, progress, on_start)
    say(f"Features: {summary.output} ({summary.n_rows} images, {summary.images_per_second:.1f} img/s)")
    runs = []
    for clf in DEMO_CLASSIFIERS:
        say(f"Fitting {clf} (grid search on the train split, scored on the test split)...")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FitWarning)  # said once below instead
            result = run_fit(summary.output, clf, out=plan.results, force=force, n_jobs=-1,
                             command=f"featurebench demo --out {out}")
        for message in result.warnings:
            say(f"warning: {message}")
        metrics = result.metrics
        tell(f"{clf:>7}: test accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}, "
            f"best {metrics['best_params']} ({metrics['fit_seconds']:.1f} s)")
        runs.append(result)
    report = plan.out / "report.html"
    say("Writing the report...")
    build_report(plan.results, report, md_path=plan.out / "report.md", csv_path=plan.out / "runs.csv")
    return DemoResult(plan, model, weights == "none", runs, report)
