"""The report's figures: the accuracy chart as a view model the template draws in HTML (its labels are
text next to the bars), and each run's plots as SVG text returned as ``data:`` URIs.

No figure is a raster image: labels stay text (readable at any width, searchable, never cut off)
and every user-supplied label is escaped before it enters an SVG. matplotlib is used only for its
colour maps (imported inside the function).
"""

from __future__ import annotations

import base64
import functools
import math
from typing import Any, Iterable, Sequence

from featurebench.report.formatting import missing

#: Colour-blind-friendly palette (Okabe–Ito, reordered): one colour per classifier in the accuracy chart.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
#: Parameters searched on a log scale.
LOG_PARAMS = {"C", "alpha", "gamma", "learning_rate", "reg_alpha", "reg_lambda", "tol", "eta", "lr"}


def _short(text: str, limit: int = 28) -> str:
    """A user-supplied label on one line, shortened to ``limit`` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def bar_axis(rows: Sequence[dict[str, Any]]) -> tuple[float, float]:
    """The axis range (%) of one dataset's accuracy panel: zoomed to the accuracies and 95% CIs of its runs
    (baselines left out when there are others, so 98.4 vs 98.8 stays visible), with a margin, never past
    100; it starts at 0 only when the data reach it."""
    kept = [r for r in rows if not r.get("baseline")] or list(rows)
    values = []
    for r in kept:
        values.append(100 * _score(r))
        values += [100 * v for v in _score_ci(r) if not missing(v)]
    low, high = min(values), max(values)
    pad = max(1.0, 0.08 * (high - low))
    step = 5.0 if high - low > 10 else 1.0
    low = max(0.0, math.floor((low - pad) / step) * step)
    return low, min(100.0, high + pad)


def _score(row: dict[str, Any]) -> float:
    """What a bar shows: the run's score (a repeated run's mean accuracy), else its accuracy."""
    return float(row["score"] if not missing(row.get("score")) else row["accuracy"])


def _score_ci(row: dict[str, Any]) -> tuple[Any, Any]:
    if "score" in row:
        return row.get("score_ci_low"), row.get("score_ci_high")
    return row.get("accuracy_ci_low"), row.get("accuracy_ci_high")


def _panel(row: dict[str, Any]) -> tuple:
    """One panel per dataset and test-row group: bars on different test rows are never side by side."""
    return row["dataset"], row.get("group_index", 0)


def accuracy_chart(rows: Sequence[dict[str, Any]], ids: Sequence[str],
                   baselines: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The accuracy chart as panels for the template: one per dataset and test-row group, one bar per run,
    grouped by extractor (baselines last), best first within a group.

    ``rows`` are leaderboard rows (:func:`featurebench.report.tables.leaderboard_rows`), ``ids`` their
    run sections' anchors. Each bar is labelled in text beside it with its classifier and variant (unique
    within its extractor), coloured by classifier (the label, not the colour, tells runs apart), with its
    95% CI as a whisker, its value after it, the best of its group outlined and baselines hatched. Each
    axis is zoomed (:func:`bar_axis`); ``baselines`` (dataset -> best baseline row) draw a dashed line.
    Positions are percentages of the bar track.
    """
    from featurebench.report.tables import setting_label

    baselines = baselines or {}
    colours = classifier_colours(rows)
    panels = []
    for panel in dict.fromkeys(_panel(r) for r in rows):
        sub = [(run_id, r) for run_id, r in zip(ids, rows) if _panel(r) == panel]
        low, high = bar_axis([r for _, r in sub])
        step = next(step for step in (1.0, 2.0, 5.0, 10.0, 20.0, 25.0) if (high - low) / step <= 5)  # ≤ 5 gaps
        low = math.floor(low / step) * step  # the axis starts at a tick: the track's grid lines meet the ticks
        at = functools.partial(_position, low=low, high=high)
        ticks = [{"at": at(t), "text": f"{t:g}"} for t in _ticks(low, high, step)]
        groups = []
        for extractor, random_init in dict.fromkeys((r["extractor"], r["random_init"])
                                                    for _, r in sorted(sub, key=lambda p: p[1]["random_init"])):
            members = sorted(((run_id, r) for run_id, r in sub if (r["extractor"], r["random_init"]) == (extractor, random_init)),
                             key=lambda p: -_score(p[1]))
            groups.append({"extractor": extractor, "random_init": random_init,
                           "bars": [_bar(run_id, r, setting_label(r), colours[str(r["classifier"])], low, at)
                                    for run_id, r in members]})
        dataset = panel[0]
        line = None
        if dataset in baselines and panel[1] == 0:
            base = 100 * _score(baselines[dataset])
            line = {"at": at(base), "text": f"baseline {base:.1f}" + (" (below the axis)" if base < low else "")}
        first = sub[0][1]
        panels.append({"dataset": dataset, "other_rows": first.get("test_set", "") if panel[1] else "",
                       "metric": "audited-rows accuracy %" if first.get("test_set_kind") == "audited" else "test accuracy %",
                       "zoomed": low > 0, "low": f"{low:g}", "ticks": ticks, "step": round(100 * step / (high - low), 3),
                       "baseline": line, "groups": groups})
    return panels


