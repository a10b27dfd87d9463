"""Fidelity: engines, fast_decode and bf16 against the TensorFlow fp32 full-decode reference, on real
photos and models (feature cosines and downstream logistic-regression accuracy).

    python scripts/bench_extract_fidelity.py        # -> results/bench_extract_fidelity_<class>.md
    python scripts/bench_extract.py --fidelity      # the same (the recorded command)

Needs ../shared (real photos, the Coral model). Machine header and options: scripts/bench_extract_common.py.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from bench_extract_common import (CORAL, SHARED, cosines, header, image_paths, loadavg, logreg_accuracy,
                                 run_script)

#: results/<STEM>_<CPU class>.md
STEM = "bench_extract_fidelity"


def report(args, work: Path) -> list[str]:
    """Engines, fast_decode and bf16 against the TensorFlow fp32 full-decode reference, on real photos and models."""
    import h5py

    from featurebench.extract import ExtractOptions, run_extract

    flowers = SHARED / "datasets" / "flowers17"
    if not flowers.is_dir():
        raise SystemExit(f"{flowers} not found: the fidelity check needs the real Flowers-17 photos")
    n_photos = len(image_paths(flowers))
    extra = [f"- Data: Flowers-17 ({n_photos} photos, 17 classes); seed-42 shuffle, stored 75/25 split; "
             "GridSearchCV(LogisticRegression, C in {0.01, 0.1, 1, 10, 100}, cv=3)",
             f"- Load average at the start: {loadavg()}", ""]
    lines = header("Fidelity of the fast paths (features and downstream accuracy)", sys.argv[1:], extra)
    lines += ["| model | variant | img/s (whole run) | cosine to reference: min / 1st pct / mean | test accuracy "
              "| test predictions changed |", "|---|---|---|---|---|---|"]
    runs = [("efficientnet_lite0", [("reference: tensorflow fp32, full decode", {"engine": "tensorflow"}),
                                    ("default: openvino fp32", {}),
                                    ("fast_decode", {"fast_decode": True}),
                                    ("precision bf16 (openvino)", {"precision": "bf16"}),
                                    ("precision bf16, engine tensorflow", {"precision": "bf16", "engine": "tensorflow"}),
                                    ("bf16 + fast_decode", {"precision": "bf16", "fast_decode": True})])]
    if CORAL.exists():
        runs.append((str(CORAL), [("reference: full decode", {}), ("fast_decode", {"fast_decode": True})]))
    for model, variants in runs:
        reference = None
        for label, opts in variants:
            print(f"[{time.strftime('%H:%M:%S')}] {Path(model).name} {label} (load {loadavg()})", flush=True)
            out = work / f"fid-{Path(model).stem}-{len(lines)}.h5"
            started = time.perf_counter()
            run_extract(ExtractOptions(str(flowers), str(out), model=model, force=True,
                                       command="bench_extract --fidelity", **{"precision": "fp32", **opts}))
            rate = n_photos / (time.perf_counter() - started)
            with h5py.File(out) as h5:
                feats, paths = h5["features"][()], [p.decode() for p in h5["paths"][()]]
            accuracy, predictions = logreg_accuracy(out)
            if reference is None:
                reference = (feats, paths, predictions)
                cos_text, changed = "-", "-"
            else:
                assert paths == reference[1], "row order differs"
                cos = cosines(reference[0], feats)
                cos_text = f"{cos.min():.6f} / {np.percentile(cos, 1):.6f} / {cos.mean():.6f}"
                changed = f"{int((predictions != reference[2]).sum())} of {len(predictions)}"
            lines.append(f"| {Path(model).name} | {label} | {rate:.1f} | {cos_text} | {accuracy:.4f} | {changed} |")
    variants = {"openvino fp32": {}, "openvino bf16": {"precision": "bf16"},
                "tensorflow bf16": {"engine": "tensorflow", "precision": "bf16"}}
    lines += ["", "Random-init backbones (weights=none) against tensorflow fp32 on 64 of the photos (cosine "
              "min / mean; random weights say little about trained ones):", "",
              "| model | " + " | ".join(variants) + " | largest fp32 feature |", "|---|" + "---|" * (len(variants) + 1)]
    from featurebench.data.pipeline import DecodeOptions, load_image
    from featurebench.extractors import load_extractor

    photos = image_paths(flowers)[::21][:64]
    for model in ("mobilenet", "resnet50", "vgg16"):
        reference = load_extractor(model, weights="none", seed=1, engine="tensorflow")
        images = np.stack([load_image(p, DecodeOptions(reference.input_size)) for p in photos])

        def features(extractor) -> np.ndarray:
            return np.concatenate([extractor.extract(images[i:i + 16]) for i in range(0, len(images), 16)])

        a = features(reference)
        cells = []
        for kwargs in variants.values():
            cos = cosines(a, features(load_extractor(model, weights="none", seed=1, **kwargs)))
            cells.append(f"{cos.min():.6f} / {cos.mean():.6f}")
        lines.append(f"| {model} | " + " | ".join(cells) + f" | {np.abs(a).max():.3g} |")
    lines += ["", f"Load average at the end: {loadavg()}."]
    return lines


if __name__ == "__main__":
    run_script(__doc__, report, STEM)
