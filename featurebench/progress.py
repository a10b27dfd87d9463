"""Terminal progress and summaries for long jobs (rich)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

from rich.console import Console
from rich.markup import escape
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)


@contextmanager
def extraction_progress(console: Console) -> Iterator[tuple[Callable[[int, int], None], Callable[[int, int], None]]]:
    """A progress bar with rate and ETA, shown from the first ``on_start`` call.

    Yields ``(on_start, on_progress)`` callbacks taking ``(done, total)``.
    """
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
