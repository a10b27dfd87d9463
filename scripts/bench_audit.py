"""Recall and precision of `featurebench audit` on planted problems in the shared real datasets.

For each dataset: the clean feature file (EfficientNet-Lite0, cached under /tmp/fb-cache/) is
audited once to learn the problems already there; then K test images are resized to 80% and
re-encoded as JPEG (quality 75), extracted with the same extractor and inserted as train rows
(planted near-duplicates), and 5% of the other rows get a random wrong label (planted label
errors). The audit of that file is scored on the planted cases; problems the clean audit already
found are counted apart (they are real, not false alarms).

    python scripts/bench_audit.py --out results/bench_audit.md
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from featurebench.extractors.cpu import machine_summary

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CACHE = Path("/tmp/fb-cache")
DATASETS = {
    "flowers17": (SHARED / "datasets" / "flowers17", []),
    "dogs-vs-cats": (SHARED / "datasets" / "dogs-vs-cats" / "train", ["--label-pattern", r"^(cat|dog)\."]),
}


def cached_features(name: str) -> Path:
    """The clean Lite0 feature file of a dataset, extracted once into the shared cache."""
    path = CACHE / f"{name}__efficientnet_lite0.h5"
    if not path.exists():
        source, extra = DATASETS[name]
        tmp = CACHE / f".{name}__efficientnet_lite0.tmp-{os.getpid()}.h5"
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "featurebench", "extract", str(source), "-o", str(tmp), "--name", name,
                        "--force", *extra], check=True)
        os.replace(tmp, path)
    return path


def reencoded(path: Path, scale: float = 0.8, quality: int = 75) -> bytes:
    """The image resized to ``scale`` of each side and saved as JPEG at ``quality``."""
    from PIL import Image

    with Image.open(path) as img:
        img = img.convert("RGB")
        img = img.resize((max(1, int(img.width * scale)), max(1, int(img.height * scale))), Image.LANCZOS)
        buffer = io.BytesIO()
        img.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def plant(name: str, features_path: Path, work: Path, k: int, flip: float, seed: int) -> dict:
    """Write the planted feature file; return what was planted (row numbers in the new file)."""
    from featurebench.data.pipeline import DecodeOptions, load_image
    from featurebench.extractors import load_extractor
    from featurebench.store.reader import open_feature_file
    from featurebench.store.writer import write_feature_arrays

    rng = np.random.default_rng(seed)
    with open_feature_file(features_path) as f:
        X, y, paths = f.read_rows(), f.labels.astype(np.int64), f.paths
        names, split, source, attrs = f.label_names, f.split_index, Path(f.attrs["source"]), dict(f.attrs)
    n = len(y)
    picked = np.sort(rng.choice(np.arange(split, n), k, replace=False))
    copies_dir = work / "copies"
    copies_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for row in picked:
        out = copies_dir / f"copy_{row:05d}.jpg"
        out.write_bytes(reencoded(source / paths[row]))
        files.append(out)
    extractor = load_extractor("efficientnet_lite0")
    options = DecodeOptions(tuple(extractor.input_size), str(attrs.get("resize") or "stretch"))
    copies = extractor.extract(np.stack([load_image(p, options) for p in files]))
    # New order: old train rows, the copies (train), old test rows.
    X_new = np.concatenate([X[:split], copies, X[split:]])
    y_new = np.concatenate([y[:split], y[picked], y[split:]])
    paths_new = paths[:split] + [f"planted/{p.name}" for p in files] + paths[split:]
    old_to_new = np.concatenate([np.arange(split), np.arange(split, n) + k])
    copy_rows = np.arange(split, split + k)
    pairs = {(int(c), int(old_to_new[t])) for c, t in zip(copy_rows, picked)}
    candidates = np.setdiff1d(np.arange(n + k), np.concatenate([copy_rows, old_to_new[picked]]))
    flipped = np.sort(rng.choice(candidates, int(round(flip * (n + k))), replace=False))
    y_new[flipped] = (y_new[flipped] + rng.integers(1, len(names), len(flipped))) % len(names)
    keep = {key: attrs[key] for key in ("model", "model_source", "layer", "pool", "weights", "preprocessing")
            if key in attrs}
    out = work / f"{name}__planted.h5"
    write_feature_arrays(out, X_new, y_new, names, paths=paths_new,
                         attrs={**keep, "source": "", "dataset": f"{name}-planted"},
                         train_fraction=(split + k + 0.5) / (n + k))
    return {"path": out, "pairs": pairs, "flipped": set(flipped.tolist()), "old_to_new": old_to_new, "n": n + k}


def score(found: set, planted: set, known: set) -> dict:
    """Recall on the planted cases; precision counting the clean file's own findings apart."""
    hits = found & planted
    false = found - planted - known
    return {"planted": len(planted), "found": len(found), "hits": len(hits), "known": len(found & known - planted),
            "recall": len(hits) / max(1, len(planted)),
            "precision": len(hits) / max(1, len(hits) + len(false)), "false": len(false)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "results" / "bench_audit.md")
    parser.add_argument("--copies", type=int, default=20, help="Test images planted into train.")
    parser.add_argument("--flip", type=float, default=0.05, help="Share of labels flipped.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from featurebench.audit.run import run_audit

    lines = ["# Audit on planted problems (EfficientNet-Lite0 features, shared real datasets)", "",
             f"Command: `python scripts/bench_audit.py --copies {args.copies} --flip {args.flip} --seed {args.seed}`",
             "", f"Machine: {machine_summary()}; shared with other jobs while it ran.", "",
             f"Planted per dataset: {args.copies} test images resized to 80% and re-encoded as JPEG (quality 75), "
             f"inserted into train; {args.flip:.0%} of the other rows relabelled at random. Default audit settings "
             "(adaptive near-duplicate threshold, ratio 0.25; cleanlab on 5-fold out-of-fold logistic regression). "
             "'known' = findings the audit of the clean file already had (real duplicates / label issues of the "
             "dataset, not counted as false alarms); one seed, one split.", "",
             "| dataset | problem | planted | flagged | hits | known | false | recall | precision | audit s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name in DATASETS:
        clean_path = cached_features(name)
        with tempfile.TemporaryDirectory(prefix="bench-audit-") as tmp:
            work = Path(tmp)
            clean = run_audit(clean_path, out=work / "clean").record
            planted = plant(name, clean_path, work, args.copies, args.flip, args.seed)
            started = time.perf_counter()
            audit = run_audit(planted["path"], out=work / "planted").record
            seconds = time.perf_counter() - started
        m = planted["old_to_new"]
        known_pairs = {(int(m[p["train_row"]]), int(m[p["test_row"]])) for p in clean["near_duplicates"]["pairs"]}
        known_labels = {int(m[r["row"]]) for r in clean["label_issues"]["rows"]}
        dups = score({(p["train_row"], p["test_row"]) for p in audit["near_duplicates"]["pairs"]}, planted["pairs"],
                     known_pairs)
        labels = score({r["row"] for r in audit["label_issues"]["rows"]}, planted["flipped"], known_labels)
        for problem, s in (("near-duplicate pairs", dups), ("flipped labels", labels)):
            lines.append(f"| {name} | {problem} | {s['planted']} | {s['found']} | {s['hits']} | {s['known']} | "
                         f"{s['false']} | {s['recall']:.2f} | {s['precision']:.2f} | {seconds:.1f} |")
        lines.append(f"| {name} | (clean file) | — | {len(clean['near_duplicates']['pairs'])} dup pairs at cosine ≥ "
                     f"{clean['near_duplicates']['threshold']:.4f}, {len(clean['label_issues']['rows'])} label issues | "
                     "— | — | — | — | — | — |")
        print(lines[-3], lines[-2], lines[-1], sep="\n", flush=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