def _position(value: float, low: float, high: float) -> float:
    """Where ``value`` sits on an axis from ``low`` to ``high``, in % of its length (clamped to the axis)."""
    return round(100 * (min(max(value, low), high) - low) / (high - low), 2)


def classifier_colours(rows: Iterable[dict[str, Any]]) -> dict[str, str]:
    """A palette colour per classifier (A→Z), as the accuracy chart draws its bars."""
    return {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(sorted({str(r["classifier"]) for r in rows}))}


def _ticks(low: float, high: float, step: float) -> list[float]:
    first = math.ceil(low / step) * step
    return [first + k * step for k in range(int((high - first) / step + 1e-9) + 1)]


def _bar(run_id: str, row: dict[str, Any], label: str, colour: str, low: float, at: Any) -> dict[str, Any]:
    acc = 100 * _score(row)
    ci_low, ci_high = _score_ci(row)
    has_ci = not missing(ci_low) and not missing(ci_high)
    full = f"{row['classifier']} · {row['variant_title']}" if row.get("variant_title") else label
    return {"id": run_id, "run": row["run"], "label": label, "colour": colour, "width": at(acc), "value": f"{acc:.1f}",
            "below": acc < low, "best": bool(row.get("best_in_group", row["best_in_dataset"])),
            "baseline": bool(row.get("baseline")),
            "ci": {"left": at(100 * ci_low), "width": round(at(100 * ci_high) - at(100 * ci_low), 2)} if has_ci else None,
            "title": f"{row['extractor']} · {full}: {acc:.2f}%" + (f" (95% CI {100 * ci_low:.1f}–{100 * ci_high:.1f})"
                                                                   if has_ci else "") + f" · run {row['run']}"}


def confusion_heatmap(confusion: dict[str, Any] | None) -> str | None:
    """Counts, coloured by row share (per-class recall); rows = true class, columns = predicted.

    Drawn as SVG text (no matplotlib figure: with one per run that was most of a big report's time,
    results/bench_report.md); the same Blues colours, counts in the cells up to 25 classes.
    """
    if not confusion or not confusion.get("labels"):
        return None
    from html import escape

    import numpy as np
    from matplotlib import colormaps, colors

    labels = [_short(x, 22) for x in map(str, confusion["labels"])]
    counts = np.asarray(confusion["matrix"], dtype=float)
    n = len(labels)
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fills = [[colors.to_hex(rgba) for rgba in row] for row in colormaps["Blues"](share)]
    cell = max(8.0, min(34.0, 560.0 / n))
    font = 11 if n <= 20 else 8 if n <= 50 else 6
    margin = 16 + 0.62 * font * max(len(x) for x in labels)
    left, top = margin + 18, 24.0
    size = cell * n
    width, height = left + size + 10, top + size + margin + 18
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
             f'viewBox="0 0 {width:.1f} {height:.1f}" font-family="DejaVu Sans, sans-serif" fill="#1f2328">',
             f'<rect width="100%" height="100%" fill="white"/>']
    for i in range(n):
        y = top + i * cell
        parts.append(f'<text x="{left - 4:.1f}" y="{y + cell / 2:.1f}" font-size="{font}" text-anchor="end" '
                     f'dominant-baseline="central">{escape(labels[i])}</text>')
        for j in range(n):
            x = left + j * cell
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{cell:.1f}" height="{cell:.1f}" fill="{fills[i][j]}"/>')
            if n <= 25 and (counts[i, j] or i == j):
                ink = "white" if share[i, j] > 0.55 else "#1f2328"
                parts.append(f'<text x="{x + cell / 2:.1f}" y="{y + cell / 2:.1f}" font-size="{min(font, 10)}" '
                             f'text-anchor="middle" dominant-baseline="central" fill="{ink}">{counts[i, j]:.0f}</text>')
    for j in range(n):
        x, y = left + j * cell + cell / 2, top + size + 6
        parts.append(f'<text x="{x:.1f}" y="{y:.1f}" font-size="{font}" text-anchor="end" dominant-baseline="central" '
                     f'transform="rotate(-45 {x:.1f} {y:.1f})">{escape(labels[j])}</text>')
    parts.append(f'<text x="{left + size / 2:.1f}" y="{height - 4:.1f}" font-size="11" text-anchor="middle">'
                 'predicted class</text>')
    parts.append(f'<text x="12" y="{top + size / 2:.1f}" font-size="11" text-anchor="middle" '
                 f'transform="rotate(-90 12 {top + size / 2:.1f})">true class</text>')
    parts.append("</svg>")
    return "data:image/svg+xml;base64," + base64.b64encode("".join(parts).encode("utf-8")).decode("ascii")


