"""The stored split: `extract --split index` (the classic protocol) vs `--split stratified`, on Flowers-17.

For Lite0 and the Coral MobileNet v1: the per-class test counts of each stored split, logreg (default
grid, 3-fold CV on the train rows) scored on each stored split, and the same extractor's mean ± std
over 5 stratified splits (`fit --repeats 5`) for scale. Feature files are extracted into /tmp/fb-cache/
(the index ones shared with scripts/bench_ensemble.py).

    python scripts/bench_split.py --out results/bench_split.md
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ensemble import MODELS, arguments, features  # noqa: E402

from featurebench.extractors.cpu import machine_summary  # noqa: E402


def main() -> None:
    parser = arguments(__doc__, "results/bench_split.md", "bench_split", 2)
    args = parser.parse_args()
    from featurebench.fit import run_fit
    from featurebench.store.reader import open_feature_file

    rows = []
    for model_key in MODELS:
        files = {split: features("flowers17", model_key, split) for split in ("index", "stratified")}
        results = {}
        for split, path in files.items():
            with open_feature_file(path) as f:
                test = np.bincount(f.labels[f.split_index:], minlength=len(f.label_names))
            run = run_fit(path, "logreg", cv=3, n_jobs=args.n_jobs, out=args.runs, force=True,
                          run_name=f"flowers17__{model_key}__{split}", command=f"bench_split fit {path.name}")
            results[split] = (run.metrics, test)
        rep = run_fit(files["index"], "logreg", cv=3, n_jobs=args.n_jobs, out=args.runs, force=True, repeats=5,
                      run_name=f"flowers17__{model_key}__repeats5", command="bench_split fit --repeats 5").metrics
        for split, (m, test) in results.items():
            lo, hi = m["accuracy_ci95"]
            rows.append(f"| {model_key} | `--split {split}` | {test.min()}–{test.max()} | "
                        f"{100 * m['accuracy']:.2f} [{100 * lo:.1f}–{100 * hi:.1f}] | "
                        f"{100 * m['mean_per_class_accuracy']:.2f} | "
                        f"{100 * rep['repeats']['accuracy_mean']:.2f} ± {100 * rep['repeats']['accuracy_std']:.2f} |")
            print(rows[-1], flush=True)
    text = f"""# The stored split: `extract --split index` vs `--split stratified` (Flowers-17)

Command: `python {shlex.join(sys.argv)}`

Flowers-17 (17 classes × 80 images), seed-42 shuffle, train fraction 0.75 (1,020 train / 340 test
rows), logistic regression with the default grid (3-fold CV on the train rows), scored once on the
stored test rows. `--split stratified` keeps the same shuffle and interleaves it by class, so each
class has exactly 20 test images; the index split's per-class test counts vary. Last column: the
same extractor's mean ± std over 5 seeded stratified splits of the index file (`fit --repeats 5`,
seeds 42..46), i.e. how much one split moves.

| extractor | stored split | test images per class | accuracy % [95% CI] | mean per-class % | 5 stratified splits, mean ± std % |
|---|---|---:|---:|---:|---:|
{chr(10).join(rows)}

Machine: {machine_summary()}; shared with other jobs while it ran.
"""
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
