"""Progress and the time budget of a search: the library reports events, a reporter renders them.

A search calls :meth:`SearchMonitor.begin` with its plan (rows, dims, classes,
candidates x folds), :meth:`SearchMonitor.allow` before launching each fit and
:meth:`SearchMonitor.fit_done` after each one. The monitor keeps the time
budget: once the elapsed time plus the mean duration of a finished fit would
pass ``time_budget`` seconds, no new fit is launched (fits already running
finish) and every fit not launched is recorded as skipped. The first candidate
always runs to completion, so a search always has a best candidate.

Reporters (``featurebench.progress.FitReporter`` draws a rich progress bar)
implement :class:`Reporter`; the library itself never prints.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol


@dataclass
class FitEvent:
    """One finished (candidate, fold) fit."""

    done: int
    total: int
    params: dict[str, Any]
    fold: int
    n_folds: int
    score: float
    seconds: float
    elapsed: float
    #: Estimated seconds until the planned fits are done (``None`` before the first fit).
    remaining: float | None
    stage: str = ""


class Reporter(Protocol):
    """What a monitor tells: the plan, each finished fit, free-text notes."""

    def start(self, plan: dict[str, Any]) -> None: ...

    def fit_done(self, event: FitEvent) -> None: ...

    def note(self, text: str) -> None: ...

    def finish(self) -> None: ...


@dataclass
class SearchMonitor:
    """Counts fits, estimates the time left and enforces ``time_budget`` (seconds, ``None``: no limit)."""

    reporter: Reporter | None = None
    time_budget: float | None = None
    workers: int = 1
    clock: Callable[[], float] = time.perf_counter
    started: float | None = None
    total: int = 0
    done: int = 0
    launched: int = 0
    fit_seconds: list[float] = field(default_factory=list)
    #: Parameter sets of fits that were not launched because of the budget, with their fold.
    skipped: list[dict[str, Any]] = field(default_factory=list)
    stopped: bool = False
    #: Expected cost of the planned refit in search fits (``None``: no refit planned).
    refit_factor: float | None = None
    #: Merged into the plan given to the reporter (rows, dims, classes, classifier, stage ...).
    context: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def begin(self, total: int, plan: dict[str, Any], refit_factor: float | None = None) -> None:
        """Start (or, for a later stage of the same search, extend) the count of planned fits.

        ``refit_factor``: a refit on the whole train slice follows the ``total`` search fits; it
        counts as one more fit, expected to take ``refit_factor`` times a search fit (the ratio of
        the rows), in the estimate and the time budget.
        """
        if self.started is None:
            self.started = self.clock()
        self.refit_factor = refit_factor
        self.total += total + (refit_factor is not None)
        if self.reporter is not None:
            self.reporter.start({"workers": self.workers, **self.context, **plan, "fits": total,
                                 "refit": refit_factor is not None, "time_budget": self.time_budget})

    def elapsed(self) -> float:
        return 0.0 if self.started is None else self.clock() - self.started

    def mean_fit_seconds(self) -> float | None:
        return sum(self.fit_seconds) / len(self.fit_seconds) if self.fit_seconds else None

    def refit_seconds(self) -> float:
        """Expected seconds of the planned refit (0 when none is planned or nothing was measured yet)."""
        return (self.mean_fit_seconds() or 0.0) * (self.refit_factor or 0.0)

    def allow(self, first_candidate: bool = False) -> bool:
        """May the next fit be launched? ``first_candidate`` fits always may (a search needs a best).

        The budget keeps room for the refit: a fit is launched only if it and the refit both fit in.
        """
        if first_candidate or self.time_budget is None:
            return True
        if self.stopped:
            return False
        expected = (self.mean_fit_seconds() or 0.0) / max(1, self.workers) + self.refit_seconds()
        if self.elapsed() + expected > self.time_budget:
            self.stopped = True
            if self.reporter is not None:
                self.reporter.note(f"time budget of {self.time_budget:g} s reached after {self.elapsed():.1f} s "
                                   f"(the refit needs ~{self.refit_seconds():.0f} s): no new fits are launched; "
                                   "the best finished candidate is kept")
            return False
        return True

    def skip(self, params: dict[str, Any], fold: int) -> None:
        """Record a fit that the budget did not launch."""
        self.skipped.append({"params": dict(params), "fold": fold})

    def fit_done(self, params: dict[str, Any], fold: int, n_folds: int, score: float, seconds: float,
                 stage: str = "") -> None:
        """Count one finished search fit and tell the reporter (thread-safe: logreg folds run in threads)."""
        with self._lock:
            self.done += 1
            self.fit_seconds.append(seconds)
            self._report(params, fold, n_folds, score, seconds, stage)

    def refit_done(self, params: dict[str, Any], seconds: float) -> None:
        """Count the refit on the whole train slice (the last planned fit)."""
        with self._lock:
            self.done += 1
            self._report(params, -1, 0, float("nan"), seconds, "refit")

    def _report(self, params: dict[str, Any], fold: int, n_folds: int, score: float, seconds: float,
                stage: str) -> None:
        refit_left = self.refit_factor is not None and stage != "refit"
        left = self.total - self.done - len(self.skipped) - refit_left
        mean = self.mean_fit_seconds() or 0.0
        remaining = max(0, left) * mean / max(1, self.workers) + (self.refit_seconds() if refit_left else 0.0)
        if self.reporter is not None:
            self.reporter.fit_done(FitEvent(self.done, self.total, dict(params), fold, n_folds, score, seconds,
                                            self.elapsed(), remaining, stage))

    def note(self, text: str) -> None:
        if self.reporter is not None:
            self.reporter.note(text)

    def finish(self) -> None:
        if self.reporter is not None:
            self.reporter.finish()

    def summary(self) -> dict[str, Any]:
        """The ``time_budget`` entry of the run record."""
        skipped_params: list[dict[str, Any]] = []
        for item in self.skipped:
            if item["params"] not in skipped_params:
                skipped_params.append(item["params"])
        return {"seconds": self.time_budget, "elapsed_seconds": round(self.elapsed(), 3),
                "stopped": self.stopped, "fits_planned": self.total, "fits_done": self.done,
                "fits_skipped": len(self.skipped), "skipped_params": skipped_params}
