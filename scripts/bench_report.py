"""Benchmark of `featurebench report` on many runs: wall and CPU time, HTML size.

    python scripts/bench_report.py [--runs 300] [--out results/bench_report.md] [--profile]

Writes N synthetic but complete run records (tests/fixtures_report.py: 8-17 classes, a C grid,
a confusion matrix and per-class scores each; datasets x extractors x classifiers x seeds, as a
sweep produces) into a temporary folder and times ``build_report`` on them once (plots included).
``--profile`` prints the 25 most expensive functions (cProfile, cumulative) to stderr.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from featurebench.extractors.cpu import machine_summary  # noqa: E402

DATASETS = ["animals", "caltech101", "flowers17", "dogs-vs-cats", "tf_flowers"]
EXTRACTORS = ["resnet50", "vgg16", "mobilenet_v2", "efficientnet_lite0", "efficientnet_lite2", "coral_mobilenet_v1"]
CLASSIFIERS = ["logreg", "svm", "xgb", "hgb", "knn"]


def write_runs(folder: Path, n: int) -> None:
    """``n`` run records: every (dataset, extractor, classifier), then again with another seed."""
    from fixtures_report import FLOWERS, make_metrics, write_run

    cells = itertools.cycle(itertools.product(DATASETS, EXTRACTORS, CLASSIFIERS))
    for i in range(n):
        dataset, extractor, clf = next(cells)
        labels = [f"{name}{k}" for k in range(2) for name in FLOWERS][:8 + i % 10]
        seed = i // (len(DATASETS) * len(EXTRACTORS) * len(CLASSIFIERS))
        name = f"{dataset}__{extractor}__{clf}" + (f"__seed{seed}" if seed else "")
        write_run(folder, make_metrics(name, dataset, extractor, clf, accuracy=0.7 + 0.25 * ((i * 37) % 100) / 100,
                                       labels=labels, seed=i))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    command = shlex.join(["python", "scripts/bench_report.py", *(argv if argv is not None else sys.argv[1:])])
    from featurebench.report import build_report

    with tempfile.TemporaryDirectory() as scratch:
        results = Path(scratch) / "results"
        write_runs(results, args.runs)
        html = Path(scratch) / "report.html"
        if args.profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            profiler.enable()
        wall, cpu = time.perf_counter(), time.process_time()
        build_report(results, html, Path(scratch) / "report.md", Path(scratch) / "runs.csv")
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if args.profile:
            profiler.disable()
            pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(25)
        size = html.stat().st_size
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    lines = ["# featurebench report on many runs", "", "```", command, "```", "",
             f"Machine: {machine_summary()}, load average {load} at the end.", "",
             "| runs | wall s | CPU s | report.html |", "|---|---|---|---|",
             f"| {args.runs} | {wall:.1f} | {cpu:.1f} | {size / 1e6:.1f} MB |", ""]
    text = "\n".join(lines)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
