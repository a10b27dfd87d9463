"""Static plots for the report: matplotlib figures rendered to PNG and returned as ``data:`` URIs.

matplotlib is imported inside the functions (the package imports fast) and used without pyplot:
each figure is a bare ``Figure`` on an Agg canvas, so no global backend is switched and nothing
leaks between figures. Labels are drawn as pixels, so hostile class names cannot inject markup;
every label passes through :func:`_short`, which escapes ``$`` so mathtext never parses a name.
"""

from __future__ import annotations

import base64
import io
import math
import warnings
from typing import Any, Iterable, Sequence

from featurebench.report.formatting import missing

#: Colour-blind-friendly palette (Okabe–Ito, reordered), one colour per classifier.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
#: Hatches that tell apart bar settings once the palette's colours are used up ("///" marks baselines).
_SETTING_HATCHES = ("", "....", "xxxx", "----", "||||", "++++", "oooo")
#: Marker per line when a plot has several (colour is not the only cue).
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<")
#: Parameters searched on a log scale.
LOG_PARAMS = {"C", "alpha", "gamma", "learning_rate", "reg_alpha", "reg_lambda", "tol", "eta", "lr"}

_RC = {
    "font.size": 9, "axes.titlesize": 10, "axes.titleweight": "bold", "axes.labelsize": 9,
    "axes.spines.top": False, "axes.spines.right": False, "axes.edgecolor": "#888888",
    "axes.grid": True, "grid.color": "#e3e6ea", "grid.linewidth": 0.8, "axes.axisbelow": True,
    "xtick.color": "#333333", "ytick.color": "#333333", "text.color": "#1f2328", "axes.labelcolor": "#1f2328",
    "legend.frameon": False, "figure.dpi": 100, "savefig.dpi": 110,
}


def _figure(width: float, height: float):
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _data_uri(fig) -> str:
    import matplotlib

    buf = io.BytesIO()
    with matplotlib.rc_context(_RC), warnings.catch_warnings():
        # a class name in a script the font lacks is drawn as boxes; the HTML tables carry the real text
        warnings.filterwarnings("ignore", message="Glyph .* missing from", category=UserWarning)
        fig.savefig(buf, format="png", facecolor="white")
    return "data:image/png;base64," + base64.b64encode(_palette_png(buf.getvalue())).decode("ascii")


def _palette_png(png: bytes) -> bytes:
    """Re-encode as a 256-colour palette PNG: charts look the same and the report is ~4x smaller."""
    try:
        from PIL import Image
    except ImportError:  # Pillow is a dependency, but the plain PNG is fine too
        return png
    image = Image.open(io.BytesIO(png)).convert("RGB")
    out = io.BytesIO()
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(out, format="PNG", optimize=True)
    return out.getvalue() if out.tell() < len(png) else png


def _rc():
    import matplotlib

    return matplotlib.rc_context(_RC)


def _short(text: str, limit: int = 28) -> str:
    """A user-supplied label, shortened, with ``$`` escaped so mathtext draws it literally."""
    text = " ".join(str(text).split())
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.replace("$", r"\$")


def bar_axis(rows: Sequence[dict[str, Any]]) -> tuple[float, float]:
    """The y range (%) of one dataset's accuracy panel: zoomed to the accuracies and 95% CIs of its runs
    (baselines left out when there are others, so 98.4 vs 98.8 stays visible), with a margin and room for
    the value labels; it starts at 0 only when the data reach it."""
    kept = [r for r in rows if not r.get("baseline")] or list(rows)
    values = []
    for r in kept:
        values.append(100 * _score(r))
        values += [100 * v for v in _score_ci(r) if not missing(v)]
    low, high = min(values), max(values)
    pad = max(1.0, 0.08 * (high - low))
    step = 5.0 if high - low > 10 else 1.0
    low = max(0.0, math.floor((low - pad) / step) * step)
    top = min(100.0, high + pad)
    return low, top + 0.12 * (top - low)


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


