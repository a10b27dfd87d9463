"""Progress events, the time budget and repeated splits of `featurebench fit` (synthetic data, n_jobs <= 2)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from featurebench.errors import FeaturebenchError
from featurebench.fit.engine import run_candidates
from featurebench.fit.monitor import SearchMonitor
from featurebench.fit.run import run_fit
from featurebench.fit.search import cv_folds, make_pipeline
from featurebench.fit.splits import stratified_split
from featurebench.progress import FitReporter
from featurebench.store.reader import open_feature_file
from tests.test_fit import blobs, write


class Recorder:
    """A reporter that keeps every call."""

    def __init__(self):
        self.plans, self.events, self.notes, self.finished = [], [], [], 0

    def start(self, plan):
        self.plans.append(plan)

    def fit_done(self, event):
        self.events.append(event)

    def note(self, text):
        self.notes.append(text)

    def finish(self):
        self.finished += 1


class FakeClock:
    """Time that advances only when a fit finishes (deterministic budget tests)."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@pytest.fixture()
def small(tmp_path: Path) -> Path:
    X, y = blobs(240, 6, 3, sep=6.0, seed=3)
    return write(tmp_path / "small.h5", X, y, ["a", "b", "c"], dataset="toy")


def test_progress_reports_plan_every_fit_and_an_estimate(small: Path, tmp_path: Path) -> None:
    recorder = Recorder()
    result = run_fit(small, "knn", grid='{"n_neighbors": [1, 3, 5]}', cv=3, n_jobs=1, out=tmp_path / "r",
                     reporter=recorder, n_boot=50)
    plan = recorder.plans[0]
    assert (plan["rows"], plan["dims"], plan["classes"]) == (180, 6, 3)
    assert (plan["candidates"], plan["folds"], plan["fits"]) == (3, 3, 9)
    assert [e.done for e in recorder.events] == list(range(1, 11))  # 9 CV fits, then the refit
    assert {(tuple(e.params.items()), e.fold) for e in recorder.events[:9]} == \
        {((("n_neighbors", k),), f) for k in (1, 3, 5) for f in range(3)}
    assert recorder.events[-1].stage == "refit" and len(recorder.plans) == 1 and recorder.plans[0]["refit"]
    assert {e.total for e in recorder.events} == {10}  # one plan: 9 CV fits + the refit
    assert recorder.events[0].remaining > 0  # the estimate after the first fit counts the refit too
    assert recorder.events[0].remaining is not None and recorder.events[-1].remaining == 0
    assert recorder.finished == 1
    assert result.metrics["time_budget"] is None


def test_logreg_path_reports_every_c_and_fold(small: Path, tmp_path: Path) -> None:
    recorder = Recorder()
    run_fit(small, "logreg", grid='{"C": [0.1, 1, 10]}', n_jobs=2, out=tmp_path / "r", reporter=recorder, n_boot=50)
    assert recorder.plans[0]["fits"] == 9 and len(recorder.events) == 10
    assert sorted(e.done for e in recorder.events) == list(range(1, 11))


def test_fit_reporter_renders_bar_and_verbose_lines() -> None:
    """One plan including the refit, counts that end at N/N, the estimate before the work is done,
    the refit named as such (not as 'fold 1/1 ... score nan')."""
    for verbose in (False, True):
        buffer = io.StringIO()
        reporter = FitReporter(Console(file=buffer, width=120, force_terminal=False), verbose=verbose)
        monitor = SearchMonitor(reporter, workers=2)
        monitor.context = {"classifier": "svm", "rows": 100, "dims": 8, "classes": 2}
        monitor.begin(4, {"candidates": 2, "folds": 2}, refit_factor=1.5)
        for k in range(4):
            monitor.fit_done({"C": 1.0}, k % 2, 2, 0.9, 0.5)
        monitor.refit_done({"C": 1.0}, 0.7)
        monitor.finish()
        text = buffer.getvalue()
        assert ("fit svm: 100 rows x 8 dims, 2 classes; 2 candidates x 2 folds = 4 fits + 1 refit on all 100 "
                "train rows; 2 workers") in text
        assert text.count("fit svm") == 1 and "nan" not in text and "1 candidates" not in text
        assert "first fit took 0.5 s; estimated total" in text and "including the refit" in text
        assert text.index("estimated total") < text.index("5/5")
        assert ("[4/5] fold 2/2 C=1.0: score 0.9000" in text) == verbose
        assert ("[5/5] refit on the whole train slice C=1.0 (0.70 s)" in text) == verbose


