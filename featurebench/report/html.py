"""The self-contained HTML report: a view model built from the runs, rendered by a Jinja2 template.

Autoescaping is on for the whole template and no user-supplied value is ever marked safe: run
names, dataset and class names, paths, parameters and commands always render as text. CSS and
JavaScript live in the template itself; the accuracy chart is HTML, the per-run plots are SVG ``data:``
URIs, so the file needs no network.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

from featurebench.report import formatting as fmt
from featurebench.report import gallery
from featurebench.report import plots
from featurebench.report.collect import Run, UnreadableRun
from featurebench.report.tables import BASELINE_LABEL, dataset_baselines, setting_label
from featurebench.text import plural

TEMPLATES = Path(__file__).with_name("templates")
TEMPLATE = "report.html.j2"


def _environment():
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,  # every {{ }} is escaped; the template never uses |safe
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _num(value: Any) -> str:
    """Sort key for a data-sort attribute ('' = missing, sorted last)."""
    return "" if fmt.missing(value) else repr(float(value))


def _leaderboard_row(index: int, run_id: str, row: dict[str, Any]) -> dict[str, Any]:
    view = {
        "id": run_id, "order": index, "run": row["run"], "dataset": row["dataset"], "extractor": row["extractor"],
        "classifier": row["classifier"], "variant": row["variant"], "variant_title": row["variant_title"],
        "setting": setting_label(row),
        "baseline": row["random_init"], "badge": _badge(row), "best": row["best_in_dataset"],
        "rank": row["rank_in_group"], "group_start": row["group_start"], "group": row["group"],
        "main_group": row["main_group"], "group_index": row["group_index"],
        "kind_label": "" if row["random_init"] else row["label"],
        "cells": [
            {"key": "accuracy", "text": fmt.score(row),
             "sub": " ".join(t for t in (fmt.ci(row["score_ci_low"], row["score_ci_high"]), fmt.splits_note(row)) if t),
             "sort": _num(row["score"])},
            {"key": "versus", "text": fmt.versus(row) or fmt.BLANK, "sub": row["comparison"] if row["p_value"] is not None else "",
             "sort": _num(row["p_value"])},
            {"key": "rank1", "text": fmt.pct(row["rank1"]), "sort": _num(row["rank1"])},
            {"key": "rank5", "text": fmt.pct(row["rank5"]), "sort": _num(row["rank5"])},
            {"key": "mean_per_class_accuracy", "text": fmt.pct(row["mean_per_class_accuracy"]), "sort": _num(row["mean_per_class_accuracy"])},
            {"key": "macro_f1", "text": fmt.pct(row["macro_f1"]), "sort": _num(row["macro_f1"])},
            {"key": "fit_seconds", "text": fmt.seconds(row["fit_seconds"]), "sort": _num(row["fit_seconds"])},
            {"key": "extract_images_per_second", "text": fmt.rate(row["extract_images_per_second"]),
             "sort": _num(row["extract_images_per_second"])},
            {"key": "feature_dim", "text": fmt.integer(row["feature_dim"]), "sort": _num(row["feature_dim"])},
            {"key": "feature_file_bytes", "text": fmt.size(row["feature_file_bytes"]), "sort": _num(row["feature_file_bytes"])},
        ],
    }
    for cell in view["cells"]:
        cell.setdefault("sub", "")
    return view


#: Leaderboard metric columns: (key, header, tooltip, higher is better).
METRIC_COLUMNS = [
    ("accuracy", "Accuracy\u00a0%", "test accuracy with its bootstrap 95% confidence interval; a repeated-split "
     "run: mean ± std over its splits with the mean's 95% CI", True),
    ("versus", "vs best", "difference to the best run of the same test-row group, and the paired test's p-value "
     "(McNemar exact on the same images, or paired t-test over the same splits); n.s. = not significant", True),
    ("rank1", "Rank\u20111 %", "true class is the top prediction", True),
    ("rank5", "Rank\u20115 %", "true class among the top 5 predictions (blank with ≤ 5 classes)", True),
    ("mean_per_class_accuracy", "Mean/class %", "mean of per-class accuracy (recall)", True),
    ("macro_f1", "Macro\u2011F1 %", "unweighted mean of per-class F1", True),
    ("fit_seconds", "Fit s", "grid search + refit time, seconds", False),
    ("extract_images_per_second", "Extract img/s", "feature extraction throughput", True),
    ("feature_dim", "Dim", "feature dimension", False),
    ("feature_file_bytes", "File", "feature file size", False),
]
#: Columns a narrow window (under 1200 px) hides, so the leaderboard fits without scrolling sideways.
NARROW_HIDDEN = {"extract_images_per_second": "extraction speed", "feature_dim": "feature dimension",
                 "feature_file_bytes": "feature-file size"}


def _provenance(m: dict[str, Any]) -> list[tuple[str, str]]:
    p = m.get("provenance") or {}
    v = m.get("versions") or {}

    def pick(*values: Any) -> str:
        for value in values:
            if not fmt.missing(value) and value != "":
                return fmt.any_value(value)
        return fmt.BLANK

    model = fmt.any_value(m.get("extractor"))
    if p.get("model") and str(p["model"]) != str(m.get("extractor")):
        model += f" (feature file: {fmt.any_value(p['model'])})"
    weights = pick(m.get("weights"), p.get("weights"))
    if p.get("weights_sha256"):
        weights += f" · sha256 {fmt.any_value(p['weights_sha256'])}"
    if m.get("random_init"):
        weights += f" · {BASELINE_LABEL}"
    preprocessing = pick(p.get("preprocessing"))
    extra = [f"input {fmt.any_value(p['input_size'])}" if p.get("input_size") else "",
             f"resize {fmt.any_value(p['resize'])}" if p.get("resize") else ""]
    preprocessing = " · ".join([preprocessing] + [e for e in extra if e])
    split = pick(m.get("split"))
    split_bits = [f"train {fmt.integer(m.get('n_train'))} / test {fmt.integer(m.get('n_test'))}"]
    if p.get("train_fraction") not in (None, ""):
        split_bits.append(f"train fraction {fmt.any_value(p['train_fraction'])}")
    if p.get("split_index") not in (None, ""):
        split_bits.append(f"split index {fmt.any_value(p['split_index'])}")
    versions = " · ".join(f"{k} {fmt.any_value(val)}" for k, val in v.items() if val not in (None, "")) or fmt.BLANK
    rows = [
        ("Dataset", pick(m.get("dataset"))),
        ("Model", model),
        ("Layer / pool", f"{pick(m.get('layer'), p.get('layer'))} / {pick(m.get('pool'), p.get('pool'))}"),
        ("Weights", weights),
        ("Preprocessing", preprocessing),
        ("Seed", pick(p.get("seed"))),
        ("Split", " · ".join([split] + split_bits)),
        ("Classifier", f"{pick(m.get('classifier'))} · best {fmt.params(m.get('best_params'))}"),
        ("Searched grid", " · ".join(t for t in (fmt.params(m.get("grid")) if m.get("grid") else fmt.BLANK,
                                                 fmt.budget(m.get("time_budget"))) if t)),
        *([("Repeats", fmt.repeats(m.get("repeats")) + "; the other numbers are the first split's")]
          if fmt.repeats(m.get("repeats")) else []),
        ("Feature file", f"{pick(m.get('feature_file'))} ({fmt.size(m.get('feature_file_bytes'))})"),
        ("Source", pick(p.get("source"))),
        ("Versions", versions),
        ("Created", pick(m.get("created"))),
    ]
    return rows


def _run_view(run_id: str, run: Run, row: dict[str, Any], with_plots: bool, heatmaps: bool = False) -> dict[str, Any]:
    m = run.metrics
    tiles = [
        ("Mean accuracy" if row["score_std"] is not None else "Accuracy", fmt.score(row) + "%",
         " ".join(t for t in (fmt.ci(row["score_ci_low"], row["score_ci_high"]), fmt.splits_note(row)) if t)),
        ("Test rows", row["test_set"], row["comparison"] or ("best of its group" if row["best_in_group"] else "")),
        ("Rank-1", _pct_unit(m.get("rank1")), ""),
        ("Rank-5", _pct_unit(m.get("rank5")), ""),
        ("Mean per class", _pct_unit(m.get("mean_per_class_accuracy")), ""),
        ("Macro-F1", _pct_unit(m.get("macro_f1")), ""),
        ("Train / test", f"{fmt.integer(m.get('n_train'))} / {fmt.integer(m.get('n_test'))}",
         f"{fmt.integer(m.get('n_classes'))} classes"),
        ("Fit", fmt.seconds(m.get("fit_seconds")) + " s", f"predict {fmt.seconds(m.get('predict_seconds'))} s"),
    ]
    cv = m.get("cv") or {}
    figures = []
    if with_plots:
        for kind, caption, uri in (
            ("confusion", "Confusion matrix (rows: true class, columns: predicted; colour = share of the true class)",
             plots.confusion_heatmap(m.get("confusion"))),
            ("per-class", "Per-class accuracy (recall) and F1", plots.per_class_accuracy(m.get("per_class"), m.get("mean_per_class_accuracy"))),
            ("cv", f"Cross-validation: mean score vs {cv.get('param') or 'the searched parameter'}; ★ = chosen",
             plots.cv_curve(cv, m.get("best_params"))),
        ):
            if uri:
                wide = kind == "confusion" and len((m.get("confusion") or {}).get("labels") or []) > 8
                figures.append({"kind": kind, "caption": caption, "src": uri, "wide": wide})
    per_class = [{"label": r.get("label"), "precision": fmt.pct(r.get("precision"), 1), "recall": fmt.pct(r.get("recall"), 1),
                  "f1": fmt.pct(r.get("f1"), 1), "support": fmt.integer(r.get("support"))} for r in (m.get("per_class") or [])]
    cv_rows = [{"params": fmt.params(r.get("params")), "mean": _score(r.get("mean_test_score")), "std": _score(r.get("std_test_score")),
                "chosen": bool(m.get("best_params")) and r.get("params") == m.get("best_params")} for r in (cv.get("results") or [])]
    p = m.get("provenance") or {}
    return {
        "id": run_id, "name": run.name, "title": f"{m['dataset']} · {m['extractor']} · {setting_label(row)}",
        "baseline": run.random_init, "badge": _badge(row), "best": row["best_in_dataset"], "rank": row["rank_in_group"],
        "group": row["group"],
        "dataset": m["dataset"], "kind": m.get("kind") or "features", "path": str(run.path), "notes": list(run.notes),
        "tiles": tiles, "figures": figures, "provenance": _provenance(m), "per_class": per_class, "cv_rows": cv_rows,
        "command": m.get("command") or "", "extract_command": fmt.any_value(p.get("command")) if p.get("command") else "",
        "attributes": [(str(k), fmt.any_value(val)) for k, val in sorted(p.items())],
        "mistakes": gallery.mistakes_view(run, heatmaps), "audit": gallery.audit_view(run),
    }


def _counted(progress: Any, done: int, total: int, view: dict[str, Any]) -> dict[str, Any]:
    if progress is not None:
        progress(done, total)
    return view


def _pct_unit(value: Any) -> str:
    text = fmt.pct(value)
    return text if text == fmt.BLANK else text + "%"


def _score(value: Any) -> str:
    return fmt.BLANK if fmt.missing(value) else f"{float(value):.4f}"


def _matrix(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy by (extractor, classifier and variant) × dataset, best per dataset flagged: one cell per run."""
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    keys = sorted({(r["extractor"], r["random_init"], setting_label(r)) for r in rows}, key=lambda k: (k[1], k[0], k[2]))
    best = {r["dataset"]: r["score"] for r in rows if r["best_in_dataset"]}
    body = []
    for extractor, baseline, classifier in keys:
        cells = []
        for d in datasets:
            # The main group only: a cell never mixes scores on different test rows.
            match = [r for r in rows if r["dataset"] == d and r["main_group"]
                     and (r["extractor"], r["random_init"], setting_label(r)) == (extractor, baseline, classifier)]
            top = max(match, key=lambda r: r["score"]) if match else None
            cells.append({"text": fmt.pct(top["score"]) if top else "", "best": bool(top) and top["score"] == best[d],
                          "sort": _num(top["score"]) if top else ""})
        badge = next((_badge(r) for r in rows if (r["extractor"], r["random_init"]) == (extractor, baseline)), "")
        body.append({"extractor": extractor, "baseline": baseline, "badge": badge, "classifier": classifier,
                     "cells": cells})
    return {"datasets": datasets, "rows": body}


