"""``featurebench sweep``: every (feature file, classifier) cell is a ``fit`` run, locally or as Ray
tasks, with the same results as ``fit`` run one after another (featurebench.scale.sweep)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from featurebench.errors import FeaturebenchError
from featurebench.fit import run_fit
from featurebench.scale.sweep import run_sweep
from test_fit import blobs, write

CLASSIFIERS = ("logreg", "knn")
#: metrics.json keys that must agree between a sweep cell and the same ``fit`` (not timings).
SAME = ("dataset", "extractor", "classifier", "accuracy", "rank1", "mean_per_class_accuracy", "macro_f1",
        "n_train", "n_test", "best_params", "accuracy_ci95")


@pytest.fixture(scope="module")
def feature_files(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("sweep")
    files = []
    for k, sep in enumerate((1.5, 3.0)):
        X, y = blobs(240, 6, 3, sep=sep, seed=k)
        files.append(write(folder / f"set{k}.h5", X, y, dataset=f"set{k}", model=f"model{k}"))
    return files


def _metrics(out: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(out.glob("*/metrics.json"))}


@pytest.fixture(scope="module")
def sequential(feature_files, tmp_path_factory) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("fit")
    for path in feature_files:
        for clf in CLASSIFIERS:
            run_fit(path, clf, out=out, n_jobs=1, n_boot=200)
    return _metrics(out)


def _assert_same(got: dict[str, dict], want: dict[str, dict]) -> None:
    assert sorted(got) == sorted(want) and len(got) == len(CLASSIFIERS) * 2
    for name in want:
        assert {k: got[name][k] for k in SAME} == {k: want[name][k] for k in SAME}, name


def test_sweep_on_ray_equals_sequential_fit_and_resumes(feature_files, sequential, ray_cluster, tmp_path):
    out = tmp_path / "results"
    seen = []
    result = run_sweep(feature_files, CLASSIFIERS, out, {"n_boot": 200}, ray=True,
                       on_cell=lambda path, clf, run, error: seen.append((Path(path).name, clf, error)))
    assert not result.failures and len(result.runs) == 4
    assert sorted(seen) == sorted((f.name, c, None) for f in feature_files for c in CLASSIFIERS)
    _assert_same(_metrics(out), sequential)
    again = run_sweep(feature_files, CLASSIFIERS, out, {"n_boot": 200, "skip_existing": True})
    assert all(run.skipped for run in again.runs) and len(again.runs) == 4


def test_local_sweep_equals_sequential_fit_and_reports_failed_cells(feature_files, sequential, tmp_path):
    out = tmp_path / "results"
    result = run_sweep(feature_files, [*CLASSIFIERS, "no-such-clf"], out, {"n_boot": 200, "n_jobs": 1})
    assert len(result.runs) == 4 and len(result.failures) == 2
    assert all(clf == "no-such-clf" for _, clf, _ in result.failures)
    _assert_same(_metrics(out), sequential)


def test_sweep_cli_takes_comma_separated_classifiers_and_exits_2_on_a_failed_cell(feature_files, tmp_path):
    command = [sys.executable, "-m", "featurebench", "sweep", str(feature_files[0]), "--clf", "logreg,knn",
               "--clf", "nope", "--out", str(tmp_path / "r"), "--n-jobs", "1"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "logreg on set0" in result.stdout and "knn on set0" in result.stdout
    assert "failed:" in result.stderr and "1 of 3 sweep cells failed" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(list((tmp_path / "r").glob("*/metrics.json"))) == 2
    assert "sweep [1/3] fitting logreg on set0.h5" in result.stderr and "Sweep: 2 cells done, 0 skipped" in result.stderr
    again = subprocess.run([*command[:7], "--out", str(tmp_path / "r"), "--skip-existing"], capture_output=True,
                           text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "Sweep: 0 cells done, 2 skipped" in again.stderr  # not "2 cells done" when nothing ran
    accuracies = [line.rsplit(" ", 1)[1] for line in again.stdout.splitlines() if "skipped" in line]
    assert len(accuracies) == 2 and all(len(a) == 6 and a.startswith("0.") for a in accuracies)  # 0.9353, rounded
    clash = subprocess.run(command[:7] + ["--out", str(tmp_path / "r")], capture_output=True, text=True, timeout=120)
    assert clash.returncode == 2 and "already exists" in clash.stderr and "--run-name" not in clash.stderr


def test_missing_feature_file_is_refused(tmp_path):
    with pytest.raises(FeaturebenchError, match="not found"):
        run_sweep([tmp_path / "nope.h5"], ["logreg"], tmp_path / "r")