def accuracy_bars(rows: Sequence[dict[str, Any]], baselines: dict[str, dict[str, Any]] | None = None) -> str | None:
    """Test accuracy of every run, one panel per dataset, one bar per run, CI as error bars.

    ``rows`` are leaderboard rows (see :func:`featurebench.report.tables.leaderboard_rows`): bars are
    grouped by extractor and coloured by classifier setting (classifier plus the run's ``variant``), so
    two runs that differ only in a setting both appear. Each panel's axis is zoomed to its data
    (:func:`bar_axis`). Random-init baselines are hatched; the best run of each dataset is outlined;
    ``baselines`` (dataset -> best baseline row) are drawn as a dashed line.
    """
    from featurebench.report.tables import setting_label

    if not rows:
        return None
    baselines = baselines or {}
    datasets = list(dict.fromkeys(_panel(r) for r in rows))
    settings = sorted({setting_label(r) for r in rows})
    style = setting_styles(settings)
    colour = {c: fill for c, (fill, _) in style.items()}
    ncols = min(3, len(datasets))
    nrows = math.ceil(len(datasets) / ncols)
    per_dataset = [[r for r in rows if _panel(r) == d] for d in datasets]
    # Each extractor's group needs room for its bars and for its (wrapped) name under them.
    panel_w = max(3.2, max(0.9 + sum(max(1.25, 0.3 * sum(1 for r in sub if (r["extractor"], r["random_init"]) == ext))
                                     for ext in {(r["extractor"], r["random_init"]) for r in sub})
                           for sub in per_dataset))
    with _rc():
        legend_w = 1.9 * min(4, len(settings))  # inches the legend's widest row needs
        fig = _figure(min(16.0, max(panel_w * ncols, legend_w)), 2.9 * nrows + 0.4 + 0.22 * math.ceil(len(settings) / 4))
        axes = fig.subplots(nrows, ncols, squeeze=False)
        for ax in axes.flat[len(datasets):]:
            ax.set_visible(False)
        for ax, panel in zip(axes.flat, datasets):
            sub = [r for r in rows if _panel(r) == panel]
            dataset = panel[0]
            low, high = bar_axis(sub)
            lift = 0.015 * (high - low)
            extractors = list(dict.fromkeys((r["extractor"], r["random_init"]) for r in sorted(sub, key=lambda r: (r["random_init"], r["extractor"]))))
            # One bar per run (variants are labelled apart by tables.leaderboard_rows), packed per extractor.
            groups = [sorted((r for r in sub if (r["extractor"], r["random_init"]) == ext), key=setting_label)
                      for ext in extractors]
            width = 0.8 / max(len(g) for g in groups)
            for i, group in enumerate(groups):
                for j, r in enumerate(group):
                    x = i + width * (j - (len(group) - 1) / 2)
                    acc = 100 * _score(r)
                    ci_low, ci_high = _score_ci(r)
                    best = r.get("best_in_group", r["best_in_dataset"])
                    below = acc < low  # a baseline under the zoomed axis: drawn to the axis, value said
                    err = None
                    if not below and not missing(ci_low) and not missing(ci_high):
                        err = [[max(0.0, acc - 100 * ci_low)], [max(0.0, 100 * ci_high - acc)]]
                    ax.bar(x, max(acc, low) - low, width * 0.92, bottom=low, color=colour[setting_label(r)],
                           alpha=0.45 if r.get("baseline") else 0.95,
                           hatch="///" if r.get("baseline") else style[setting_label(r)][1] or None,
                           edgecolor="#1f2328" if best else "white", linewidth=1.6 if best else 0.5)
                    if err is not None:
                        ax.errorbar(x, acc, yerr=err, fmt="none", ecolor="#444444", elinewidth=0.9, capsize=2)
                    top = max(acc, low) if err is None else 100 * ci_high
                    ax.text(x, top + lift, f"{acc:.1f}" + (" ↓" if below else ""), ha="center", va="bottom",
                            fontsize=7, rotation=90 if max(len(g) for g in groups) > 3 else 0,
                            fontweight="bold" if best else "normal")
            if dataset in baselines and panel[1] == 0:
                base = 100 * _score(baselines[dataset])
                where = base if base >= low else low
                ax.axhline(where, color="#8a5a00", linestyle="--", linewidth=1)
                ax.text(-0.55, where + lift, f"baseline {base:.1f}" + (" (below the axis)" if base < low else ""),
                        ha="left", va="bottom", fontsize=7, color="#8a5a00", zorder=6,
                        bbox={"facecolor": "white", "edgecolor": "none", "pad": 1, "alpha": 0.85})
            ax.set_xticks(range(len(extractors)))
            ax.set_xticklabels([_wrap(e) + ("\n(random-init)" if rnd else "") for e, rnd in extractors], fontsize=8)
            ax.set_ylim(low, high)
            ax.set_xlim(-0.6, len(extractors) - 0.4)
            ax.grid(axis="x", visible=False)
            ax.set_title(_short(dataset, 40) + ("" if panel[1] == 0 else f" · other test rows ({_short(sub[0].get('test_set', ''), 40)})"),
                         loc="left", fontsize=None if panel[1] == 0 else 8)
            metric = "audited-rows accuracy %" if sub[0].get("test_set_kind") == "audited" else "test accuracy %"
            ax.set_ylabel(metric + (" (zoomed)" if low > 0 else ""))
        handles = [_patch(*style[c]) for c in settings]
        fig.legend(handles, [_short(c, 48) for c in settings], loc="outside upper center", ncols=min(4, len(settings)),
                   fontsize=8, title=None)
        return _data_uri(fig)


def _wrap(text: str, width: int = 16, lines: int = 2) -> str:
    """A tick label on up to ``lines`` lines of ``width`` characters, broken at ``_``/``-``/spaces."""
    import re
    import textwrap

    words = re.sub(r"([_\-])", r"\1 ", " ".join(str(text).split())).split(" ")
    wrapped = textwrap.wrap(" ".join(words), width, break_long_words=True)
    joined = [line.replace("_ ", "_").replace("- ", "-") for line in wrapped]
    if len(joined) > lines:
        joined = joined[: lines - 1] + [_short(" ".join(joined[lines - 1:]).replace(" ", ""), width)]
    return "\n".join(line.replace("$", r"\$") for line in joined)


def _patch(colour: str, hatch: str = ""):
    from matplotlib.patches import Patch

    return Patch(facecolor=colour, edgecolor="white" if hatch else "none", hatch=hatch or None)


def setting_styles(settings: Sequence[str]) -> dict[str, tuple[str, str]]:
    """A (colour, hatch) per bar setting, unique for up to 56 settings: the palette's 8 colours,
    then again with a hatch each round (colour is never the only cue twice)."""
    return {label: (PALETTE[i % len(PALETTE)], _SETTING_HATCHES[(i // len(PALETTE)) % len(_SETTING_HATCHES)])
            for i, label in enumerate(settings)}


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

    labels = [_short(x, 22).replace("\\$", "$") for x in map(str, confusion["labels"])]
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

    labels = [_short(r["label"], 30).replace("\\$", "$") for r in rows]
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
                         f'dominant-baseline="central">{escape(_short(key, 40).replace(chr(92) + "$", "$"))}</text>')
    parts.append("</svg>")
    return "data:image/svg+xml;base64," + base64.b64encode("".join(parts).encode("utf-8")).decode("ascii")
