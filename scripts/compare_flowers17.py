"""The report's comparisons on real photos: Flowers-17, Lite0 vs Coral MobileNet v1 vs their ensemble.

Runs (logistic regression, default grid, 3-fold CV on the train rows), all into one results folder:

- Lite0 and Coral on the stored 75/25 index split, their ensemble (mean of probabilities) and their
  early fusion (`fuse`, default --scale standard): the main group, compared with McNemar's exact test;
- Lite0 and Coral with `--repeats 5` (the same 5 stratified splits): ranked by their means and
  compared split by split (paired t-test);
- `audit --run` of the Lite0 run, then `fit --exclude exclude_rows.txt` (the flagged rows stop
  training; test rows stay) and `--exclude-test` (flagged test rows dropped too: "accuracy on audited
  test rows", ranked apart).

Then `featurebench report` writes report.md + runs.csv into --out (committed, results/report_flowers17/),
the numbers docs/report.md quotes.

    python scripts/compare_flowers17.py --out results/report_flowers17

Feature files come from scripts/bench_ensemble.py's cache (/tmp/fb-cache/, extracted when missing).
"""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ensemble import CORAL, arguments, features  # noqa: E402

from featurebench.extractors.cpu import machine_summary  # noqa: E402


#: Not regenerated here: it records what the report of `main` made of these run folders before issue 24.
BEFORE = """`before-main.md`: the same run folders reported by the report code of `main` before issue 24
(`PYTHONPATH=/work/main python -c "from featurebench.report import build_report; build_report(RUNS, 'before.html',
md_path='before.md', plots=False)"`; not remade by this script): one ranking of all 8 runs, the `--repeats`
Coral run ranked (and headlined) by its first split's 96.18, the audited-test-row run ranked beside the
honest ones, no paired tests.
"""


def pairwise(runs: dict) -> str:
    """A Markdown table: McNemar's exact test for every pair of the stored-split runs."""
    from itertools import combinations

    from featurebench.report.collect import read_run
    from featurebench.report.compare import correctness, mcnemar_exact

    right = {key: correctness(read_run(r.run_dir, r.run_dir.name)) for key, r in runs.items()}
    acc = {key: r.metrics["accuracy"] for key, r in runs.items()}
    lines = ["| first | second | accuracy % | difference (pts) | b / c | McNemar p |", "|---|---|---:|---:|---:|---:|"]
    for a, b in combinations(runs, 2):
        test = mcnemar_exact(right[a], right[b])
        lines.append(f"| {a} | {b} | {100 * acc[a]:.2f} / {100 * acc[b]:.2f} | {100 * (acc[a] - acc[b]):+.2f} | "
                     f"{test['b']} / {test['c']} | {test['p_value']:.3g}{'' if test['p_value'] < 0.05 else ' (n.s.)'} |")
    return "\n".join(lines)


def main() -> None:
    parser = arguments(__doc__, "results/report_flowers17", "compare_flowers17", 2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if not CORAL.is_file():
        sys.exit(f"{CORAL} not found: this script needs ../shared")
    from featurebench.audit.run import run_audit
    from featurebench.ensemble import fuse_features, run_ensemble
    from featurebench.fit import run_fit
    from featurebench.report import build_report

    lite0, coral = features("flowers17", "efficientnet_lite0"), features("flowers17", "coral_mobilenet_v1")
    shutil.rmtree(args.runs, ignore_errors=True)
    results = args.runs / "results"
    fit = dict(clf="logreg", cv=3, n_jobs=args.n_jobs, out=results)
    runs = {"lite0": run_fit(lite0, **fit, command=f"featurebench fit {lite0.name}"),
            "coral": run_fit(coral, **fit, command=f"featurebench fit {coral.name}")}
    runs["ensemble"] = run_ensemble([runs["lite0"].run_dir, runs["coral"].run_dir], results,
                                    command="featurebench ensemble LITE0 CORAL")
    fused = args.runs / "flowers17__lite0+coral.h5"
    fuse_features([lite0, coral], fused, force=True, command="featurebench fuse LITE0 CORAL -o FUSED")
    runs["fused"] = run_fit(fused, **fit, command=f"featurebench fit {fused.name}")
    for path in (lite0, coral):
        run_fit(path, **fit, repeats=args.repeats, command=f"featurebench fit {path.name} --repeats {args.repeats}")
    audit = run_audit(lite0, run_dir=runs["lite0"].run_dir)
    exclude = audit.exclude_path
    run_fit(lite0, **fit, exclude=exclude, command=f"featurebench fit {lite0.name} --exclude exclude_rows.txt")
    run_fit(lite0, **fit, exclude=exclude, exclude_test=True,
            command=f"featurebench fit {lite0.name} --exclude exclude_rows.txt --exclude-test")
    args.out.mkdir(parents=True, exist_ok=True)
    pairs = pairwise(runs)
    summary = build_report(results, args.runs / "report.html", md_path=args.out / "report.md",
                           csv_path=args.out / "runs.csv", plots=False)
    (args.out / "README.md").write_text(
        f"# Flowers-17: Lite0 vs Coral MobileNet v1 vs their ensemble\n\n"
        f"Made by `python {shlex.join(sys.argv)}` (docs/report.md explains it).\n\n"
        f"Feature files: `{lite0.name}`, `{coral.name}` (scripts/bench_ensemble.py's cache: seed-42 shuffle, "
        f"stored 75/25 index split). Audit of the Lite0 run: {audit.record['near_duplicates']['test_rows_affected']} "
        f"near-duplicate test row(s), {len(audit.record['label_issues'].get('rows', []))} label issue(s) flagged.\n\n"
        f"Every pair of the stored-split runs, McNemar's exact test on the same 340 test images "
        f"(`featurebench.report.compare.mcnemar_exact`; b = images only the first got right, c = only the second):\n\n"
        f"{pairs}\n\nMachine: {machine_summary()}.\n\n```\n{summary.describe()}\n```\n\n{BEFORE}", encoding="utf-8")
    print(summary.describe())


if __name__ == "__main__":
    main()
