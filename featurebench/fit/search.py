"""Hyper-parameter search on the train slice only: k-fold CV (``grid``) or one held-out
validation part (``probe``), then a refit on the whole train slice.

Logistic regression over a C grid takes the fast exact path of
:mod:`featurebench.fit.logreg_path`; every other classifier goes through
``GridSearchCV`` with the optional scaler inside the pipeline (fitted on the
train folds only). Labels passed in are encoded ``0..K-1``.
"""

from __future__ import annotations

import itertools
import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from featurebench.errors import FeaturebenchError
from featurebench.fit.classifiers import get_classifier, make_estimator
from featurebench.fit.grids import Grid, check_grid, grid_size

SCALES = ("none", "standard")
PROTOCOLS = ("grid", "probe")
#: Share of the train slice held out for validation under ``--protocol probe``.
PROBE_VALIDATION_FRACTION = 0.2


@dataclass
class SearchResult:
    """A finished search: the refitted pipeline, the chosen parameters and the whole table."""

    estimator: Any
    best_params: dict[str, Any]
    table: list[dict[str, Any]]
    scoring: str
    method: str
    n_splits: int
    search_seconds: float
    refit_seconds: float
    details: dict[str, Any] = field(default_factory=dict)
    #: One-line notes for the user (e.g. grid points left out for the fold size).
    warnings: list[str] = field(default_factory=list)

    def best_row(self) -> dict[str, Any]:
        return next(row for row in self.table if row["rank_test_score"] == 1)


def effective_jobs(n_jobs: int | None) -> int:
    """``-1`` -> the cores this process may use; ``None`` -> 1."""
    if n_jobs is None:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores + 1 + n_jobs) if n_jobs < 0 else max(1, n_jobs)


def make_pipeline(estimator: Any, scale: str = "none", scaler: Any = None) -> Any:
    """``[scale ->] clf``: the scaler (if any) sits inside, so it is fitted on train rows only."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    if scale not in SCALES:
        raise FeaturebenchError(f"--scale {scale!r}: choose one of {', '.join(SCALES)}")
    steps = []
    if scale == "standard":
        steps.append(("scale", scaler if scaler is not None else StandardScaler()))
    steps.append(("clf", estimator))
    return Pipeline(steps)


def cv_folds(y: np.ndarray, cv: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``StratifiedKFold(cv)`` without shuffling (GridSearchCV's default for classifiers)."""
    from sklearn.model_selection import KFold, StratifiedKFold

    counts = np.bincount(y)
    if cv < 2:
        raise FeaturebenchError(f"--cv {cv}: needs at least 2 folds")
    if len(y) < cv:
        raise FeaturebenchError(f"--cv {cv}: only {len(y)} train rows")
    if counts[counts > 0].min() >= cv:
        return list(StratifiedKFold(cv).split(np.zeros(len(y)), y))
    # Some class has fewer rows than folds: StratifiedKFold would warn and misbehave.
    return list(KFold(cv, shuffle=True, random_state=0).split(np.zeros(len(y)), y))


def probe_folds(y: np.ndarray, seed: int, fraction: float = PROBE_VALIDATION_FRACTION
                ) -> list[tuple[np.ndarray, np.ndarray]]:
    """One seeded (stratified when possible) train/validation split of the train slice."""
    from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit

    counts = np.bincount(y)
    splitter = (StratifiedShuffleSplit if counts[counts > 0].min() >= 2 else ShuffleSplit)(
        n_splits=1, test_size=fraction, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), y))


def _scorer(protocol: str) -> tuple[str, Callable[[np.ndarray, np.ndarray], float]]:
    from sklearn.metrics import accuracy_score, balanced_accuracy_score

    if protocol == "probe":
        def balanced(y_true: np.ndarray, y_pred: np.ndarray) -> float:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return balanced_accuracy_score(y_true, y_pred)
        return "balanced_accuracy", balanced
    return "accuracy", accuracy_score


def _uses_path(clf: str, grid: Grid | list[Grid]) -> bool:
    if clf != "logreg" or isinstance(grid, list) or "C" not in grid:
        return False
    solvers = grid.get("solver", ["lbfgs"])
    return all(s in ("lbfgs", "newton-cg", "newton-cholesky", "sag", "saga") for s in solvers) \
        and not grid.get("warm_start")