def test_single_candidate_plan_is_one_fit_and_has_no_estimate_after_the_fact() -> None:
    buffer = io.StringIO()
    monitor = SearchMonitor(FitReporter(Console(file=buffer, width=160), verbose=True), workers=1)
    monitor.context = {"classifier": "xgb", "rows": 100, "dims": 8, "classes": 2}
    monitor.begin(0, {"candidates": 1, "folds": 0, "only": {"max_depth": 4}}, refit_factor=1.0)
    monitor.refit_done({"max_depth": 4}, 3.0)
    text = buffer.getvalue()
    assert "1 candidate (max_depth=4): no cross-validation, 1 fit on all 100 train rows; 1 worker" in text
    assert "[1/1] refit on the whole train slice" in text and "estimated" not in text


def test_budget_keeps_room_for_the_refit() -> None:
    """Fits of 10 s, a refit expected at 2x a fit, 45 s budget: after 2 fits (20 s) a third (10 s) and the
    refit (20 s) would end at 50 s, so no new fit is launched."""
    clock = FakeClock()
    monitor = SearchMonitor(Recorder(), time_budget=45.0, workers=1, clock=clock)
    monitor.begin(6, {"candidates": 3, "folds": 2}, refit_factor=2.0)
    assert monitor.allow(first_candidate=True)
    for _ in range(2):
        clock.now += 10.0
        monitor.fit_done({}, 0, 2, 1.0, 10.0)
    assert monitor.refit_seconds() == 20.0 and not monitor.allow()
    no_refit = SearchMonitor(Recorder(), time_budget=45.0, workers=1, clock=clock)
    no_refit.begin(6, {"candidates": 3, "folds": 2})
    no_refit.fit_seconds = [10.0, 10.0]
    no_refit.started = 0.0
    assert no_refit.allow()


def test_budget_stops_launching_keeps_best_and_records_skipped() -> None:
    """With a fake clock: every fit takes 10 s; a 25 s budget runs the first candidate's 2 folds and
    one more fit, then refuses the rest, which are recorded, and the partial candidate is not ranked."""
    X, y = blobs(120, 4, 2, sep=5.0, seed=0)
    clock = FakeClock()
    recorder = Recorder()
    monitor = SearchMonitor(recorder, time_budget=25.0, workers=1, clock=clock)
    original = monitor.fit_done

    def tick(*args, **kwargs):
        clock.now += 10.0
        original(*args[:4], 10.0, *args[5:], **kwargs)

    monitor.fit_done = tick  # type: ignore[method-assign]
    candidates = [{"n_neighbors": k} for k in (1, 3, 5, 7)]
    monitor.begin(8, {"candidates": 4, "folds": 2})
    from featurebench.fit.classifiers import make_estimator

    rows = run_candidates(make_pipeline(make_estimator("knn")), candidates, X, y, cv_folds(y, 2), "accuracy", 1,
                          monitor)
    assert monitor.done == 2 and monitor.stopped  # 0 s + 2 fits; at 20 s + 10 s expected > 25 s: stop
    assert [r.get("skipped", False) for r in rows] == [False, True, True, True]
    assert np.isfinite(rows[0]["mean_test_score"]) and all(np.isnan(r["mean_test_score"]) for r in rows[1:])
    summary = monitor.summary()
    assert summary["fits_skipped"] == 6 and summary["skipped_params"] == candidates[1:]
    assert any("time budget of 25 s reached" in n for n in recorder.notes)


def test_budget_always_finishes_the_first_candidate_and_run_records_it(small: Path, tmp_path: Path) -> None:
    result = run_fit(small, "knn", grid='{"n_neighbors": [1, 3, 5, 7]}', n_jobs=1, out=tmp_path / "r",
                     time_budget=1e-9, n_boot=50)
    m = result.metrics
    budget = m["time_budget"]
    assert budget["stopped"] and budget["fits_done"] == 3 + 1 and budget["fits_skipped"] == 9  # + refit
    assert m["best_params"] == {"n_neighbors": 1}
    skipped = [r for r in json.loads((result.run_dir / "metrics.json").read_text())["cv"]["results"]
               if r["mean_test_score"] is None]
    assert len(skipped) == 3
    assert "time budget 1e-09 s: 9 of 13 fits skipped" in result.describe()


def test_budget_stops_the_logreg_path(small: Path, tmp_path: Path) -> None:
    result = run_fit(small, "logreg", grid='{"C": [0.01, 0.1, 1, 10]}', n_jobs=1, out=tmp_path / "r",
                     time_budget=1e-9, n_boot=50)
    assert result.metrics["time_budget"]["fits_done"] == 3 + 1  # the first C on each fold, the refit
    assert result.metrics["best_params"] == {"C": 0.01}


def test_bad_budget_and_repeats_are_clear_errors(small: Path, tmp_path: Path) -> None:
    with pytest.raises(FeaturebenchError, match="--time-budget"):
        run_fit(small, "knn", out=tmp_path / "r", time_budget=0)
    with pytest.raises(FeaturebenchError, match="--repeats"):
        run_fit(small, "knn", out=tmp_path / "r", repeats=0)
    with pytest.raises(FeaturebenchError, match="--test-file"):
        run_fit(small, "knn", out=tmp_path / "r", repeats=2, test_file=small)


