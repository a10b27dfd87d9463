"""Two extractors, combined: EfficientNet-Lite0 + Coral MobileNet v1, each alone, fused, and ensembled.

On Flowers-17 and Dogs vs Cats (../shared/datasets), with the classic protocol (seed 42 shuffle,
75/25 index split, logistic regression grid-searched with cv=3 on the train slice):

- each extractor alone (`featurebench fit A.h5`, `fit B.h5`);
- early fusion: `featurebench fuse A.h5 B.h5 -o AB.h5 --scale none|standard|block` then `fit AB.h5`
  (one classifier on 2,304-d; standard, the default, standardises each column with train-row statistics);
- late fusion: `featurebench ensemble RUN_A RUN_B` (the two classifiers' probabilities averaged).

    python scripts/bench_ensemble.py --out results/bench_ensemble.md

Feature files are cached under /tmp/fb-cache/ ({dataset}__{model}.h5) and reused when present.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

from featurebench.extractors.cpu import machine_summary

SHARED = next((p for p in (Path(__file__).resolve().parents[2] / "shared", Path("/work/shared")) if p.is_dir()),
              Path(__file__).resolve().parents[2] / "shared")
CACHE = Path("/tmp/fb-cache")
CORAL = SHARED / "models" / "coral" / "mobilenet_v1_1.0_224_quant_embedding_extractor.tflite"
DATASETS = {"flowers17": (SHARED / "datasets" / "flowers17", None),
            "dogs-vs-cats": (SHARED / "datasets" / "dogs-vs-cats" / "train", r"^(cat|dog)\.")}
MODELS = {"efficientnet_lite0": "efficientnet_lite0", "coral_mobilenet_v1": str(CORAL)}


def features(dataset: str, model_key: str, split: str = "index") -> Path:
    """The cached feature file (``--split stratified`` ones named ``..__stratified.h5``), extracted (to a
    temporary name, then renamed) when missing."""
    from featurebench.extract import ExtractOptions, run_extract

    target = CACHE / f"{dataset}__{model_key}{'' if split == 'index' else '__' + split}.h5"
    if target.exists():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    root, pattern = DATASETS[dataset]
    tmp = CACHE / f".tmp-bench-ensemble-{os.getpid()}-{target.name}"
    run_extract(ExtractOptions(source=str(root), output=str(tmp), model=MODELS[model_key], label_pattern=pattern,
                               dataset_name=dataset, split=split, precision="fp32",
                               command=f"bench_ensemble extract {dataset} {model_key} --split {split}"))
    os.replace(tmp, target)
    return target


def arguments(doc: str, out: str, runs: str, n_jobs: int) -> argparse.ArgumentParser:
    """The flags these Flowers-17 / Dogs vs Cats scripts share: --out, --runs (under the cache), --n-jobs."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path(out))
    parser.add_argument("--runs", type=Path, default=CACHE / runs)
    parser.add_argument("--n-jobs", type=int, default=n_jobs)
    return parser