def _rank(scores: np.ndarray) -> np.ndarray:
    """1 = best; ties share the lower rank, NaN last (as GridSearchCV)."""
    filled = np.where(np.isnan(scores), -np.inf, scores)
    order = np.argsort(-filled, kind="stable")
    ranks = np.empty(len(scores), dtype=int)
    ranks[order] = np.arange(1, len(scores) + 1)
    for value in np.unique(filled):
        same = filled == value
        ranks[same] = ranks[same].min()
    return ranks


def _path_search(X: np.ndarray, y: np.ndarray, grid: Grid, folds: list, scale: str, scorer, scoring: str,
                 workers: int, seed: int) -> SearchResult:
    from featurebench.fit import logreg_path

    started = time.perf_counter()
    others = {k: v for k, v in grid.items() if k != "C"}
    combos = [dict(zip(others, values)) for values in itertools.product(*others.values())] or [{}]
    Cs = [float(c) for c in grid["C"]]
    rows: list[dict[str, Any]] = []
    paths_by_combo = []
    for combo in combos:
        def make(combo=combo) -> Any:
            return make_estimator("logreg", seed, 1, **combo)
        paths = logreg_path.run_paths(make, X, y, folds, Cs, scale, scorer, workers)
        paths_by_combo.append(paths)
        for C in Cs:
            points = [next(p for p in path.points if p.C == C) for path in paths]
            split_scores = np.array([p.score for p in points])
            row: dict[str, Any] = {"params": {**combo, "C": C}}
            row["mean_test_score"] = float(np.mean(split_scores))
            row["std_test_score"] = float(np.std(split_scores))
            for k, s in enumerate(split_scores):
                row[f"split{k}_test_score"] = float(s)
            row["mean_fit_time"] = float(np.mean([p.fit_seconds for p in points]))
            row["n_iter"] = int(max(p.n_iter for p in points))
            rows.append(row)
    ranks = _rank(np.array([r["mean_test_score"] for r in rows]))
    for row, rank in zip(rows, ranks):
        row["rank_test_score"] = int(rank)
    search_seconds = time.perf_counter() - started
    if np.all(np.isnan([r["mean_test_score"] for r in rows])):
        raise FeaturebenchError("Every logistic-regression fit failed during the search (see the data's classes).")
    best_index = int(np.flatnonzero(ranks == 1)[0])
    best = rows[best_index]["params"]
    combo_index = best_index // len(Cs)
    init = logreg_path.average_solution(paths_by_combo[combo_index], float(best["C"]))
    started = time.perf_counter()
    make = lambda: make_estimator("logreg", seed, 1, **combos[combo_index])  # noqa: E731
    scaler, estimator, n_iter = logreg_path.refit(make, X, y, float(best["C"]), scale, init)
    refit_seconds = time.perf_counter() - started
    return SearchResult(make_pipeline(estimator, scale, scaler), dict(best), rows, scoring,
                        "warm-started C path (centred lbfgs, threads over folds)", len(folds),
                        search_seconds, refit_seconds, {"refit_n_iter": n_iter})


def _prefixed(grid: Grid | list[Grid]) -> Grid | list[Grid]:
    def one(part: Grid) -> Grid:
        return {k if "__" in k else f"clf__{k}": v for k, v in part.items()}
    return [one(p) for p in grid] if isinstance(grid, list) else one(grid)


def _unprefixed(params: dict[str, Any]) -> dict[str, Any]:
    return {k[5:] if k.startswith("clf__") else k: v for k, v in params.items()}


