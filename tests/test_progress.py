"""The extraction bar: finished and written when the last image is done, before what follows."""

from __future__ import annotations

import io

from rich.console import Console

from featurebench.progress import extraction_progress


def test_finished_bar_is_written_before_later_lines_in_a_file():
    buffer = io.StringIO()
    console = Console(file=buffer, width=80)  # a file, not a terminal: rich writes the bar once, on stop
    with extraction_progress(console) as (on_start, on_progress):
        on_start(0, 4)
        on_progress(2, 4)
        on_progress(4, 4)
        console.print("fitting svm...")
    lines = [line for line in buffer.getvalue().splitlines()]
    assert lines[0].startswith("extract") and "4/4" in lines[0]
    assert lines[1:] == ["fitting svm..."]  # no blank line from a second stop, no bar after it
