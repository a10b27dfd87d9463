"""The one output rule of every command: results on stdout, diagnostics on stderr.

A *result* is what a command was run for: the line saying what was written and where, the
scores, the run folder, tables a script would read. Everything else (progress, stage messages,
notes, warnings, errors) is a diagnostic. So ``featurebench train ... > out.txt`` keeps the
answer, and a terminal still shows the progress.
"""

from __future__ import annotations

from rich.console import Console

#: Progress, notes, warnings and errors.
diagnostics = Console(stderr=True)
#: Results.
results = Console()


def print_result(text: str, markup: bool = False) -> None:
    """One result line (or block) on stdout, never wrapped into a second line by the terminal width."""
    results.print(text, soft_wrap=True, highlight=False, markup=markup)


__all__ = ["diagnostics", "print_result", "results"]