def _gridsearch(clf: str, X: np.ndarray, y: np.ndarray, grid: Grid | list[Grid], folds: list, scale: str,
                scoring: str, workers: int, seed: int) -> SearchResult:
    from sklearn.model_selection import GridSearchCV
    from threadpoolctl import threadpool_limits

    # --n-jobs is the total: fits run in parallel, one thread each (loky workers limit their own
    # BLAS/OpenMP; in-process we do it here).
    pipeline = make_pipeline(make_estimator(clf, seed, 1), scale)
    search = GridSearchCV(pipeline, _prefixed(grid), scoring=scoring, cv=folds, n_jobs=workers, refit=False,
                          error_score=np.nan, pre_dispatch="n_jobs")
    started = time.perf_counter()
    with warnings.catch_warnings(), threadpool_limits(limits=1 if workers == 1 else None):
        warnings.filterwarnings("ignore", message=".*fits failed.*")
        search.fit(X, y)
    search_seconds = time.perf_counter() - started
    results = search.cv_results_
    means = np.asarray(results["mean_test_score"], dtype=float)
    if np.all(np.isnan(means)):
        raise FeaturebenchError(f"Every --clf {clf} fit failed during the search; check the grid values.")
    rows = []
    for i, params in enumerate(results["params"]):
        row: dict[str, Any] = {"params": _unprefixed(params), "mean_test_score": float(means[i]),
                               "std_test_score": float(results["std_test_score"][i])}
        for k in range(len(folds)):
            row[f"split{k}_test_score"] = float(results[f"split{k}_test_score"][i])
        row["mean_fit_time"] = float(results["mean_fit_time"][i])
        rows.append(row)
    ranks = _rank(means)
    for row, rank in zip(rows, ranks):
        row["rank_test_score"] = int(rank)
    best_index = int(np.flatnonzero(ranks == 1)[0])
    best = rows[best_index]["params"]
    started = time.perf_counter()
    final = make_pipeline(make_estimator(clf, seed, workers), scale)
    final.set_params(**_prefixed(best))
    with threadpool_limits(limits=workers):
        final.fit(X, y)
    _single_thread_for_prediction(final)
    return SearchResult(final, best, rows, scoring, "GridSearchCV", len(folds), search_seconds,
                        time.perf_counter() - started)


def _single_thread_for_prediction(pipeline: Any) -> None:
    # Saved models should not carry "all cores" thread settings tied to this machine.
    clf = pipeline.named_steps["clf"]
    if "n_jobs" in clf.get_params(deep=False):
        clf.set_params(n_jobs=None)


def search(X: np.ndarray, y: np.ndarray, clf: str, grid: Grid | list[Grid], cv: int = 3, n_jobs: int | None = -1,
           scale: str = "none", protocol: str = "grid", seed: int = 42) -> SearchResult:
    """Search ``grid`` for ``clf`` on the train rows ``X, y`` (encoded labels) and refit on all of them."""
    if protocol not in PROTOCOLS:
        raise FeaturebenchError(f"--protocol {protocol!r}: choose one of {', '.join(PROTOCOLS)}")
    if scale not in SCALES:
        raise FeaturebenchError(f"--scale {scale!r}: choose one of {', '.join(SCALES)}")
    spec = get_classifier(clf)
    check_grid(grid, make_estimator(spec.name, seed), spec.name)
    X = np.require(X, np.float32, "C")
    folds = probe_folds(y, seed) if protocol == "probe" else cv_folds(y, cv)
    notes: list[str] = []
    if spec.name == "knn":
        grid = _neighbours_for_folds(grid, min(len(train) for train, _ in folds), notes)
    scoring, scorer = _scorer(protocol)
    workers = effective_jobs(n_jobs)
    if _uses_path(spec.name, grid):
        result = _path_search(X, y, grid, folds, scale, scorer, scoring, workers, seed)  # type: ignore[arg-type]
    else:
        result = _gridsearch(spec.name, X, y, grid, folds, scale, scoring, workers, seed)
    result.details.update(protocol=protocol, grid_size=grid_size(grid), n_jobs=workers,
                          validation_fraction=PROBE_VALIDATION_FRACTION if protocol == "probe" else None)
    result.warnings.extend(notes)
    return result


def _neighbours_for_folds(grid: Grid | list[Grid], fold_rows: int, notes: list[str]) -> Grid | list[Grid]:
    """knn: drop ``n_neighbors`` values larger than the smallest fold's train rows (sklearn
    would fail each such fit), keeping at least one value; say what was left out."""
    parts = grid if isinstance(grid, list) else [grid]
    fitted = []
    for part in parts:
        values = list(part.get("n_neighbors", []))
        kept = [k for k in values if isinstance(k, int) and k <= fold_rows] or ([fold_rows] if values else [])
        if kept != values:
            notes.append(f"knn: n_neighbors {[k for k in values if k not in kept]} left out of the grid: a fold "
                         f"has only {fold_rows} train rows" + ("" if set(kept) <= set(values) else
                                                                 f" (using n_neighbors={fold_rows})"))
        fitted.append({**part, "n_neighbors": kept} if values else part)
    return fitted if isinstance(grid, list) else fitted[0]
