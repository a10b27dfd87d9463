"""Fake-but-consistent run records (docs/metrics.md, schema version 1) for the report tests.

``make_metrics`` builds one full ``metrics.json`` dict whose numbers agree with each other
(accuracy, per-class metrics and macro scores are all computed from one confusion matrix);
``write_run`` writes it where ``featurebench fit`` would; ``hostile_results`` and
``variant_results`` lay out whole results folders. ``screenshot`` photographs a report for the docs
(scripts/make_report_example.py renders docs/report-example.png from real runs).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

HOSTILE_CLASS = "<script>alert(1)</script>"
HOSTILE_DATASET = 'pets <img src=x onerror="alert(2)"> & co'

FEATURE_DIMS = {"resnet50": 2048, "vgg16": 25088, "mobilenet_v2": 1280, "efficientnet_lite0": 1280}
RATES = {"resnet50": 14.3, "vgg16": 6.1, "mobilenet_v2": 61.5, "efficientnet_lite0": 48.2}


def _confusion(n_classes: int, n_test: int, accuracy: float, rng: np.random.Generator) -> np.ndarray:
    support = np.full(n_classes, n_test // n_classes)
    support[: n_test - support.sum()] += 1
    matrix = np.zeros((n_classes, n_classes), dtype=int)
    wrong_total = round((1 - accuracy) * n_test)
    wrong = rng.multinomial(wrong_total, np.full(n_classes, 1 / n_classes)) if n_classes > 1 else np.zeros(1, int)
    wrong = np.minimum(wrong, support)
    for i in range(n_classes):
        matrix[i, i] = support[i] - wrong[i]
        others = [j for j in range(n_classes) if j != i]
        for _ in range(wrong[i]):
            matrix[i, rng.choice(others)] += 1
    return matrix


def make_metrics(
    run_name: str,
    dataset: str = "animals",
    extractor: str = "resnet50",
    classifier: str = "logreg",
    accuracy: float = 0.9,
    labels: list[str] | None = None,
    n_test: int = 120,
    random_init: bool = False,
    seed: int = 0,
    **overrides: Any,
) -> dict[str, Any]:
    """One complete run record; ``overrides`` replace any key afterwards."""
    rng = np.random.default_rng(seed)
    labels = labels or ["cats", "dogs", "panda"]
    n = len(labels)
    matrix = _confusion(n, n_test, accuracy, rng)
    support = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    tp = np.diag(matrix)
    recall = tp / np.maximum(support, 1)
    precision = tp / np.maximum(predicted, 1)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
    acc = float(tp.sum() / matrix.sum())
    grid_c = [1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0]
    peak = rng.integers(2, 5)
    cv_results = [{"params": {"C": c}, "mean_test_score": round(max(0.0, acc - 0.04 * abs(i - peak) - 0.01 * rng.random()), 4),
                   "std_test_score": round(0.005 + 0.02 * rng.random(), 4)} for i, c in enumerate(grid_c)]
    best_c = grid_c[int(np.argmax([r["mean_test_score"] for r in cv_results]))]
    n_train = n_test * 3
    dim = FEATURE_DIMS.get(extractor, 1024)
    weights = f"random-init (seed {seed})" if random_init else "imagenet"
    provenance = {
        "format": "featurebench-features", "format_version": 1, "featurebench_version": "0.1.0", "complete": True,
        "created": "2025-01-02T03:04:05+0000", "model": extractor, "layer": "avg_pool", "pool": "avg",
        "input_size": [224, 224], "resize": "squash", "preprocessing": "caffe" if extractor in ("resnet50", "vgg16") else "tf",
        "weights": weights, "weights_sha256": "" if random_init else "ab12cd34" * 8, "seed": 42, "train_fraction": 0.75,
        "split_index": n_train, "n_rows": n_train + n_test, "n_skipped": 1, "n_ignored": 0, "n_candidates": n_train + n_test + 1,
        "feature_dim": dim, "source": f"/data/{dataset}", "source_kind": "folders", "dataset": dataset,
        "command": f"featurebench extract /data/{dataset} -o features/{dataset}-{extractor}.h5 --model {extractor}",
    }
    record: dict[str, Any] = {
        "schema": "featurebench-run", "schema_version": 1, "run_name": run_name, "kind": "features",
        "dataset": dataset, "extractor": extractor, "layer": "avg_pool", "pool": "avg", "weights": weights,
        "random_init": random_init, "classifier": classifier,
        "accuracy": acc, "accuracy_ci95": [max(0.0, acc - 0.04), min(1.0, acc + 0.03)],
        "rank1": acc, "rank5": None if n <= 5 else min(1.0, acc + 0.05),
        "mean_per_class_accuracy": float(recall.mean()), "macro_precision": float(precision.mean()),
        "macro_recall": float(recall.mean()), "macro_f1": float(f1.mean()),
        "weighted_f1": float((f1 * support).sum() / support.sum()),
        "per_class": [{"label": lab, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                      for lab, p, r, f, s in zip(labels, precision, recall, f1, support)],
        "confusion": {"labels": list(labels), "matrix": matrix.tolist()},
        "cv": {"param": "C", "results": cv_results},
        "best_params": {"C": best_c}, "grid": {"C": grid_c},
        "n_train": n_train, "n_test": int(matrix.sum()), "n_classes": n, "feature_dim": dim, "split": "index",
        "fit_seconds": round(0.5 + 3 * rng.random() * dim / 2048, 3), "predict_seconds": round(0.01 + 0.05 * rng.random(), 4),
        "extract_images_per_second": RATES.get(extractor, 20.0), "feature_file": f"features/{dataset}-{extractor}.h5",
        "feature_file_bytes": (n_train + n_test) * dim * 4 + 40_000,
        "provenance": provenance,
        "versions": {"python": "3.11.2", "featurebench": "0.1.0", "scikit-learn": "1.5.2", "numpy": "2.1.0", "xgboost": None},
        "command": f"featurebench fit features/{dataset}-{extractor}.h5 --clf {classifier} --out results",
        "created": "2025-01-02T04:05:06+0000",
    }
    record.update(overrides)
    return record


def write_run(results: Path, record: dict[str, Any], folder: str | None = None) -> Path:
    run_dir = Path(results) / (folder or record["run_name"])
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "metrics.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
    return run_dir


#: (run folder, dataset, extractor, classifier, accuracy, random_init) of :func:`hostile_results`.
HOSTILE_RUNS = [
    ("animals-resnet50-logreg", "animals", "resnet50", "logreg", 0.95, False),
    ("animals-resnet50-svm", "animals", "resnet50", "svm", 0.90, False),
    ("animals-vgg16-logreg", "animals", "vgg16", "logreg", 0.975, False),
    ("animals-random-resnet50-logreg", "animals", "resnet50", "logreg", 0.60, True),
    ("flowers17-mobilenet_v2-logreg", "flowers17", "mobilenet_v2", "logreg", 0.85, False),
    ("flowers17-vgg16-svm", "flowers17", "vgg16", "svm", 0.9125, False),
    ("hostile-resnet50-knn", HOSTILE_DATASET, "resnet50", "knn", 0.70, False),
]
FLOWERS = ["bluebell", "buttercup", "crocus", "daffodil", "daisy", "iris", "lilyvalley", "pansy"]


def hostile_results(root: Path) -> Path:
    """Seven good runs on three datasets (one random-init, one hostile class and dataset name),
    one run folder with corrupt JSON and one with no metrics.json."""
    root = Path(root)
    for i, (folder, dataset, extractor, clf, acc, rnd) in enumerate(HOSTILE_RUNS):
        labels = FLOWERS if dataset == "flowers17" else ["cats", "dogs", HOSTILE_CLASS] if dataset == HOSTILE_DATASET else None
        write_run(root, make_metrics(folder, dataset, extractor, clf, acc, labels=labels, random_init=rnd, seed=i,
                                     n_test=160 if dataset == "flowers17" else 120))
    corrupt = root / "broken-run"
    corrupt.mkdir()
    (corrupt / "metrics.json").write_text('{"schema": "featurebench-run", "accuracy": 0.9', encoding="utf-8")
    empty = root / "crashed-run"
    empty.mkdir()
    (empty / "log.txt").write_text("killed\n", encoding="utf-8")
    return root


def variant_results(root: Path) -> Path:
    """One dataset with runs that differ only in a setting: svm with and without --scale standard, two
    fine-tuning recipes, plus logreg and a random-init baseline (accuracies 98.4 vs 98.8: a zoomed axis)."""
    root = Path(root)
    labels = ["cat", "dog"]
    write_run(root, make_metrics("pets__resnet50__svm", "pets", "resnet50", "svm", 0.984, labels=labels,
                                 n_test=250, seed=1, scale="none"))
    write_run(root, make_metrics("pets__resnet50__svm__standard", "pets", "resnet50", "svm", 0.988, labels=labels,
                                 n_test=250, seed=2, scale="standard"))
    write_run(root, make_metrics("pets__resnet50__logreg", "pets", "resnet50", "logreg", 0.976, labels=labels,
                                 n_test=250, seed=3))
    for name, acc, lr in (("pets__mobilenetv2__finetune-a", 0.972, 1e-3), ("pets__mobilenetv2__finetune-b", 0.98, 1e-4)):
        write_run(root, make_metrics(name, "pets", "mobilenetv2", "finetune", acc, labels=labels, n_test=250, seed=4,
                                     kind="finetune", cv=None, grid=None, best_params={"recipe": "custom", "lr": lr}))
    write_run(root, make_metrics("pets__resnet50-random__logreg", "pets", "resnet50", "logreg", 0.62, labels=labels,
                                 n_test=250, random_init=True, seed=5))
    return root


# --- headless Chromium (browser test and the docs screenshot) -----------------------------------

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def chromium_binary() -> str | None:
    """The first headless-capable Chromium on PATH ($FEATUREBENCH_CHROMIUM wins), or None."""
    import os
    import shutil

    override = os.environ.get("FEATUREBENCH_CHROMIUM")
    if override:
        return shutil.which(override) or (override if Path(override).is_file() else None)
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def chromium(binary: str, profile: Path, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium offline with a throw-away profile; stderr carries the page's console."""
    command = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-default-apps", "--disable-extensions", "--no-first-run", "--no-default-browser-check",
               "--hide-scrollbars", "--force-device-scale-factor=1", f"--user-data-dir={profile}",
               "--enable-logging=stderr", "--v=0", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def console_lines(stderr: str) -> list[str]:
    """Lines where the page wrote to the console or threw (Chromium logs them as ``:CONSOLE``)."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def screenshot(report_html: Path, out_png: Path, width: int = 1360, height: int = 2180) -> Path:
    """Screenshot the top of a report page in headless Chromium (a 256-colour PNG, for the docs)."""
    import tempfile

    from PIL import Image

    binary = chromium_binary()
    if binary is None:
        raise SystemExit("no Chromium on PATH: apt-get install chromium")
    out_png = Path(out_png).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        shot = Path(tmp) / "shot.png"
        done = chromium(binary, Path(tmp) / "profile", f"--window-size={width},{height}", f"--screenshot={shot}",
                        Path(report_html).resolve().as_uri())
        if not shot.is_file():
            raise SystemExit(f"chromium made no screenshot:\n{done.stderr[-2000:]}")
        image = Image.open(shot).convert("RGB")
        out_png.parent.mkdir(parents=True, exist_ok=True)
        image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(out_png, optimize=True)
    return out_png


# --- a sweep of 20 runs, as `featurebench fit` writes them (the layout test at real sizes) ----------

CORAL = "mobilenet_v1_1.0_224_quant_embedding_extractor"
#: (run name, dataset, extractor, classifier, accuracy, settings) of :func:`sweep_results`: run names as
#: ``fit``'s default template makes them (or ``--run-name``), settings as its run record holds them.
SWEEP_RUNS = [
    ("flowers17__efficientnet_lite0__logreg", "flowers17", "efficientnet_lite0", "logreg", 0.9353, {}),
    ("flowers17__efficientnet_lite0__logreg__probe__standard__stratified", "flowers17", "efficientnet_lite0",
     "logreg", 0.9441, {"protocol": "probe", "scale": "standard", "split": "stratified"}),
    ("flowers17__efficientnet_lite0__logreg__probe__standard__stratified__split-seed7", "flowers17",
     "efficientnet_lite0", "logreg", 0.9382, {"protocol": "probe", "scale": "standard", "split": "stratified", "seed": 7}),
    ("flowers17__efficientnet_lite0__svm", "flowers17", "efficientnet_lite0", "svm", 0.9265, {}),
    ("flowers17__efficientnet_lite0__svm__standard", "flowers17", "efficientnet_lite0", "svm", 0.9412, {"scale": "standard"}),
    ("flowers17__efficientnet_lite0__svm__wide-C-grid", "flowers17", "efficientnet_lite0", "svm", 0.9324,
     {"grid": {"C": [0.01, 0.1, 1.0, 10.0, 100.0, 1000.0]}}),
    (f"flowers17__{CORAL}__logreg", "flowers17", CORAL, "logreg", 0.9412, {}),
    (f"flowers17__{CORAL}__xgb", "flowers17", CORAL, "xgb", 0.8912, {}),
    ("flowers17__efficientnet_lite0__finetune__tfhub-lr1e-3", "flowers17", "efficientnet_lite0", "finetune", 0.9118,
     {"kind": "finetune", "cv": None, "grid": None, "best_params": {"head": "gap", "lr": 1e-3, "epochs_run": 3}}),
    ("flowers17__efficientnet_lite0__finetune__tfhub-lr1e-4", "flowers17", "efficientnet_lite0", "finetune", 0.9029,
     {"kind": "finetune", "cv": None, "grid": None, "best_params": {"head": "gap", "lr": 1e-4, "epochs_run": 3}}),
    ("flowers17__resnet50__logreg__random-init", "flowers17", "resnet50", "logreg", 0.3147, {"random_init": True}),
    ("dogs-vs-cats__efficientnet_lite0__logreg", "dogs-vs-cats", "efficientnet_lite0", "logreg", 0.9796, {}),
    ("dogs-vs-cats__efficientnet_lite0__logreg__seed1", "dogs-vs-cats", "efficientnet_lite0", "logreg", 0.9784,
     {"extract_seed": 1}),
    ("dogs-vs-cats__efficientnet_lite0__svm", "dogs-vs-cats", "efficientnet_lite0", "svm", 0.9812, {}),
    ("dogs-vs-cats__resnet50__knn", "dogs-vs-cats", "resnet50", "knn", 0.9536, {}),
    ("dogs-vs-cats__raw-pixels__logreg", "dogs-vs-cats", "raw-pixels", "logreg", 0.5912, {}),
    ("caltech101__resnet50__logreg", "caltech101", "resnet50", "logreg", 0.9021, {}),
    ("caltech101__resnet50__svm", "caltech101", "resnet50", "svm", 0.8930, {}),
    ("caltech101__resnet50__svm__calibrated", "caltech101", "resnet50", "svm", 0.8901, {"calibration": {
        "method": "sigmoid (Platt scaling, one-vs-rest, normalised)", "folds": 3,
        "library": "sklearn.calibration.CalibratedClassifierCV(ensemble=False)",
        "fitted_on": "train rows only (out-of-fold decision values)"}}),
    ("caltech101__efficientnet_lite0__logreg__pca256", "caltech101", "efficientnet_lite0", "logreg", 0.8874, {"pca": 256}),
]
#: A run added to :func:`sweep_results` later (newer): a third fine-tuning run, with another head.
SWEEP_EXTRA_RUN = ("flowers17__efficientnet_lite0__finetune__tfhub-fc-head", "flowers17", "efficientnet_lite0",
                   "finetune", 0.9147, {"kind": "finetune", "cv": None, "grid": None,
                                        "best_params": {"head": "fc", "lr": 1e-3, "epochs_run": 3}})


def _sweep_record(k: int, name: str, dataset: str, extractor: str, clf: str, accuracy: float,
                  settings: dict[str, Any]) -> dict[str, Any]:
    settings = dict(settings)
    labels = {"flowers17": FLOWERS, "dogs-vs-cats": ["cat", "dog"]}.get(dataset, [f"class{i}" for i in range(10)])
    extract_seed = settings.pop("extract_seed", 42)
    split = settings.get("split", "index")
    record = make_metrics(name, dataset, extractor, clf, accuracy, labels=labels, n_test=340 if dataset != "dogs-vs-cats" else 500,
                          random_init=bool(settings.pop("random_init", False)), seed=k,
                          protocol="grid", scale="none", seed_split=None, pca=None, n_splits=1,
                          created=f"2026-11-20T10:{k:02d}:00+00:00",
                          test_rows_digest=f"{dataset}-{split}-{settings.get('seed', 42)}")
    record.pop("seed_split")
    record["seed"] = 42
    record["provenance"]["seed"] = extract_seed
    record.update(settings)
    return record


def sweep_results(root: Path, with_extra: bool = False) -> Path:
    """:data:`SWEEP_RUNS` (20 runs on 3 datasets, 4 extractors, 5 classifiers, variants differing in one or
    a few settings: protocol, scale, split seed, C grid, fine-tuning lr, extraction seed, PCA, calibration), and
    :data:`SWEEP_EXTRA_RUN` too with ``with_extra``."""
    root = Path(root)
    runs = SWEEP_RUNS + ([SWEEP_EXTRA_RUN] if with_extra else [])
    for k, run in enumerate(runs):
        write_run(root, _sweep_record(k, *run))
    return root