def _badge(row: dict[str, Any]) -> str:
    """The label a baseline run carries (random-init or raw-pixel features), else ``""``."""
    return BASELINE_LABEL if row["random_init"] else f"{row['baseline']} baseline" if row["baseline"] else ""


def _baseline_note(baseline: dict[str, Any] | None, best: dict[str, Any]) -> str:
    """The dataset's best baseline next to its best run, so a reader sees what "good" means."""
    if baseline is None:
        return ""
    if baseline is best:
        return f"the best run is itself a baseline ({baseline['baseline']})"
    if baseline["group"] != best["group"]:
        return ""
    gain = 100 * (best["score"] - baseline["score"])
    kind = "random-init " if baseline["random_init"] else ""
    return (f"baseline {fmt.pct(baseline['accuracy'])}% ({kind}{baseline['extractor']} + {setting_label(baseline)}); "
            f"best is {gain:+.1f} points")


def _ties(best: dict[str, Any], rows: Sequence[dict[str, Any]]) -> str:
    """The runs of the best's group whose difference to it is not significant (a tie, statistically)."""
    tied = [r for r in rows if r["dataset"] == best["dataset"] and r["group"] == best["group"]
            and r["significant"] is False]
    if not tied:
        return ""
    names = ", ".join(f"{r['extractor']} · {setting_label(r)}" for r in tied[:3]) + (" …" if len(tied) > 3 else "")
    return f"not significantly better than {plural(len(tied), 'other run')} ({names})"


