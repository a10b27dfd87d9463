"""Display formatting shared by the Markdown and HTML reports (plain text; escaping happens later)."""

from __future__ import annotations

import json
import math
from typing import Any

BLANK = "—"


def missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def pct(value: Any, digits: int = 2) -> str:
    """0.97333 -> '97.33' (the column header carries the %)."""
    return BLANK if missing(value) else f"{100 * float(value):.{digits}f}"


def ci(low: Any, high: Any, digits: int = 1) -> str:
    if missing(low) or missing(high):
        return ""
    return f"[{100 * float(low):.{digits}f}–{100 * float(high):.{digits}f}]"


def seconds(value: Any) -> str:
    if missing(value):
        return BLANK
    value = float(value)
    if value < 0.01:
        return "<0.01"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:,.0f}"


def rate(value: Any) -> str:
    return BLANK if missing(value) else f"{float(value):,.1f}"


def integer(value: Any) -> str:
    return BLANK if missing(value) else f"{int(value):,}"


def size(value: Any) -> str:
    """Bytes in decimal units: 409_800_000 -> '409.8 MB'."""
    if missing(value):
        return BLANK
    value = float(value)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return BLANK  # unreachable


def params(value: Any) -> str:
    """{'C': 0.1} -> 'C=0.1'."""
    if missing(value) or value == {}:
        return BLANK
    if isinstance(value, dict):
        return ", ".join(f"{k}={_scalar(v)}" for k, v in value.items())
    return _scalar(value)


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return f"{value:g}"
    return json.dumps(value, default=str)


def any_value(value: Any) -> str:
    """A provenance / version value as one readable string."""
    if missing(value) or value == "":
        return BLANK
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str, ensure_ascii=False)
    return _scalar(value)


def repeats(value: Any) -> str:
    """``--repeats``: "94.12 ± 1.05 % over 5 splits (seeds 42..46)", or "" for a single split."""
    if not isinstance(value, dict) or missing(value.get("accuracy_mean")):
        return ""
    seeds = value.get("seeds") or []
    where = f" (seeds {seeds[0]}..{seeds[-1]})" if seeds else ""
    return f"{pct(value['accuracy_mean'])} ± {pct(value.get('accuracy_std'))} % over {value.get('n')} splits{where}"


def budget(value: Any) -> str:
    """``--time-budget``: "budget 60 s: 12 of 30 fits skipped", or "" when nothing was skipped."""
    if not isinstance(value, dict) or not value.get("fits_skipped"):
        return ""
    return (f"budget {any_value(value.get('seconds'))} s: {value['fits_skipped']} of "
            f"{value.get('fits_planned')} fits skipped")


def score(row: dict[str, Any]) -> str:
    """A leaderboard row's score: '95.78 ± 1.05' for a repeated-split run (mean ± std), else '94.12'."""
    if not missing(row.get("score_std")):
        return f"{pct(row['score'])} ± {pct(row['score_std'])}"
    return pct(row.get("score", row.get("accuracy")))


def splits_note(row: dict[str, Any]) -> str:
    """'mean of 3 splits, seeds 42..44; first split 96.18' for a repeated run, '' otherwise."""
    if (row.get("repeats") or 1) <= 1:
        return ""
    text = row.get("_repeats_text") or ""
    where = text[text.index("(seeds") + 1:-1] if "(seeds" in text else ""
    return f"mean of {row['repeats']} splits{', ' + where if where else ''}; first split {pct(row['accuracy'])}"


def versus(row: dict[str, Any]) -> str:
    """'−0.29 pts, p=0.62 n.s.' (difference to the group's best and its paired test), or ''."""
    if missing(row.get("delta_to_best")):
        return ""
    delta = f"{100 * float(row['delta_to_best']):+.2f} pts"
    if missing(row.get("p_value")):
        return f"{delta}, no paired test"
    verdict = "" if row.get("significant") else " n.s."
    return f"{delta}, p={float(row['p_value']):.2g}{verdict}"