def per_class_accuracy(per_class: Iterable[dict[str, Any]] | None, mean: float | None = None) -> str | None:
    """Horizontal bars: per-class accuracy (= recall) with the F1 as a dot, in label order (SVG text,
    as :func:`confusion_heatmap`)."""
    rows = list(per_class or [])
    if not rows:
        return None
    from html import escape

    labels = [_short(r["label"], 30) for r in rows]
    recall = [100 * r["recall"] if not missing(r.get("recall")) else 0.0 for r in rows]
    f1 = [100 * r["f1"] if not missing(r.get("f1")) else None for r in rows]
    n = len(rows)
    font = 11 if n <= 30 else 8
    row_h = 16.0 if n <= 30 else 11.0
    left = 12 + 0.62 * font * max(len(x) for x in labels)
    plot_w, top = 300.0, 8.0
    height = top + n * row_h + 58
    width = left + plot_w + 16

    def x_of(value: float) -> float:
        return left + plot_w * max(0.0, min(100.0, value)) / 100

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
             f'viewBox="0 0 {width:.1f} {height:.1f}" font-family="DejaVu Sans, sans-serif" fill="#1f2328">',
             '<rect width="100%" height="100%" fill="white"/>']
    for tick in range(0, 101, 20):
        x = x_of(tick)
        parts.append(f'<line x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{top + n * row_h:.1f}" stroke="#dddddd"/>')
        parts.append(f'<text x="{x:.1f}" y="{top + n * row_h + 14:.1f}" font-size="10" '
                     f'text-anchor="middle">{tick}</text>')
    for k, (label, value, dot) in enumerate(zip(labels, recall, f1)):
        y = top + k * row_h
        parts.append(f'<text x="{left - 4:.1f}" y="{y + row_h / 2:.1f}" font-size="{font}" text-anchor="end" '
                     f'dominant-baseline="central">{escape(label)}</text>')
        parts.append(f'<rect x="{left:.1f}" y="{y + row_h * 0.15:.1f}" width="{x_of(value) - left:.1f}" '
                     f'height="{row_h * 0.7:.1f}" fill="{PALETTE[0]}" fill-opacity="0.9"/>')
        if dot is not None:
            parts.append(f'<circle cx="{x_of(dot):.1f}" cy="{y + row_h / 2:.1f}" r="3" fill="{PALETTE[1]}"/>')
    legend_y = top + n * row_h + 34
    if mean is not None and not missing(mean):
        x = x_of(100 * mean)
        parts.append(f'<line x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{top + n * row_h:.1f}" stroke="#444444" '
                     'stroke-dasharray="4 3"/>')
    legend = [(f'<rect x="{left:.1f}" y="{legend_y - 5:.1f}" width="10" height="10" fill="{PALETTE[0]}"/>',
               "accuracy (recall)"),
              (f'<circle cx="{left + 5:.1f}" cy="{legend_y:.1f}" r="3" fill="{PALETTE[1]}"/>', "F1")]
    if mean is not None and not missing(mean):
        legend.append((f'<line x1="{left:.1f}" y1="{legend_y:.1f}" x2="{left + 10:.1f}" y2="{legend_y:.1f}" '
                       'stroke="#444444" stroke-dasharray="4 3"/>', f"mean per class {100 * mean:.1f}%"))
    offset = 0.0
    for mark, text in legend:
        parts.append(f'<g transform="translate({offset:.1f} 0)">{mark}<text x="{left + 14:.1f}" y="{legend_y:.1f}" '
                     f'font-size="10" dominant-baseline="central">{escape(text)}</text></g>')
        offset += 24 + 6.2 * len(text)
    parts.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 4:.1f}" font-size="10" text-anchor="middle">%</text>')
    parts.append("</svg>")
    return "data:image/svg+xml;base64," + base64.b64encode("".join(parts).encode("utf-8")).decode("ascii")


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _swept_param(cv: dict[str, Any]) -> str | None:
    results = cv.get("results") or []
    param = cv.get("param")
    if param and any(param in r["params"] for r in results):
        return param
    varying = [k for k in dict.fromkeys(k for r in results for k in r["params"])
               if len({repr(r["params"].get(k)) for r in results}) > 1]
    return varying[0] if len(varying) == 1 else (varying[0] if varying else None)