def render_html(
    pairs: Sequence[tuple[Run, dict[str, Any]]],
    unreadable: Sequence[UnreadableRun] = (),
    results_dir: str | Path = "",
    with_plots: bool = True,
    heatmaps: bool = False,
    progress: Any = None,
) -> str:
    """The report page for runs in leaderboard order (``tables.leaderboard_rows``); ``progress(done, total)``
    after each run's section."""
    from featurebench import __version__

    rows = [row for _, row in pairs]
    ids = [f"run-{i + 1}" for i in range(len(pairs))]
    baselines = dataset_baselines(rows)
    best_cards = []
    for run_id, (run, row) in zip(ids, pairs):
        if row["best_in_dataset"]:
            best_cards.append({"id": run_id, "dataset": row["dataset"], "extractor": row["extractor"],
                               "classifier": row["classifier"], "baseline": row["random_init"],
                               "accuracy": fmt.score(row) + "%", "ci": fmt.ci(row["score_ci_low"], row["score_ci_high"]),
                               "macro_f1": _pct_unit(row["macro_f1"]), "group": row["group"],
                               "splits": fmt.splits_note(row), "ties": _ties(row, rows),
                               "n_runs": sum(1 for r in rows if r["dataset"] == row["dataset"] and r["main_group"]),
                               "n_test": fmt.integer(row["n_test"]), "variant": row["variant"],
                               "reference": _baseline_note(baselines.get(row["dataset"]), row)})
    chart = plots.accuracy_chart(rows, ids, baselines)
    context = {
        "title": "featurebench report",
        "results_dir": str(results_dir),
        "generated": time.strftime("%Y-%m-%d %H:%M"),
        "version": __version__,
        "n_runs": len(rows),
        "datasets": list(dict.fromkeys(r["dataset"] for r in rows)),
        "n_baselines": sum(1 for r in rows if r["random_init"]),
        "columns": METRIC_COLUMNS,
        "narrow_hidden": NARROW_HIDDEN,
        "narrow_hidden_text": ", ".join(list(NARROW_HIDDEN.values())[:-1]) + " and " + list(NARROW_HIDDEN.values())[-1],
        "leaderboard": [_leaderboard_row(i, run_id, row) for i, (run_id, row) in enumerate(zip(ids, rows))],
        "chart": chart,
        "chart_colours": plots.classifier_colours(rows),
        "bars_zoomed": any(panel["zoomed"] for panel in chart),
        "n_dataset_baselines": len(baselines),
        "matrix": _matrix(rows),
        "best_cards": best_cards,
        "runs": [_counted(progress, k, len(pairs), _run_view(run_id, run, row, with_plots, heatmaps))
                 for k, (run_id, (run, row)) in enumerate(zip(ids, pairs), 1)],
        "unreadable": [{"name": u.name, "path": str(u.path), "reason": u.reason} for u in unreadable],
        "baseline_label": BASELINE_LABEL,
    }
    return _environment().get_template(TEMPLATE).render(**context)


__all__ = ["render_html", "METRIC_COLUMNS"]
