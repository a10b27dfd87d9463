"""Like with like: runs grouped by (dataset, test-row set), ranked within their group, compared with a paired test.

A run's test-row set is its ``test_rows_digest`` (``metrics.json``: the sorted stored paths + label
names of the rows it scored, see :func:`featurebench.fit.record.test_rows_digest`). Records made
before featurebench wrote one get it derived from their ``probabilities.npz`` / ``predictions.csv``;
when neither exists the set is *inferred* from the record (split kind, seed, row counts) and the
group says so. Each dataset's **main group** is the group on the stored split over the whole file
(the one most runs share); its best run is the dataset's headline. Every other group (excluded or
audited test rows, stratified or repeated splits, a separate test file) is ranked on its own and
labelled with how its test rows differ.

Within a group, every run is compared with the group's best:

- one split each: McNemar's exact test on per-image correctness (the discordant pairs ``b``, ``c``;
  two-sided binomial test of ``b`` out of ``b + c`` at 1/2, :func:`scipy.stats.binomtest`);
- repeated splits (``fit --repeats``, the same seeds, hence the same splits): the per-split accuracy
  differences, their mean ± std and a paired t-test (:func:`scipy.stats.ttest_rel`).

A difference with p >= :data:`ALPHA` is marked not significant.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from featurebench.report.collect import Run

#: Significance level of the paired tests.
ALPHA = 0.05
#: ``test_set.kind`` of the stored split over the whole feature file (fit.record.STORED_SPLIT).
STORED = "stored"
#: Kinds whose runs report another metric than test accuracy (never the headline).
AUDITED = "audited"


@dataclass
class Group:
    """Runs of one dataset scored on one test-row set."""

    dataset: str
    key: tuple
    kind: str
    description: str
    n_test: int | None
    verified: bool
    rows: list[dict[str, Any]] = field(default_factory=list)
    main: bool = False

    def label(self, main: "Group | None") -> str:
        """What the group's runs were scored on, and how that differs from the main group."""
        images = f"{self.n_test} test images" if self.n_test is not None else "test images unknown"
        text = f"{self.description} · {images}"
        if not self.verified:
            text += " · test rows inferred from the run records (no digest: made before featurebench recorded one)"
        if self.main:
            return f"main group: {text}"
        if self.kind == AUDITED:
            return f"{text} · accuracy on audited test rows, not test accuracy: not comparable with the other groups"
        if main is not None:
            return f"{text} · other test rows than the main group ({main.description}, {main.n_test} images): " \
                   "not ranked with it"
        return text


# --- test rows and per-image correctness of a run --------------------------------------------------

def _probabilities(run: Run) -> dict[str, Any] | None:
    from featurebench.fit.record import PROBABILITIES_FILE, read_probabilities

    path = run.path / PROBABILITIES_FILE
    if not path.is_file():
        return None
    try:
        return read_probabilities(path)
    except (OSError, ValueError, KeyError):
        return None


def _predictions(run: Run) -> list[dict[str, str]] | None:
    from featurebench.fit.exclude import PREDICTIONS_FILE

    path = run.path / PREDICTIONS_FILE
    if not path.is_file():
        return None
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    return rows if rows and {"path", "true", "predicted"} <= set(rows[0]) and all(r["path"] for r in rows) else None


def correctness(run: Run) -> dict[str, bool] | None:
    """Whether the run classified each test image right, by stored path (``None``: no per-image file).

    From ``probabilities.npz`` (top-scored class, ties to the lower index, as fit scores it), else
    ``predictions.csv``."""
    proba = _probabilities(run)
    if proba is not None and len(proba["paths"]) == len(proba["y_true"]):
        right = np.argmax(proba["scores"], axis=1) == proba["y_true"] if len(proba["y_true"]) else []
        return dict(zip(proba["paths"], map(bool, right)))
    rows = _predictions(run)
    if rows is not None:
        return {r["path"]: r["true"] == r["predicted"] for r in rows}
    return None


def _derived_digest(run: Run) -> str | None:
    from featurebench.fit.record import test_rows_digest

    proba = _probabilities(run)
    if proba is not None and len(proba["paths"]) == len(proba["y_true"]) and all(proba["paths"]):
        return test_rows_digest(proba["paths"], proba["y_true"], proba["label_names"])
    rows = _predictions(run)
    if rows is not None:
        names = sorted({r["true"] for r in rows})
        return test_rows_digest([r["path"] for r in rows], [names.index(r["true"]) for r in rows], names)
    return None


def _legacy_kind(m: dict[str, Any]) -> tuple[str, str]:
    detail = m.get("split_detail") if isinstance(m.get("split_detail"), dict) else {}
    repeats = m.get("repeats") if isinstance(m.get("repeats"), dict) else None
    if repeats and repeats.get("seeds"):
        seeds = repeats["seeds"]
        return "repeats", f"{repeats.get('n')} stratified splits (seeds {seeds[0]}..{seeds[-1]})"
    if m.get("split") == "test-file":
        return "test-file", f"test file {Path(str(m.get('test_feature_file') or '?')).name}"
    if m.get("split") == "stratified":
        return "stratified", f"stratified split (seed {m.get('seed')})"
    if detail.get("excluded_rows"):
        return "excluded", f"stored split minus excluded rows ({Path(str(detail.get('exclude_file') or '?')).name})"
    return STORED, "stored split"