def cv_curve(cv: dict[str, Any] | None, best_params: dict[str, Any] | None = None) -> str | None:
    """Mean CV score ± std vs the swept parameter (log x for C and friends); one line per setting of the others."""
    if not cv or not cv.get("results"):
        return None
    param = _swept_param(cv)
    results = [r for r in cv["results"] if param in r["params"] and not missing(r.get("mean_test_score"))]
    if not param or len(results) < 2:
        return None
    xs_raw = [r["params"][param] for r in results]
    numeric = all(_as_float(x) is not None for x in xs_raw)
    if numeric:
        values = [_as_float(x) for x in xs_raw]
        positive = all(v > 0 for v in values)
        log_x = positive and (param.rsplit("__", 1)[-1] in LOG_PARAMS or max(values) / min(values) >= 100)
        position = dict(zip(map(repr, xs_raw), values))
        order = sorted(set(values))
        categories = None
    else:
        categories = list(dict.fromkeys(repr(x) for x in xs_raw))
        position = {c: float(i) for i, c in enumerate(categories)}
        log_x = False
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        rest = {k: v for k, v in r["params"].items() if k != param}
        key = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(rest.items()))
        groups.setdefault(key, []).append(r)
    shown = list(groups.items())[:8]
    several = len(shown) > 1
    from html import escape

    # Drawn as SVG text (no matplotlib figure per run: results/bench_report.md).
    to_axis = (lambda v: math.log10(v)) if log_x else (lambda v: v)
    xs = [to_axis(position[repr(r["params"][param])]) for rows in groups.values() for r in rows]
    lows = [r["mean_test_score"] - (0.0 if missing(r.get("std_test_score")) else r["std_test_score"])
            for rows in groups.values() for r in rows]
    highs = [r["mean_test_score"] + (0.0 if missing(r.get("std_test_score")) else r["std_test_score"])
             for rows in groups.values() for r in rows]
    x_lo, x_hi = min(xs), max(xs)
    x_lo, x_hi = (x_lo - 0.5, x_hi + 0.5) if x_hi == x_lo else (x_lo - 0.05 * (x_hi - x_lo), x_hi + 0.05 * (x_hi - x_lo))
    y_lo, y_hi = min(lows), max(highs)
    pad = 0.08 * (y_hi - y_lo) if y_hi > y_lo else 0.01
    y_lo, y_hi = y_lo - pad, y_hi + pad
    left, top, plot_w, plot_h = 56.0, 22.0, 330.0, 190.0
    legend_rows = math.ceil(len(shown) / 2) if several else 0
    width, height = left + plot_w + 16, top + plot_h + 46 + 16 * legend_rows

    def px(value: float) -> float:
        return left + plot_w * (value - x_lo) / (x_hi - x_lo)

    def py(value: float) -> float:
        return top + plot_h * (1 - (value - y_lo) / (y_hi - y_lo))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
             f'viewBox="0 0 {width:.1f} {height:.1f}" font-family="DejaVu Sans, sans-serif" fill="#1f2328">',
             '<rect width="100%" height="100%" fill="white"/>',
             f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#cccccc"/>']
    for k in range(5):
        value = y_lo + (y_hi - y_lo) * k / 4
        parts.append(f'<text x="{left - 4:.1f}" y="{py(value):.1f}" font-size="9" text-anchor="end" '
                     f'dominant-baseline="central">{value:.3f}</text>')
    ticks = ([(to_axis(position[c]), _short(c.strip("'"), 14)) for c in categories] if categories is not None else
             [(to_axis(v), f"{v:g}") for v in order] if len(order) <= 12 else [])
    for value, text in ticks:
        parts.append(f'<text x="{px(value):.1f}" y="{top + plot_h + 13:.1f}" font-size="9" '
                     f'text-anchor="middle">{escape(text)}</text>')
    parts.append(f'<text x="{left + plot_w / 2:.1f}" y="{top + plot_h + 30:.1f}" font-size="10" text-anchor="middle">'
                 f'{escape(_short(param, 40) + (" (log scale)" if log_x else ""))}</text>')
    parts.append(f'<text x="12" y="{top + plot_h / 2:.1f}" font-size="10" text-anchor="middle" '
                 f'transform="rotate(-90 12 {top + plot_h / 2:.1f})">mean CV score (± std)</text>')
    if len(groups) > len(shown):
        parts.append(f'<text x="{left}" y="14" font-size="9">first {len(shown)} of {len(groups)} settings</text>')
    span = (x_hi - x_lo) or 1.0
    for i, (key, rows) in enumerate(shown):
        rows = sorted(rows, key=lambda r: position[repr(r["params"][param])])
        colour = PALETTE[i % len(PALETTE)]
        shift = (i - (len(shown) - 1) / 2) * 0.012 * span if several else 0.0
        pts = [(px(to_axis(position[repr(r["params"][param])]) + shift), r["mean_test_score"],
                0.0 if missing(r.get("std_test_score")) else r["std_test_score"], r) for r in rows]
        if not several:  # one setting: its ± std band (bands of several would cover each other)
            band = [f"{x:.1f},{py(m + d):.1f}" for x, m, d, _ in pts] + \
                   [f"{x:.1f},{py(m - d):.1f}" for x, m, d, _ in reversed(pts)]
            parts.append(f'<polygon points="{" ".join(band)}" fill="{colour}" fill-opacity="0.15"/>')
        else:
            for x, m, d, _ in pts:
                parts.append(f'<line x1="{x:.1f}" y1="{py(m - d):.1f}" x2="{x:.1f}" y2="{py(m + d):.1f}" '
                             f'stroke="{colour}" stroke-width="0.8"/>')
        parts.append(f'<polyline points="{" ".join(f"{x:.1f},{py(m):.1f}" for x, m, _, _ in pts)}" fill="none" '
                     f'stroke="{colour}" stroke-width="1.4"/>')
        for x, m, _, r in pts:
            parts.append(f'<circle cx="{x:.1f}" cy="{py(m):.1f}" r="2.6" fill="{colour}"/>')
            if best_params and all(best_params.get(k) == v for k, v in r["params"].items()):
                parts.append(f'<text x="{x:.1f}" y="{py(m):.1f}" font-size="16" text-anchor="middle" '
                             f'dominant-baseline="central" fill="#D55E00" stroke="white" stroke-width="0.6">★</text>')
        if several and key:
            lx = left + (i % 2) * plot_w / 2
            ly = top + plot_h + 46 + 16 * (i // 2)
            parts.append(f'<line x1="{lx:.1f}" y1="{ly:.1f}" x2="{lx + 14:.1f}" y2="{ly:.1f}" stroke="{colour}" '
                         f'stroke-width="2"/><text x="{lx + 18:.1f}" y="{ly:.1f}" font-size="9" '
                         f'dominant-baseline="central">{escape(_short(key, 40))}</text>')
    parts.append("</svg>")
    return "data:image/svg+xml;base64," + base64.b64encode("".join(parts).encode("utf-8")).decode("ascii")
