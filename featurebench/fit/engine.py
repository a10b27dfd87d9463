"""The (candidate, fold) fits of a grid search, run in parallel with progress and a time budget.

The same work as ``GridSearchCV(refit=False, error_score=nan)`` on explicit
folds: every fit clones the pipeline, sets one candidate's parameters, fits the
fold's train rows with one BLAS/OpenMP thread and scores its validation rows.
Fits are launched one at a time, candidate by candidate, through joblib
(``return_as="generator_unordered"``), so each finished fit is reported as it
arrives and the :class:`~featurebench.fit.monitor.SearchMonitor` can stop
launching when the time budget would be exceeded. A candidate whose folds did
not all run is not ranked.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np

from featurebench.fit.monitor import SearchMonitor

#: Scorers by name (names, not functions, travel to the worker processes).
SCORINGS = ("accuracy", "balanced_accuracy")


def score(scoring: str, y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """``accuracy`` or ``balanced_accuracy`` of ``y_pred``."""
    from sklearn.metrics import accuracy_score, balanced_accuracy_score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if scoring == "balanced_accuracy":
            return float(balanced_accuracy_score(y_true, y_pred))
        return float(accuracy_score(y_true, y_pred))


def prefixed(params: dict[str, Any]) -> dict[str, Any]:
    """Estimator parameters as pipeline parameters (``C`` -> ``clf__C``)."""
    return {k if "__" in k else f"clf__{k}": v for k, v in params.items()}


def found_params(pipeline: Any) -> dict[str, Any]:
    """What a fitted pipeline's classifier chose by itself (e.g. early stopping's round count:
    ``found_params()`` of :class:`~featurebench.fit.boosting.EarlyStoppingXGBClassifier`), or ``{}``."""
    found = getattr(pipeline.steps[-1][1], "found_params", None)
    return found() if callable(found) else {}


def refit_params(row: dict[str, Any]) -> dict[str, Any]:
    """Parameters for the refit from what the chosen candidate's folds found: the median, rounded
    (``{"rounds": 56}`` from folds that stopped at 56, 194 and 52 rounds: one late fold does not
    double the refit); ``{}`` when nothing was found."""
    found = row.get("found_params") or []
    names = sorted({name for entry in found for name in entry})
    return {name: int(round(float(np.median([entry[name] for entry in found if name in entry])))) for name in names}


def _fit_and_score(pipeline: Any, params: dict[str, Any], X: np.ndarray, y: np.ndarray, train: np.ndarray,
                   val: np.ndarray, scoring: str, candidate: int,
                   fold: int) -> tuple[int, int, float, float, dict[str, Any]]:
    from sklearn.base import clone
    from threadpoolctl import threadpool_limits

    estimator = clone(pipeline).set_params(**prefixed(params))
    started = time.perf_counter()
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore")
        try:
            estimator.fit(X[train], y[train])
            value = score(scoring, y[val], estimator.predict(X[val]))
            found = found_params(estimator)
        except (ValueError, ArithmeticError, MemoryError):  # as error_score=nan: a bad grid point
            value, found = float("nan"), {}
    return candidate, fold, value, time.perf_counter() - started, found


def run_candidates(pipeline: Any, candidates: list[dict[str, Any]], X: np.ndarray, y: np.ndarray,
                   folds: list[tuple[np.ndarray, np.ndarray]], scoring: str, workers: int,
                   monitor: SearchMonitor, stage: str = "") -> list[dict[str, Any]]:
    """Fit and score every candidate on every fold; one row per candidate (GridSearchCV's columns).

    Rows of candidates that the budget cut short have ``mean_test_score`` NaN and ``skipped`` true.
    """
    from joblib import Parallel, delayed

    tasks = [(c, k) for c in range(len(candidates)) for k in range(len(folds))]
    scores = np.full((len(candidates), len(folds)), np.nan)
    seconds = np.zeros((len(candidates), len(folds)))
    ran = np.zeros((len(candidates), len(folds)), dtype=bool)
    found: list[list[dict[str, Any]]] = [[] for _ in candidates]

    def launch():
        for position, (c, k) in enumerate(tasks):
            if not monitor.allow(first_candidate=c == 0):
                for c2, k2 in tasks[position:]:
                    monitor.skip(candidates[c2], k2)
                return
            yield delayed(_fit_and_score)(pipeline, candidates[c], X, y, folds[k][0], folds[k][1], scoring, c, k)

    if workers <= 1:
        finished = (fn(*args, **kwargs) for fn, args, kwargs in launch())
    else:
        finished = Parallel(n_jobs=workers, return_as="generator_unordered", pre_dispatch="n_jobs",
                            batch_size=1)(launch())
    for c, k, value, took, chose in finished:
        scores[c, k], seconds[c, k], ran[c, k] = value, took, True
        if chose:
            found[c].append(chose)
        monitor.fit_done(candidates[c], k, len(folds), value, took, stage)
    rows = []
    for c, params in enumerate(candidates):
        complete = bool(ran[c].all())
        row: dict[str, Any] = {"params": dict(params),
                               "mean_test_score": float(np.mean(scores[c])) if complete else float("nan"),
                               "std_test_score": float(np.std(scores[c])) if complete else float("nan")}
        for k in range(len(folds)):
            row[f"split{k}_test_score"] = float(scores[c, k])
        row["mean_fit_time"] = float(np.mean(seconds[c][ran[c]])) if ran[c].any() else float("nan")
        if found[c]:
            row["found_params"] = found[c]
        if not complete:
            row["skipped"] = True
        rows.append(row)
    return rows
