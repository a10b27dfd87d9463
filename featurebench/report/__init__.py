"""`featurebench report`: every run of a results folder side by side, as HTML + Markdown + CSV.
May import explain (thumbnails, heatmaps), data, outputs, text and errors; only the CLI and demo import it.

    from featurebench.report import build_report
    summary = build_report("results/", "report.html", md_path="report.md", csv_path="runs.csv")

Reads ``RESULTS_DIR/<run>/metrics.json`` (schema: ``docs/metrics.md``), and a run's
``predictions.csv`` / ``audit.json`` when present (:mod:`featurebench.report.gallery`). Importing this
package is cheap: pandas, matplotlib and Jinja2 are imported when a report is built, TensorFlow only
with ``heatmaps=True``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from featurebench.errors import FeaturebenchError
from featurebench.outputs import check_output_file
from featurebench.report.collect import Run, UnreadableRun, collect_runs
from featurebench.text import plural

__all__ = ["ReportSummary", "Run", "UnreadableRun", "build_report", "collect_runs"]


@dataclass
class ReportSummary:
    """What :func:`build_report` found and wrote."""

    results_dir: Path
    runs: list[Run]
    unreadable: list[UnreadableRun]
    html_path: Path
    md_path: Path | None = None
    csv_path: Path | None = None
    best: dict[str, Run] = field(default_factory=dict)  # dataset -> best run

    @property
    def outputs(self) -> list[Path]:
        return [p for p in (self.html_path, self.md_path, self.csv_path) if p is not None]

    def describe(self) -> str:
        """A few lines for the CLI: counts, best per dataset, unreadable runs, outputs."""
        datasets = len({r.metrics["dataset"] for r in self.runs})
        lines = [f"{plural(len(self.runs), 'run')} on {plural(datasets, 'dataset')} from {self.results_dir} "
                 "(accuracy on each run's held-out test split)"]
        from featurebench.report.compare import run_score

        for dataset, run in self.best.items():
            m = run.metrics
            tag = " (random-init baseline)" if run.random_init else ""
            score, std, _ = run_score(m)
            value = f"{100 * score:.2f} ± {100 * std:.2f}% (mean of {m['repeats']['n']} splits)" if std is not None \
                else f"{100 * score:.2f}%"
            lines.append(f"  best test accuracy on {dataset} (its stored split's group): {m['extractor']}{tag} + "
                         f"{m['classifier']} = {value} ({run.name})")
        for bad in self.unreadable:
            lines.append(f"  unreadable: {bad.name}: {bad.reason}")
        lines += [f"wrote {p}" for p in self.outputs]
        return "\n".join(lines)


def build_report(
    results_dir: str | Path,
    html_path: str | Path,
    md_path: str | Path | None = None,
    csv_path: str | Path | None = None,
    *,
    plots: bool = True,
    heatmaps: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> ReportSummary:
    """Collect every run under ``results_dir`` and write the HTML report (and optionally Markdown/CSV).

    Runs whose ``metrics.json`` is missing or broken are listed as unreadable (with the reason) in
    every output; the rest are still reported. Raises :class:`FeaturebenchError` when the folder
    does not exist or holds no readable run. ``plots=False`` skips the images (faster; for tests).
    ``heatmaps=True`` draws the gallery of mistakes as heatmap overlays (loads each run's model: TensorFlow).
    ``progress(done, total)`` hears each run's section as it is drawn (the slow part).
    """
    from featurebench.report import html, tables

    results_dir = Path(results_dir)
    for flag, path, example in (("-o", html_path, "report.html"), ("--md", md_path, "report.md"),
                                ("--csv", csv_path, "runs.csv")):
        if path is not None:
            check_output_file(Path(path), flag, create_parent=True, example=example)
    collection = collect_runs(results_dir)
    if not collection.runs:
        reasons = "".join(f"\n  {bad.name}: {bad.reason}" for bad in collection.unreadable)
        raise FeaturebenchError(
            f"no readable run under {results_dir}: expected {results_dir}/<run-name>/metrics.json "
            f"as written by `featurebench fit --out {results_dir}`." + (f" Unreadable:{reasons}" if reasons else ""))
    pairs = tables.leaderboard_rows(collection.runs)
    page = html.render_html(pairs, collection.unreadable, results_dir=results_dir, with_plots=plots,
                             heatmaps=heatmaps, progress=progress)
    summary = ReportSummary(results_dir, [run for run, _ in pairs], list(collection.unreadable),
                            tables.write_text(page, html_path),
                            best={row["dataset"]: run for run, row in pairs if row["best_in_dataset"]})
    if md_path is not None:
        text = tables.markdown_summary(summary.runs, summary.unreadable)
        summary.md_path = tables.write_text(text, md_path)
    if csv_path is not None:
        summary.csv_path = tables.write_csv(tables.runs_dataframe(summary.runs), csv_path)
    return summary
