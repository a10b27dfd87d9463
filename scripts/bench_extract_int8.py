"""int8 vs fp32: speed (random-init backbones, generated JPEGs) and fidelity (EfficientNet-Lite0's real
ImageNet weights, calibrated and scored on each real dataset).

    python scripts/bench_extract_int8.py [--skip-fidelity] [--models M]   # -> results/bench_extract_int8_<class>.md
    python scripts/bench_extract.py --int8                               # the same (the recorded command)

Images, machine header and the shared options: scripts/bench_extract_common.py.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

from bench_extract_common import (SHARED, cosines, header, image_paths, loadavg, logreg_accuracy, make_images,
                                 run_script, run_plan, spawn)

#: This benchmark's own options (argparse flag -> keyword arguments).
OPTIONS = {"--skip-fidelity": {"action": "store_true", "help": "--int8 without the real-data accuracy runs"}}
#: results/<STEM>_<CPU class>.md
STEM = "bench_extract_int8"


def _int8_speed(args, data: Path, work: Path) -> list[str]:
    """fp32 vs int8: ``extract`` and the forward pass alone, each variant in its own process."""
    lines = ["| model | variant | ran as | img/s | CPU ms/img | int8 / fp32 img/s | int8 / fp32 CPU ms | note |",
             "|---|---|---|---|---|---|---|---|"]
    for model in args.models:
        base = {"model": model, "data": str(data)}
        print(f"[{time.strftime('%H:%M:%S')}] int8 speed {model} (load {loadavg()})", flush=True)
        calibration = spawn({**base, "kind": "extract", "out": str(work / f"int8-{model}-warm.h5"),
                             "opts": {"precision": "int8"}})  # fills the cache; its calibration is timed
        plan = {"extract fp32": {**base, "kind": "extract", "out": str(work / f"int8-{model}-fp32.h5")},
                "extract int8": {**base, "kind": "extract", "out": str(work / f"int8-{model}-int8.h5"),
                                 "opts": {"precision": "int8"}},
                "model-only fp32": {**base, "kind": "model"},
                "model-only int8": {**base, "kind": "model", "precision": "int8"}}
        best = run_plan(plan, args.repeat, model)
        for name, r in best.items():
            kind = name.split(" ")[0]
            fp32, is_int8 = best[f"{kind} fp32"], name.endswith("int8")
            ratio = f"{r['img_s'] / fp32['img_s']:.2f}x | {fp32['cpu_ms'] / r['cpu_ms']:.2f}x" if is_int8 else "- | -"
            note = f"batch {r['batch']}" if "batch" in r else f"{r['n']} images"
            if name == "extract int8":
                note += f"; first run's build + calibration {calibration['build_s']:.0f} s (cached after)"
            lines.append(f"| {model} | {name} | {r.get('ran', '')} | {r['img_s']:.1f} | {r['cpu_ms']:.1f} | {ratio} | {note} |")
    return lines


def _int8_fidelity(work: Path) -> list[str]:
    """EfficientNet-Lite0 (real ImageNet weights): fp32 vs int8 calibrated on each real dataset."""
    import h5py

    from featurebench.extract import ExtractOptions, run_extract

    datasets = [("flowers17", SHARED / "datasets" / "flowers17", {}),
                ("dogs-vs-cats", SHARED / "datasets" / "dogs-vs-cats" / "train", {"label_pattern": r"^(cat|dog)\."})]
    lines = ["| dataset | images | variant | whole run s (img/s) | cosine to fp32, all rows: min / 1st pct / mean "
             "| held-out check in the file: mean / min (images) | test accuracy | change vs fp32 (points) "
             "| test predictions changed |", "|---|---|---|---|---|---|---|---|---|"]
    for name, root, extra in datasets:
        if not root.is_dir():
            lines.append(f"| {name} | - | not found in ../shared | | | | | | |")
            continue
        reference = None
        for label, precision in [("fp32 (default)", "fp32"), ("int8, first run (calibrates)", "int8"),
                                 ("int8, second run (cached)", "int8")]:
            print(f"[{time.strftime('%H:%M:%S')}] int8 fidelity {name} {label} (load {loadavg()})", flush=True)
            out = work / f"int8-fid-{name}-{len(lines)}.h5"
            started = time.perf_counter()
            summary = run_extract(ExtractOptions(str(root), str(out), model="efficientnet_lite0", force=True,
                                                 precision=precision, command="bench_extract --int8", **extra))
            seconds = time.perf_counter() - started
            with h5py.File(out) as h5:
                feats, attrs = h5["features"][()], dict(h5.attrs)
            accuracy, predictions = logreg_accuracy(out)
            check = "-"
            if "int8_cosine_mean" in attrs:
                check = (f"{attrs['int8_cosine_mean']:.4f} / {attrs['int8_cosine_min']:.4f} "
                         f"({attrs['int8_holdout_images']}; calibrated on {attrs['int8_calibration_images']})")
            if reference is None:
                reference = (feats, accuracy, predictions)
                cos_text = delta = changed = "-"
            else:
                cos = cosines(reference[0], feats)
                cos_text = f"{cos.min():.4f} / {np.percentile(cos, 1):.4f} / {cos.mean():.4f}"
                delta = f"{100 * (accuracy - reference[1]):+.2f}"
                changed = f"{int((predictions != reference[2]).sum())} of {len(predictions)}"
            lines.append(f"| {name} | {summary.n_rows} | {label} | {seconds:.1f} ({summary.n_rows / seconds:.1f}) | "
                         f"{cos_text} | {check} | {accuracy:.4f} | {delta} | {changed} |")
    return lines


def report(args, work: Path) -> list[str]:
    """``--int8``: speed (random-init backbones, generated JPEGs) and fidelity (real weights, real data)."""
    os.environ["FEATUREBENCH_CACHE"] = str(work / "cache")  # calibration measured from scratch
    data = work / "images"
    if not data.exists():
        make_images(data, args.images)
    extra = [f"- Load average at the start: {loadavg()}; repeat {args.repeat} (best kept)", ""]
    lines = header("int8 (NNCF post-training quantisation, OpenVINO) vs fp32", sys.argv[1:], extra)
    lines += ["## Speed", "",
              f"Random-init weights (`--weights none`: no offline ImageNet weights for these here; speed does "
              f"not depend on the weights' values), {len(image_paths(data))} generated JPEGs (long side 300-1200 "
              "px). int8 is calibrated on the train slice of the same images. Build, conversion, calibration "
              "and the first call are left out of img/s for every variant alike.", ""]
    lines += _int8_speed(args, data, work)
    if not args.skip_fidelity:
        lines += ["", "## Fidelity", "",
                  "EfficientNet-Lite0 with its real ImageNet weights; each dataset's int8 model is calibrated on "
                  "its own train slice (seed 42); GridSearchCV(LogisticRegression, C in {0.01, 0.1, 1, 10, 100}, "
                  "cv=3) on the stored 75/25 split (one split).", ""]
        lines += _int8_fidelity(work)
    lines += ["", f"Load average at the end: {loadavg()}."]
    return lines


if __name__ == "__main__":
    run_script(__doc__, report, STEM, OPTIONS)
