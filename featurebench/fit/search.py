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
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from featurebench.errors import FeaturebenchError
from featurebench.fit.classifiers import get_classifier, make_estimator
from featurebench.fit.engine import prefixed, refit_params, run_candidates
from featurebench.fit.grids import Grid, check_grid, grid_size
from featurebench.fit.monitor import SearchMonitor

SCALES = ("none", "standard")
PROTOCOLS = ("grid", "probe")


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


def make_pipeline(estimator: Any, scale: str = "none", scaler: Any = None, pca: int | None = None,
                  seed: int = 42) -> Any:
    """``[scale ->] [pca ->] clf``: scaler and PCA sit inside, so they are fitted on train rows only
    (the fold's train rows during the search)."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    if scale not in SCALES:
        raise FeaturebenchError(f"--scale {scale!r}: choose one of {', '.join(SCALES)}")
    steps = []
    if scale == "standard":
        steps.append(("scale", scaler if scaler is not None else StandardScaler()))
    if pca:
        from sklearn.decomposition import PCA

        steps.append(("pca", PCA(n_components=int(pca), svd_solver="randomized", random_state=seed)))
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


def probe_folds(y: np.ndarray, cv: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Seeded, shuffled stratified k-fold of the train slice (plain shuffled k-fold when a class is too small)."""
    from sklearn.model_selection import KFold, StratifiedKFold

    if cv < 2:
        raise FeaturebenchError(f"--cv {cv}: needs at least 2 folds")
    if len(y) < cv:
        raise FeaturebenchError(f"--cv {cv}: only {len(y)} train rows")
    counts = np.bincount(y)
    splitter = StratifiedKFold if counts[counts > 0].min() >= cv else KFold
    return list(splitter(cv, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))