def main() -> None:
    args = arguments(__doc__, "results/bench_ensemble.md", "bench_ensemble", 1).parse_args()
    if not CORAL.is_file():
        sys.exit(f"{CORAL} not found: this benchmark needs ../shared")
    from featurebench.ensemble import fuse_features, run_ensemble
    from featurebench.fit import run_fit
    from featurebench.store.reader import open_feature_file

    from featurebench.report.compare import correctness, mcnemar_exact
    from featurebench.report.collect import read_run

    keys = ("fused", "fused_standard", "fused_block", "fused_fit_std", "ensemble")
    rows, sources, wins = [], [], {k: 0 for k in keys}
    for dataset in DATASETS:
        a, b = features(dataset, "efficientnet_lite0"), features(dataset, "coral_mobilenet_v1")
        for path in (a, b):
            with open_feature_file(path) as f:
                sources.append(f"- `{path.name}`: {f.n_rows} rows x {f.feature_dim}, seed {f.attrs.get('seed')}, "
                               f"resize {f.attrs.get('resize')}, {f.attrs.get('images_per_second')} img/s extracting, made by "
                               f"`{f.attrs.get('command')}`")
        args.runs.mkdir(parents=True, exist_ok=True)
        fused = {}
        for fuse_scale in ("none", "standard", "block"):
            fused[fuse_scale] = args.runs / f"{dataset}__lite0+coral__{fuse_scale}.h5"
            started = time.perf_counter()
            fuse_features([a, b], fused[fuse_scale], force=True, command=f"bench_ensemble fuse --scale {fuse_scale}",
                          scale=fuse_scale)
            fuse_seconds = time.perf_counter() - started
        results = args.runs / dataset
        runs = {}
        for label, path, scale in (("lite0", a, "none"), ("coral", b, "none"), ("fused", fused["none"], "none"),
                                   ("fused_standard", fused["standard"], "none"), ("fused_block", fused["block"], "none"),
                                   ("fused_fit_std", fused["none"], "standard")):
            runs[label] = run_fit(path, "logreg", cv=3, n_jobs=args.n_jobs, out=results, force=True, scale=scale,
                                  run_name=f"{dataset}__{label}", command=f"bench_ensemble fit {path.name} --scale {scale}")
        started = time.perf_counter()
        ens = run_ensemble([runs["lite0"].run_dir, runs["coral"].run_dir], results, force=True,
                           command="bench_ensemble ensemble")
        ens_seconds = time.perf_counter() - started
        m = {k: r.metrics for k, r in runs.items()}
        m["ensemble"] = ens.metrics
        single = "lite0" if m["lite0"]["accuracy"] >= m["coral"]["accuracy"] else "coral"
        best_single = m[single]["accuracy"]
        dirs = {k: r.run_dir for k, r in runs.items()} | {"ensemble": ens.run_dir}
        right = {k: correctness(read_run(d, d.name)) for k, d in dirs.items()}
        for key in wins:
            wins[key] += m[key]["accuracy"] > best_single

        def cell(key: str) -> str:
            lo, hi = m[key]["accuracy_ci95"]
            text = f"{100 * m[key]['accuracy']:.2f} [{100 * lo:.1f}-{100 * hi:.1f}]"
            if key in ("lite0", "coral"):
                return text
            test = mcnemar_exact(right[single], right[key])
            return f"{text} ({100 * (m[key]['accuracy'] - best_single):+.2f}, p={test['p_value']:.2g})"

        rows.append(f"| {dataset} | {m['lite0']['n_test']} | {cell('lite0')} | {cell('coral')} | "
                    + " | ".join(cell(k) for k in keys) + " | "
                    + " / ".join(str(m[k]["best_params"].get("C")) for k in ("lite0", "coral", *keys[:-1]))
                    + f" | {fuse_seconds:.1f} s / {ens_seconds:.1f} s |")
        print(rows[-1], flush=True)
    text = f"""# EfficientNet-Lite0 + Coral MobileNet v1: alone, fused (early), ensembled (late)

Command: `python {shlex.join(sys.argv)}`

Protocol: the stored seed-42 shuffle and 75/25 index split of each feature file; logistic
regression (`featurebench fit --clf logreg`, default grid C in {{0.1, 1, 10, 100, 1000, 10000}},
3-fold CV on the train slice only), scored once on the test slice. **Fused** = `featurebench fuse`
(1,280 + 1,024 = 2,304-d, one classifier): `--scale none` (raw concatenation), `--scale standard`
(the default: each column standardised with the train rows' mean and std), `--scale block` (each
part divided by its train rows' mean L2 norm), and the raw fused file with `fit --scale standard`
(the scaler inside the classifier's pipeline, fitted on the train rows); **ensemble** =
`featurebench ensemble` of the two single-extractor runs (mean of their predicted probabilities).
Accuracy in % with the bootstrap 95% CI; in brackets: points vs the better single extractor and
McNemar's exact p-value on the same test images (`featurebench.report.compare.mcnemar_exact`).
One split per dataset: differences of one or two points are within the intervals.

| dataset | test images | Lite0 | Coral MobileNet v1 | fused, none | fused, standard (default) | fused, block | fused none + fit --scale standard | ensemble | chosen C (Lite0 / Coral / none / standard / block / fit-std) | fuse s / ensemble s |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|
{chr(10).join(rows)}

Beating the better single extractor (by any margin, one split): fused none on {wins['fused']} of
{len(DATASETS)} datasets, fused standard on {wins['fused_standard']}, fused block on {wins['fused_block']},
fused none + fit --scale standard on {wins['fused_fit_std']}, the ensemble on {wins['ensemble']}.

Feature files (cached in /tmp/fb-cache/, not committed):
{chr(10).join(sources)}

Machine: {machine_summary()}; shared with other jobs
while it ran. Fuse and ensemble run no network (seconds in the table); the cost of both is
extracting two feature files instead of one (img/s above, from each file's record).
"""
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