def test_rows_key(run: Run) -> tuple[tuple, str, str, bool]:
    """``(key, kind, description, verified)`` of the run's test-row set.

    ``key`` is ``("digest", digest)`` when the record (or its per-image file) identifies the rows, else
    an inferred ``("inferred", ...)`` tuple of what the record says about its split."""
    m = run.metrics
    test_set = m.get("test_set") if isinstance(m.get("test_set"), dict) else {}
    kind, description = (str(test_set.get("kind")), str(test_set.get("description"))) if test_set.get("kind") \
        else _legacy_kind(m)
    digest = m.get("test_rows_digest") if isinstance(m.get("test_rows_digest"), str) else None
    if digest is None and not m.get("repeats"):
        digest = _derived_digest(run)
    if digest is not None:
        return ("digest", digest), kind, description, True
    p = m.get("provenance") if isinstance(m.get("provenance"), dict) else {}
    repeats = m.get("repeats") if isinstance(m.get("repeats"), dict) else {}
    key = ("inferred", kind, m.get("split"), m.get("n_test"), str(p.get("source")), p.get("seed"), p.get("split_index"),
           p.get("n_rows"),
           str(m.get("test_feature_file")), str((m.get("split_detail") or {}).get("exclude_file")),
           tuple(repeats.get("seeds") or ()), m.get("seed") if kind in ("stratified", "repeats") else None)
    return key, kind, description, False


# --- scores and the paired tests ---------------------------------------------------------------------

def run_score(m: dict[str, Any]) -> tuple[float, float | None, list[float] | None]:
    """``(score, std, ci)``: what ranks a run. A ``--repeats`` run ranks by its mean accuracy over the
    splits (std and the mean's 95% CI); any other run by its accuracy (no std; bootstrap CI)."""
    repeats = m.get("repeats") if isinstance(m.get("repeats"), dict) else None
    if repeats and isinstance(repeats.get("accuracy_mean"), (int, float)):
        ci = repeats.get("accuracy_mean_ci95")
        if not (isinstance(ci, list) and len(ci) == 2):
            ci = _mean_ci([s.get("accuracy") for s in repeats.get("splits") or [] if isinstance(s, dict)])
        return float(repeats["accuracy_mean"]), repeats.get("accuracy_std"), ci
    return float(m["accuracy"]), None, m.get("accuracy_ci95")


def _mean_ci(values: list[Any]) -> list[float] | None:
    from featurebench.fit.metrics import mean_ci95

    return mean_ci95([float(v) for v in values if isinstance(v, (int, float))])


def mcnemar_exact(best: dict[str, bool], other: dict[str, bool]) -> dict[str, Any] | None:
    """McNemar's exact test of two runs on the same images: ``b`` = images only ``best`` got right,
    ``c`` = images only ``other`` got right, p = two-sided binomial test of ``b`` in ``b + c`` at 1/2
    (1.0 when no image is discordant). ``None`` when the two do not cover the same images."""
    from scipy.stats import binomtest

    if set(best) != set(other) or not best:
        return None
    b = sum(1 for path, ok in best.items() if ok and not other[path])
    c = sum(1 for path, ok in best.items() if not ok and other[path])
    p = 1.0 if b + c == 0 else float(binomtest(b, b + c, 0.5, alternative="two-sided").pvalue)
    return {"test": "McNemar exact", "b": b, "c": c, "p_value": p}


def paired_splits(best: dict[str, Any], other: dict[str, Any]) -> dict[str, Any] | None:
    """Accuracy differences split by split (``other - best``) for two ``--repeats`` runs over the same
    splits (paired by seed and each split's test-row digest): mean, std, wins and a paired t-test."""
    from scipy.stats import ttest_rel

    def by_seed(m: dict[str, Any]) -> dict[Any, tuple[Any, float]]:
        splits = (m.get("repeats") or {}).get("splits") or []
        return {s.get("seed"): (s.get("test_rows_digest"), float(s["accuracy"])) for s in splits
                if isinstance(s, dict) and isinstance(s.get("accuracy"), (int, float))}

    a, b = by_seed(best), by_seed(other)
    seeds = [s for s in a if s in b and a[s][0] == b[s][0]]
    if len(seeds) < 2:
        return None
    x = np.array([a[s][1] for s in seeds])
    y = np.array([b[s][1] for s in seeds])
    diff = y - x
    if np.allclose(diff, diff[0]):  # a constant difference: t is undefined
        p = 1.0 if np.isclose(diff[0], 0.0) else 0.0
    else:
        p = float(ttest_rel(y, x).pvalue)
    return {"test": "paired t-test over splits", "n_splits": len(seeds), "mean_diff": float(diff.mean()),
            "std_diff": float(diff.std(ddof=1)), "wins": int((diff > 0).sum()), "losses": int((diff < 0).sum()),
            "p_value": p}