def plateau_choice(values: list[float], means: list[float], tol: float = 0.0) -> int:
    """The index of the value a probe picks: the middle of the best plateau.

    The plateau is the set of values whose mean score is within ``tol`` of the best; of its
    contiguous runs (in ascending value order) the longest wins (the first on a tie), and the
    middle of that run is chosen (the lower middle for an even length). NaN scores never qualify.
    """
    order = sorted(range(len(values)), key=lambda i: values[i])
    scores = np.array([means[i] for i in order], dtype=float)
    if np.all(np.isnan(scores)):
        raise FeaturebenchError("Every probe fit failed; no value of the sweep can be chosen.")
    top = np.nanmax(scores)
    good = np.nan_to_num(scores, nan=-np.inf) >= top - tol - 1e-12  # "within": float-safe
    best_start, best_length, start = 0, 0, None
    for i, flag in enumerate([*good, False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            if i - start > best_length:
                best_start, best_length = start, i - start
            start = None
    return order[best_start + (best_length - 1) // 2]


def probe_tolerance(n_rows: int) -> float:
    """Scores closer than one pooled validation row (each train row is validated once) are a tie."""
    return 1.0 / max(1, n_rows)


def _scoring(protocol: str) -> str:
    return "balanced_accuracy" if protocol == "probe" else "accuracy"


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


def _choose(rows: list[dict[str, Any]], protocol: str, n_rows: int, main: str | None) -> int:
    """Rank the rows (1 = best score, as GridSearchCV) and return the chosen row: the first of the
    best under ``grid``; under ``probe`` the middle of the best plateau along ``main`` (see
    :func:`plateau_choice`), among the rows that share the other parameters of the best row."""
    means = np.array([r["mean_test_score"] for r in rows], dtype=float)
    ranks = _rank(means)
    for row, rank in zip(rows, ranks):
        row["rank_test_score"] = int(rank)
    best = int(np.flatnonzero(ranks == 1)[0])
    if protocol == "probe" and main is not None:
        others = {k: v for k, v in rows[best]["params"].items() if k != main}
        line = [i for i, r in enumerate(rows) if main in r["params"]
                and {k: v for k, v in r["params"].items() if k != main} == others]
        if not all(isinstance(rows[i]["params"][main], (int, float)) for i in line):
            rows[best]["chosen"] = True  # a non-numeric sweep has no order, so no plateau
            return best
        pick = plateau_choice([float(rows[i]["params"][main]) for i in line], [means[i] for i in line],
                              probe_tolerance(n_rows))
        best = line[pick]
    rows[best]["chosen"] = True
    return best


def _path_search(X: np.ndarray, y: np.ndarray, grid: Grid, folds: list, scale: str, scoring: str,
                 protocol: str, workers: int, seed: int, monitor: SearchMonitor) -> SearchResult:
    from functools import partial

    from featurebench.fit import logreg_path
    from featurebench.fit.engine import score

    started = time.perf_counter()
    others = {k: v for k, v in grid.items() if k != "C"}
    combos = [dict(zip(others, values)) for values in itertools.product(*others.values())] or [{}]
    Cs = sorted(set(float(c) for c in grid["C"]))
    monitor.begin(len(combos) * len(Cs) * len(folds), {"candidates": len(combos) * len(Cs), "folds": len(folds)},
                  refit_factor=_refit_factor(y, folds))
    rows: list[dict[str, Any]] = []
    paths_by_combo = []
    for combo in combos:
        def make(combo=combo) -> Any:
            return make_estimator("logreg", seed, 1, **combo)
        paths = logreg_path.run_paths(make, X, y, folds, Cs, scale, partial(score, scoring), workers,
                                      monitor, combo)
        paths_by_combo.append(paths)
        for C in Cs:
            points = [next((p for p in path.points if p.C == C), None) for path in paths]
            row: dict[str, Any] = {"params": {**combo, "C": C}}
            if any(p is None for p in points):  # the time budget stopped this fold's path before C
                row.update(mean_test_score=float("nan"), std_test_score=float("nan"), skipped=True)
                rows.append(row)
                continue
            split_scores = np.array([p.score for p in points])
            row["mean_test_score"] = float(np.mean(split_scores))
            row["std_test_score"] = float(np.std(split_scores))
            for k, s in enumerate(split_scores):
                row[f"split{k}_test_score"] = float(s)
            row["mean_fit_time"] = float(np.mean([p.fit_seconds for p in points]))
            row["n_iter"] = int(max(p.n_iter for p in points))
            rows.append(row)
    search_seconds = time.perf_counter() - started
    if np.all(np.isnan([r["mean_test_score"] for r in rows])):
        raise FeaturebenchError("Every logistic-regression fit failed during the search (see the data's classes).")
    best_index = _choose(rows, protocol, len(y), "C")
    best = rows[best_index]["params"]
    combo_index = best_index // len(Cs)
    init = logreg_path.average_solution(paths_by_combo[combo_index], float(best["C"]))
    started = time.perf_counter()
    make = lambda: make_estimator("logreg", seed, 1, **combos[combo_index])  # noqa: E731
    scaler, estimator, n_iter = logreg_path.refit(make, X, y, float(best["C"]), scale, init)
    refit_seconds = time.perf_counter() - started
    monitor.refit_done(best, refit_seconds)
    return SearchResult(make_pipeline(estimator, scale, scaler), dict(best), rows, scoring,
                        "warm-started C path (centred lbfgs, threads over folds)", len(folds),
                        search_seconds, refit_seconds, {"refit_n_iter": n_iter})


def candidates_of(grid: Grid | list[Grid]) -> list[dict[str, Any]]:
    """Every parameter combination of ``grid``, in ``ParameterGrid`` order."""
    from sklearn.model_selection import ParameterGrid

    return list(ParameterGrid(grid))


def _gridsearch(clf: str, X: np.ndarray, y: np.ndarray, grid: Grid | list[Grid], folds: list, scale: str,
                pca: int | None, scoring: str, protocol: str, workers: int, seed: int,
                monitor: SearchMonitor) -> SearchResult:
    from featurebench.fit.grids import main_param
    from threadpoolctl import threadpool_limits

    # --n-jobs is the total: fits run in parallel, one thread each.
    pipeline = make_pipeline(make_estimator(clf, seed, 1), scale, pca=pca, seed=seed)
    candidates = candidates_of(grid)
    main = main_param(grid, get_classifier(clf).main_param)
    started = time.perf_counter()
    found: dict[str, Any] = {}
    if len(candidates) == 1:
        # Nothing to choose between: no cross-validation fits, only the fit on the train slice.
        monitor.begin(0, {"candidates": 1, "folds": 0, "only": candidates[0]}, refit_factor=1.0)
        rows = [{"params": dict(candidates[0]), "mean_test_score": float("nan"), "std_test_score": float("nan"),
                 "rank_test_score": 1, "chosen": True}]
        best, method = dict(candidates[0]), "single candidate (no search)"
    else:
        monitor.begin(len(candidates) * len(folds), {"candidates": len(candidates), "folds": len(folds)},
                      refit_factor=_refit_factor(y, folds))
        rows = run_candidates(pipeline, candidates, X, y, folds, scoring, workers, monitor)
        if np.all(np.isnan([r["mean_test_score"] for r in rows])):
            raise FeaturebenchError(f"Every --clf {clf} fit failed during the search; check the grid values.")
        chosen = rows[_choose(rows, protocol, len(y), main)]
        best, method = chosen["params"], "grid search (parallel (candidate, fold) fits)"
        found = refit_params(chosen)
    search_seconds = time.perf_counter() - started
    started = time.perf_counter()
    threads = get_classifier(clf).refit_threads or workers
    final = make_pipeline(make_estimator(clf, seed, threads), scale, pca=pca, seed=seed)
    final.set_params(**prefixed({**best, **found}))
    with threadpool_limits(limits=threads):
        final.fit(X, y)
    monitor.refit_done({**best, **found}, time.perf_counter() - started)
    _single_thread_for_prediction(final)
    return SearchResult(final, best, rows, scoring, method, len(folds) if len(candidates) > 1 else 0,
                        search_seconds, time.perf_counter() - started, {"refit_params": found} if found else {})


def _refit_factor(y: np.ndarray, folds: list) -> float:
    """How many search fits the refit is expected to cost: its rows over a fold's train rows."""
    return len(y) / max(1, min(len(train) for train, _ in folds))


def _single_thread_for_prediction(pipeline: Any) -> None:
    # Saved models should not carry "all cores" thread settings tied to this machine.
    clf = pipeline.named_steps["clf"]
    if "n_jobs" in clf.get_params(deep=False):
        clf.set_params(n_jobs=None)


def search(X: np.ndarray, y: np.ndarray, clf: str, grid: Grid | list[Grid], cv: int = 3, n_jobs: int | None = -1,
           scale: str = "none", protocol: str = "grid", seed: int = 42, pca: int | None = None,
           monitor: SearchMonitor | None = None) -> SearchResult:
    """Search ``grid`` for ``clf`` on the train rows ``X, y`` (encoded labels) and refit on all of them.

    ``protocol="grid"``: ``StratifiedKFold(cv)`` as GridSearchCV, best mean accuracy (first on ties).
    ``protocol="probe"``: seeded shuffled stratified ``cv``-fold, balanced accuracy, and the middle of
    the best plateau of the main parameter (:func:`plateau_choice`). ``pca``: a PCA step with that
    many components inside the pipeline. ``monitor``: progress and time budget (default: silent).
    """
    if protocol not in PROTOCOLS:
        raise FeaturebenchError(f"--protocol {protocol!r}: choose one of {', '.join(PROTOCOLS)}")
    if scale not in SCALES:
        raise FeaturebenchError(f"--scale {scale!r}: choose one of {', '.join(SCALES)}")
    spec = get_classifier(clf)
    check_grid(grid, make_estimator(spec.name, seed), spec.name)
    X = np.require(X, np.float32, "C")
    if pca is not None and not 1 <= int(pca) <= min(X.shape):
        raise FeaturebenchError(f"--pca {pca}: must be between 1 and {min(X.shape)} (rows and dims of the train slice)")
    folds = probe_folds(y, cv, seed) if protocol == "probe" else cv_folds(y, cv)
    notes: list[str] = []
    if spec.name == "knn":
        grid = _neighbours_for_folds(grid, min(len(train) for train, _ in folds), notes)
    scoring = _scoring(protocol)
    workers = effective_jobs(n_jobs)
    monitor = monitor if monitor is not None else SearchMonitor()
    monitor.workers = workers
    if _uses_path(spec.name, grid) and not pca:
        result = _path_search(X, y, grid, folds, scale, scoring, protocol, workers, seed,  # type: ignore[arg-type]
                              monitor)
    else:
        result = _gridsearch(spec.name, X, y, grid, folds, scale, pca, scoring, protocol, workers, seed, monitor)
    result.details.update(protocol=protocol, grid_size=grid_size(grid), n_jobs=workers, pca=pca,
                          selection="middle of the best plateau" if protocol == "probe" else "best mean score")
    if monitor.time_budget is not None:
        result.details["time_budget"] = monitor.summary()
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
