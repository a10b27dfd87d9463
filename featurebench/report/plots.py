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
    colour = {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(settings)}
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
                           alpha=0.45 if r.get("baseline") else 0.95, hatch="///" if r.get("baseline") else None,
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
        handles = [_patch(colour[c]) for c in settings]
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


def _patch(colour: str):
    from matplotlib.patches import Patch

    return Patch(facecolor=colour, edgecolor="none")


def confusion_heatmap(confusion: dict[str, Any] | None) -> str | None:
    """Counts, coloured by row share (per-class recall); rows = true class, columns = predicted."""
    if not confusion or not confusion.get("labels"):
        return None
    import numpy as np

    labels = [str(x) for x in confusion["labels"]]
    counts = np.asarray(confusion["matrix"], dtype=float)
    n = len(labels)
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    side = min(11.0, max(3.3, 1.5 + 0.4 * n))
    tick_size = 8 if n <= 20 else 6 if n <= 50 else 4
    with _rc():
        fig = _figure(side + 0.9, side)
        ax = fig.subplots()
        image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1, aspect="equal", interpolation="nearest")
        ax.grid(False)
        ax.set_xticks(range(n))
        ax.set_yticks(range(n))
        tilt = n > 3 or max(len(x) for x in labels) > 8
        ax.set_xticklabels([_short(x, 22) for x in labels], rotation=45 if tilt else 0,
                           ha="right" if tilt else "center", rotation_mode="anchor", fontsize=tick_size)
        ax.set_yticklabels([_short(x, 22) for x in labels], fontsize=tick_size)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        for spine in ax.spines.values():
            spine.set_visible(False)
        if n <= 25:
            for i in range(n):
                for j in range(n):
                    value = counts[i, j]
                    if value == 0 and i != j:
                        continue
                    ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=8 if n <= 12 else 6,
                            color="white" if share[i, j] > 0.55 else "#1f2328")
        bar = fig.colorbar(image, ax=ax, shrink=0.75, pad=0.02)
        bar.set_label("share of true class")
        bar.outline.set_visible(False)
        return _data_uri(fig)


def per_class_accuracy(per_class: Iterable[dict[str, Any]] | None, mean: float | None = None) -> str | None:
    """Horizontal bars: per-class accuracy (= recall) with the F1 as a dot, in label order."""
    rows = list(per_class or [])
    if not rows:
        return None
    labels = [_short(r["label"], 30) for r in rows]
    recall = [100 * r["recall"] if not missing(r.get("recall")) else 0.0 for r in rows]
    f1 = [100 * r["f1"] if not missing(r.get("f1")) else float("nan") for r in rows]
    n = len(rows)
    with _rc():
        fig = _figure(4.4, min(30.0, max(3.0, 1.0 + 0.24 * n)))
        ax = fig.subplots()
        y = list(range(n))
        ax.barh(y, recall, height=0.7 if n > 4 else 0.5, color=PALETTE[0], alpha=0.9, label="accuracy (recall)")
        ax.plot(f1, y, "o", color=PALETTE[1], markersize=4, label="F1")
        if mean is not None and not missing(mean):
            ax.axvline(100 * mean, color="#444444", linestyle="--", linewidth=1, label=f"mean per class {100 * mean:.1f}%")
        ax.set_yticks(y)
        ax.set_yticklabels(labels, fontsize=8 if n <= 30 else 6)
        ax.invert_yaxis()
        ax.set_xlim(0, 100)
        ax.set_xlabel("%")
        ax.grid(axis="y", visible=False)
        fig.legend(loc="outside lower center", ncols=3, fontsize=7)
        return _data_uri(fig)


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
    with _rc():
        fig = _figure(4.4, 3.1 + (0.18 * math.ceil(len(shown) / 2) if several else 0))
        ax = fig.subplots()
        for i, (key, rows) in enumerate(shown):
            rows = sorted(rows, key=lambda r: position[repr(r["params"][param])])
            x = [position[repr(r["params"][param])] for r in rows]
            mean = [r["mean_test_score"] for r in rows]
            std = [0.0 if missing(r.get("std_test_score")) else r["std_test_score"] for r in rows]
            c = PALETTE[i % len(PALETTE)]
            if several:
                # One line per setting, each its own marker; ± std as thin error bars nudged sideways
                # (bands of several settings would cover each other).
                shift = (i - (len(shown) - 1) / 2) * 0.03
                x_drawn = [v * 10 ** shift for v in x] if log_x else [v + shift * (max(x) - min(x) or 1) for v in x]
                ax.errorbar(x_drawn, mean, yerr=std, fmt=_MARKERS[i % len(_MARKERS)] + "-", color=c, markersize=4,
                            linewidth=1.3, elinewidth=0.8, capsize=2, label=_short(key, 40) if key else None)
            else:
                x_drawn = x
                ax.plot(x, mean, "o-", color=c, markersize=4, linewidth=1.5, label=_short(key, 40) if key else None)
                ax.fill_between(x, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)], color=c,
                                alpha=0.15, linewidth=0)
            for r, drawn in zip(rows, x_drawn):
                if best_params and all(best_params.get(k) == v for k, v in r["params"].items()):
                    ax.plot(drawn, r["mean_test_score"], "*", color="#D55E00",
                            markersize=13, markeredgecolor="white", zorder=5, label="chosen")
        if log_x:
            ax.set_xscale("log")
            ax.minorticks_off()
            if len(order) <= 12:
                ax.set_xticks(order)
                ax.set_xticklabels([f"{v:g}" for v in order])
        if categories is not None:
            ax.set_xticks(range(len(categories)))
            ax.set_xticklabels([_short(c.strip("'"), 14) for c in categories])
        elif numeric and not log_x and len(order) <= 10:
            ax.set_xticks(order)
        ax.set_xlabel(_short(param, 40) + (" (log scale)" if log_x else ""))
        ax.set_ylabel("mean CV score (± std)")
        if several:
            fig.legend(fontsize=7, loc="outside lower center", ncols=2)
        elif best_params:
            ax.legend(fontsize=7, loc="best")
        if len(groups) > len(shown):
            ax.set_title(f"first {len(shown)} of {len(groups)} settings", loc="left", fontsize=8, fontweight="normal")
        return _data_uri(fig)