def test_single_candidate_skips_cross_validation(small: Path, tmp_path: Path) -> None:
    recorder = Recorder()
    m = run_fit(small, "knn", grid='{"n_neighbors": [3]}', n_jobs=1, out=tmp_path / "r", reporter=recorder,
                n_boot=50).metrics
    assert m["search_method"] == "single candidate (no search)" and m["cv_folds"] == 0
    assert [e.stage for e in recorder.events] == ["refit"]
    assert m["best_params"] == {"n_neighbors": 3} and m["accuracy"] > 0.9


def test_repeats_mean_std_and_each_split_reproducible_from_its_seed(small: Path, tmp_path: Path) -> None:
    grid = '{"n_neighbors": [1, 5]}'
    result = run_fit(small, "knn", grid=grid, n_jobs=1, out=tmp_path / "r", repeats=3, seed=7, n_boot=50)
    m = result.metrics
    rep = m["repeats"]
    assert rep["n"] == 3 and rep["seeds"] == [7, 8, 9] and len(rep["splits"]) == 3
    accs = [s["accuracy"] for s in rep["splits"]]
    assert rep["accuracy_mean"] == pytest.approx(np.mean(accs))
    assert rep["accuracy_std"] == pytest.approx(np.std(accs, ddof=1))
    assert m["split"] == "stratified" and m["accuracy"] == accs[0]
    assert result.run_name.endswith("__repeats3")
    with open_feature_file(small) as ff:
        assert [len(stratified_split(ff, s).test) for s in (7, 8, 9)] == [s["n_test"] for s in rep["splits"]]
    # split 2 (seed 8) is exactly `--stratified --seed 8`
    single = run_fit(small, "knn", grid=grid, n_jobs=1, out=tmp_path / "s", stratified=True, seed=8, n_boot=50)
    assert single.metrics["accuracy"] == rep["splits"][1]["accuracy"]
    assert single.metrics["best_params"] == rep["splits"][1]["best_params"]
    assert "3 stratified splits (seeds 7..9)" in result.describe()


def test_report_shows_repeats_and_budget(small: Path, tmp_path: Path) -> None:
    from featurebench.report import build_report

    out = tmp_path / "runs"
    run_fit(small, "knn", grid='{"n_neighbors": [1, 5]}', n_jobs=1, out=out, repeats=2, n_boot=50)
    run_fit(small, "knn", grid='{"n_neighbors": [1, 3, 5]}', n_jobs=1, out=out, time_budget=1e-9, n_boot=50)
    build_report(out, tmp_path / "r.html", tmp_path / "r.md", tmp_path / "r.csv", plots=False)
    md = (tmp_path / "r.md").read_text()
    assert "(mean of 2 splits, seeds 42..43; first split" in md
    assert "budget 1e-09 s: 6 of 10 fits skipped" in md
    html = (tmp_path / "r.html").read_text()
    assert "mean of 2 splits" in html and "6 of 10 fits skipped" in html
    import csv

    rows = list(csv.DictReader(open(tmp_path / "r.csv")))
    assert sorted((r["repeats"], r["fits_skipped"]) for r in rows) == [("1", "6"), ("2", "0")]


def test_cli_progress_on_stderr_result_on_stdout_and_quiet(small: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from featurebench.cli import app

    def fit(*flags: str):
        result = CliRunner().invoke(app, ["fit", str(small), "--clf", "knn", "--grid", '{"n_neighbors": [1, 3]}',
                                          "--n-jobs", "1", "--out", str(tmp_path / "r"), "--force", *flags])
        assert result.exit_code == 0, result.output
        return result

    verbose = fit("--verbose")
    assert "fit knn: 180 rows x 6 dims, 3 classes; 2 candidates x 3 folds = 6 fits + 1 refit" in verbose.stderr
    assert "[6/7] fold 3/3 n_neighbors=3: score" in verbose.stderr
    assert "[7/7] refit on the whole train slice n_neighbors=" in verbose.stderr and "nan" not in verbose.stderr
    assert "first fit took" in verbose.stderr
    assert "knn on toy" in verbose.stdout and "fit knn" not in verbose.stdout
    quiet = fit("--quiet")
    assert "fit knn:" not in quiet.stderr and "knn on toy" in quiet.stdout


def test_result_lines_fit_in_80_columns(small: Path, tmp_path: Path) -> None:
    """fit's result on stdout: no line wider than 80 columns (besides the run folder's own path)."""
    result = run_fit(small, "knn", grid='{"n_neighbors": [1, 3]}', n_jobs=1, out=tmp_path / "r", n_boot=50,
                     time_budget=1e-9)
    lines = result.describe().replace(str(result.run_dir), "RUN").splitlines()
    assert max(len(line) for line in lines) <= 80, lines
    assert lines[0].startswith("knn on toy / ") and "test accuracy" in lines[0]
