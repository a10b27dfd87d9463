"""Terminal progress and summaries for long jobs (rich)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

from rich.console import Console
from rich.markup import escape
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)

from featurebench.text import plural


@contextmanager
def count_progress(console: Console, label: str, unit: str) -> Iterator[Callable[[int, int], None]]:
    """A bar with ETA for a job counted in ``unit`` (``report``'s runs); yields ``on_progress(done, total)``."""
    progress = Progress(TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(), TextColumn(unit),
                        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console)
    task = None

    def on_progress(done: int, total: int) -> None:
        nonlocal task
        if task is None:
            task = progress.add_task(label, total=total)
            progress.start()
        progress.update(task, completed=done)

    try:
        yield on_progress
    finally:
        if task is not None:
            progress.stop()


@contextmanager
def extraction_progress(console: Console, quiet: bool = False,
                        verbose: bool = False) -> Iterator[tuple[Callable[[int, int], None], Callable[[int, int], None]]]:
    """A progress bar with rate and ETA, shown from the first ``on_start`` call.

    Yields ``(on_start, on_progress)`` callbacks taking ``(done, total)``. ``quiet``: no progress
    at all; ``verbose``: one line per finished batch instead of a bar (logs, CI), as ``fit -v``.
    """
    if quiet or verbose:
        clock = {"start": None, "done": 0}

        def start_lines(done: int, total: int) -> None:
            import time

            clock["start"], clock["done"] = time.perf_counter(), done
            if done and not quiet:
                console.print(f"Resuming: {done} of {total} images already done.")

        def line(done: int, total: int) -> None:
            import time

            if quiet or clock["start"] is None:
                return
            elapsed = time.perf_counter() - clock["start"]
            rate = (done - clock["done"]) / elapsed if elapsed > 0 else 0.0
            eta = (total - done) / rate if rate > 0 else 0.0
            console.print(f"extract {done}/{total} images, {rate:.1f} img/s, elapsed {_seconds(elapsed)}, "
                          f"ETA {_seconds(eta)}", highlight=False)

        yield start_lines, line
        return
    progress = Progress(TextColumn("[bold]extract"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"),
                        TimeRemainingColumn(), console=console)
    state = {"start": 0, "task": None, "running": False}

    def stop() -> None:
        if state["running"]:  # once: a stopped rich Progress prints a blank line into files each time
            state["running"] = False
            progress.stop()

    def on_start(done: int, total: int) -> None:
        if done:
            console.print(f"Resuming: {done} of {total} images already done.")
        state["start"] = done
        state["task"] = progress.add_task("extract", total=total, completed=done, rate="")
        if done < total:
            state["running"] = True
            progress.start()

    def on_progress(done: int, total: int) -> None:
        task = state["task"]
        elapsed = progress.tasks[task].elapsed or 0.0
        rate = (done - state["start"]) / elapsed if elapsed > 0 else 0.0
        progress.update(task, completed=done, rate=f"{rate:6.1f} img/s")
        if done >= total:
            stop()  # the finished bar is written now, before what follows (also into a file)

    try:
        yield on_start, on_progress
    finally:
        stop()


def _seconds(value: float) -> str:
    return f"{value:.0f} s" if value < 120 else f"{value / 60:.1f} min"


def _params(params: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "defaults"


class FitReporter:
    """Renders a search's progress (``featurebench.fit.monitor.Reporter``) on ``console`` (stderr).

    Before the first fit: rows, dims, classes, candidates x folds and workers; after the first fit:
    an estimate of the whole search. Then a progress bar over the (candidate, fold) fits with rate
    and ETA, or with ``verbose`` one line per finished fit (like scikit-learn's ``verbose``).
    """

    def __init__(self, console: Console, verbose: bool = False):
        self.console = console
        self.verbose = verbose
        self.progress: Progress | None = None
        self.task = None
        self.estimated = False
        self.workers = 1

    def start(self, plan: dict) -> None:
        """Print the plan (search fits, then the refit on the whole train slice) and open the bar."""
        self.finish()
        self.workers = max(1, int(plan.get("workers") or 1))
        stage = f" [{plan['stage']}]" if plan.get("stage") else ""
        budget = f", time budget {plan['time_budget']:g} s" if plan.get("time_budget") else ""
        refit = f" on all {plan.get('rows')} train rows"
        if plan.get("folds"):
            fits = (f"{plural(plan['candidates'], 'candidate')} x {plural(plan['folds'], 'fold')} = "
                    f"{plural(plan['fits'], 'fit')}" + (f" + 1 refit{refit}" if plan.get("refit") else ""))
        else:
            fits = f"1 candidate ({_params(plan.get('only') or {})}): no cross-validation, 1 fit{refit}"
        self.console.print(
            f"fit {plan.get('classifier', '')}{stage}: {plan.get('rows')} rows x {plan.get('dims')} dims, "
            f"{plural(plan.get('classes') or 0, 'class', 'classes')}; {fits}; "
            f"{plural(self.workers, 'worker')}{budget}", highlight=False, soft_wrap=True)
        self.estimated = False
        total = plan["fits"] + bool(plan.get("refit"))
        if not self.verbose:
            self.progress = Progress(TextColumn("[bold]fit"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"),
                                     TimeRemainingColumn(), console=self.console, transient=False)
            self.task = self.progress.add_task("fit", total=total, rate="")
            self.progress.start()

    def fit_done(self, event) -> None:
        """Advance the bar (or print a line); print the estimate once, after the first fit (with fits to come)."""
        if not self.estimated and event.remaining is not None and event.done < event.total:
            self.estimated = True
            self.console.print(f"first fit took {event.seconds:.1f} s; estimated total ~"
                               f"{_seconds(event.elapsed + event.remaining)} including the refit "
                               f"({plural(self.workers, 'worker')})", highlight=False)
        if self.verbose:
            what = ("refit on the whole train slice" if event.stage == "refit" else
                    f"fold {event.fold + 1}/{event.n_folds}")
            score = "" if event.stage == "refit" else f": score {event.score:.4f}"
            self.console.print(f"[{event.done}/{event.total}] {what} {escape(_params(event.params))}{score} "
                               f"({event.seconds:.2f} s); elapsed {_seconds(event.elapsed)}, "
                               f"ETA {_seconds(event.remaining or 0.0)}", highlight=False, soft_wrap=True)
        elif self.progress is not None:
            rate = event.done / event.elapsed if event.elapsed > 0 else 0.0
            self.progress.update(self.task, completed=event.done, rate=f"{rate:5.2f} fits/s")

    def note(self, text: str) -> None:
        """A one-line message above the bar."""
        self.console.print(escape(text), highlight=False, soft_wrap=True)

    def finish(self) -> None:
        """Close the bar."""
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def print_extract_summary(console: Console, summary, max_listed: int = 20, results: Console | None = None) -> None:
    """The end-of-run summary: images done, skipped (each file and its reason, up to
    ``max_listed``), duplicates, rate, file size. User text is escaped (no rich markup).

    The first line (what was written) goes to ``results`` (e.g. stdout) when given, the details to ``console``."""
    output = escape(str(summary.output))
    (results or console).print(
        f"[green]Wrote[/] {output}: {summary.n_rows} images, {summary.n_skipped} skipped, "
        f"{summary.n_ignored} non-image files ignored, {summary.images_per_second:.1f} img/s, "
        f"{summary.file_bytes / 1e6:.1f} MB", soft_wrap=True
    )
    if summary.skipped_reasons:
        reasons = ", ".join(f"{reason}: {count}" for reason, count in sorted(summary.skipped_reasons.items()))
        console.print(f"Skipped by reason: {escape(reasons)}", soft_wrap=True)
        skipped = getattr(summary, "skipped", [])
        for path, reason in skipped[:max_listed]:
            console.print(f"  skipped {escape(repr(path))}: {escape(reason)}", soft_wrap=True)
        if len(skipped) > max_listed:
            console.print(f"  ... and {len(skipped) - max_listed} more: `featurebench info {output}`", soft_wrap=True)
    if getattr(summary, "n_duplicates", 0):
        console.print(f"Duplicates: {summary.n_duplicates} images have the same bytes as an earlier one; kept as "
                      f"rows (listed by `featurebench info {output}`)", soft_wrap=True)
    for warning in summary.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True)
