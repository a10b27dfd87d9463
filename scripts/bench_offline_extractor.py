"""Is EfficientNet-Lite0 (offline, pretrained) worth being the demo's default extractor?

On the embedded demo dataset (sklearn digits as PNG class folders) and, when ../shared is
present, on real photos (Flowers-17), with the classic protocol (seed 42 shuffle, 75/25
index split, logistic regression grid-searched with cv=3), compare: efficientnet_lite0
(ImageNet, offline), random-init ResNet50, random-init MobileNet, and raw pixels. Also
records each extractor's img/s on this CPU.

    python scripts/bench_offline_extractor.py --out results/bench_offline_extractor.md
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

EXTRACTORS = [("efficientnet_lite0", "imagenet"), ("resnet50", "none"), ("mobilenet", "none")]


SHARED_FLOWERS = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "flowers17"


def raw_pixel_file(reference: Path, root: Path, output: Path, dataset: str | None = None) -> Path:
    """Raw 64x64 gray pixels/255 as a feature file with the same rows, order and split as ``reference``
    (``dataset``: the name recorded in it; default the output's stem)."""
    import cv2
    import h5py

    from featurebench.store.writer import write_feature_arrays

    with h5py.File(reference) as h5:
        paths = [p.decode() for p in h5["paths"][()]]
        labels = h5["labels"][()]
        names = [n.decode() for n in h5["label_names"][()]]
    pixels = np.stack([cv2.resize(cv2.imread(str(root / p), cv2.IMREAD_GRAYSCALE), (64, 64),
                                  interpolation=cv2.INTER_AREA).ravel() / 255.0 for p in paths])
    attrs = {"model": "raw-pixels", **({"dataset": dataset} if dataset else {})}
    return write_feature_arrays(output, pixels, labels, names, paths, attrs=attrs)


def compare(data: Path, name: str, tmp: Path) -> list[tuple]:
    """Extract with each extractor, add raw pixels, fit logreg on each; return the table rows."""
    from featurebench.extract import ExtractOptions, run_extract
    from featurebench.fit import run_fit

    files = {}
    for model, weights in EXTRACTORS:
        summary = run_extract(ExtractOptions(str(data), str(tmp / f"{name}-{model}.h5"), model=model,
                                             weights=weights, dataset_name=name, precision="fp32",
                                             command="bench"))
        label = f"{model} ({'ImageNet' if weights == 'imagenet' else 'random init'})"
        files[label] = (summary.output, f"{summary.images_per_second:.1f}")
    first = files[next(iter(files))][0]
    files["raw pixels (64x64 gray)"] = (raw_pixel_file(first, data, tmp / f"{name}-raw.h5"), "-")
    rows = []
    for label, (path, rate) in files.items():
        started = time.perf_counter()
        result = run_fit(path, "logreg", out=tmp / "runs", run_name=f"{name}-{len(rows)}", command="bench")
        metrics = result.metrics
        rows.append((label, metrics["feature_dim"], rate, metrics["accuracy"], metrics["accuracy_ci95"],
                     metrics["macro_f1"], metrics["best_params"], time.perf_counter() - started,
                     metrics["n_train"], metrics["n_test"]))
    return rows


def table(title: str, rows: list[tuple]) -> list[str]:
    """A Markdown table of ``compare`` rows."""
    lines = [f"## {title} ({rows[0][8]} train / {rows[0][9]} test)", "",
             "| features | dim | extract img/s | test accuracy | 95% CI | macro-F1 | best params | fit s |",
             "|---|---|---|---|---|---|---|---|"]
    for label, dim, rate, acc, ci, f1, best, seconds, _, _ in rows:
        lines.append(f"| {label} | {dim} | {rate} | {acc:.4f} | [{ci[0]:.3f}, {ci[1]:.3f}] | {f1:.4f} | {best} "
                     f"| {seconds:.1f} |")
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/bench_offline_extractor.md"))
    args = parser.parse_args()

    from featurebench.demo import write_digits_dataset

    command = "python scripts/bench_offline_extractor.py --out " + str(args.out)
    lines = [
        "# Offline pretrained extractor vs baselines",
        "",
        f"Command: `{command}`  ",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; Python "
        f"{sys.version.split()[0]}. img/s are single runs on a shared machine (load shown below).  ",
        "Protocol: seed-42 shuffle, 75/25 index split, `featurebench fit --clf logreg` (default C grid, cv=3).",
        "",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        digits = write_digits_dataset(tmp / "digits")
        lines += table("Demo dataset: sklearn digits (1,797 8x8 scans as 64x64 PNGs, 10 classes)",
                       compare(digits, "digits", tmp))
        if SHARED_FLOWERS.is_dir():
            lines += table("Real photos: Flowers-17 (1,360 images, 17 classes)", compare(SHARED_FLOWERS, "flowers17", tmp))
        else:
            lines += [f"(Flowers-17 not found at {SHARED_FLOWERS}; real-photo comparison skipped.)", ""]
    lines.append(f"Load average at the end: {os.getloadavg()[0]:.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