def _comparison_text(test: dict[str, Any]) -> str:
    p = test["p_value"]
    verdict = "significant" if p < ALPHA else "not significant"
    if test["test"] == "McNemar exact":
        return (f"McNemar exact p={p:.3g} ({verdict}; {test['b']} images only the best got right, "
                f"{test['c']} only this run)")
    return (f"paired over {test['n_splits']} splits: {100 * test['mean_diff']:+.2f} ± {100 * test['std_diff']:.2f} "
            f"points, better on {test['wins']} of {test['n_splits']}, t-test p={p:.3g} ({verdict})")


# --- grouping -------------------------------------------------------------------------------------------

def _sort_key(row: dict[str, Any]) -> tuple:
    def desc(value: Any) -> float:
        return math.inf if value is None or (isinstance(value, float) and math.isnan(value)) else -float(value)
    return desc(row["score"]), desc(row["macro_f1"]), row["run"]


def group_runs(pairs: list[tuple[Run, dict[str, Any]]]) -> list[Group]:
    """Set each row's group, rank within it, the dataset's best (main group only) and the comparison
    with its group's best; returns the groups in display order (per dataset: main group first)."""
    by_name = {run.name: run for run, _ in pairs}
    by_run_name = {str(run.metrics.get("run_name")): run for run, _ in pairs}
    keys: dict[str, tuple] = {}
    groups: dict[tuple, Group] = {}
    for run, row in pairs:
        key, kind, description, verified = test_rows_key(run)
        if key[0] == "inferred" and run.metrics.get("kind") == "ensemble":  # an old ensemble: its members' rows
            member = next((by_run_name.get(str(x.get("run_name"))) for x in run.metrics.get("members") or []
                           if isinstance(x, dict) and by_run_name.get(str(x.get("run_name")))), None)
            if member is not None and member.name in keys:
                key = keys[member.name][1]
        full = (row["dataset"], key)
        keys[run.name] = full
        row["score"], row["score_std"], ci = run_score(run.metrics)
        row["score_ci_low"], row["score_ci_high"] = ci if isinstance(ci, list) and len(ci) == 2 else (None, None)
        group = groups.setdefault(full, Group(row["dataset"], key, kind, description, row.get("n_test"), verified))
        group.rows.append(row)
    ordered: list[Group] = []
    for dataset in sorted({g.dataset for g in groups.values()}, key=lambda d: (str(d).casefold(), str(d))):
        mine = [g for g in groups.values() if g.dataset == dataset]
        stored = [g for g in mine if g.kind == STORED] or [g for g in mine if g.kind != AUDITED] or mine
        main = max(stored, key=lambda g: (len(g.rows), g.verified, g.n_test or 0))
        main.main = True
        rest = sorted((g for g in mine if g is not main), key=lambda g: (g.kind == AUDITED, g.description, -(g.n_test or 0)))
        ordered += [main, *rest]
        for index, group in enumerate([main, *rest]):
            group.rows.sort(key=_sort_key)
            label = group.label(main)
            for rank, row in enumerate(group.rows, 1):
                row.update(group=label, group_index=index, main_group=group.main, test_set=group.description,
                           test_set_kind=group.kind, rank_in_group=rank, rank_in_dataset=rank,
                           best_in_group=rank == 1, best_in_dataset=group.main and rank == 1,
                           group_start=rank == 1)
    _compare(ordered, by_name)
    return ordered


def _compare(groups: list[Group], by_name: dict[str, Run]) -> None:
    for group in groups:
        best = group.rows[0]
        best_run = by_name[best["run"]]
        best_correct = None
        for row in group.rows:
            row.update(delta_to_best=None, p_value=None, significant=None, comparison="")
        for row in group.rows[1:]:
            row["delta_to_best"] = row["score"] - best["score"]
            run = by_name[row["run"]]
            if run.metrics.get("repeats") and best_run.metrics.get("repeats"):
                test = paired_splits(best_run.metrics, run.metrics)
            elif not group.verified or run.metrics.get("repeats") or best_run.metrics.get("repeats"):
                test = None
            else:
                if best_correct is None:
                    best_correct = correctness(best_run) or {}
                other = correctness(run)
                test = mcnemar_exact(best_correct, other) if other is not None else None
            if test is None:
                row["comparison"] = "no paired test (no per-image predictions for both runs)"
                continue
            row["p_value"] = test["p_value"]
            row["significant"] = test["p_value"] < ALPHA
            row["comparison"] = _comparison_text(test)


__all__ = ["ALPHA", "Group", "correctness", "group_runs", "mcnemar_exact", "paired_splits", "run_score",
           "test_rows_key"]
