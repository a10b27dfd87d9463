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


def test_extract_quiet_and_verbose_like_fit(class_folders, tmp_path, monkeypatch):
    """`extract -q` prints no progress, `-v` a line per batch; the result line stays on stdout."""
    from typer.testing import CliRunner

    from crash_driver import use_color_stats
    from featurebench.cli import app

    use_color_stats(monkeypatch.setattr)
    runs = {}
    for flag in ("-q", "-v"):
        result = CliRunner().invoke(app, ["extract", str(class_folders), "-o", str(tmp_path / f"{flag}.h5"),
                                          "--batch-size", "4", flag])
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith("Wrote ")
        runs[flag] = result.stderr
    assert "extract" not in runs["-q"] and "img/s" not in runs["-q"]
    lines = [line for line in runs["-v"].splitlines() if line.startswith("extract ")]
    assert [line.split()[1] for line in lines] == ["4/12", "8/12", "12/12"] and all("ETA" in line for line in lines)


def test_report_shows_a_bar_over_its_runs(tmp_path):
    """`report` (87 s silent with --heatmaps before) counts its runs on stderr; the result stays on stdout."""
    from typer.testing import CliRunner

    from featurebench.cli import app
    from fixtures_report import make_metrics, write_run

    for k in range(3):
        write_run(tmp_path / "results", make_metrics(f"run{k}", classifier=("logreg", "svm", "knn")[k], seed=k))
    result = CliRunner().invoke(app, ["report", str(tmp_path / "results"), "-o", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    assert "report" in result.stderr and "3/3 runs" in result.stderr
    assert "wrote" in result.stdout and "3/3" not in result.stdout
