"""The probe's C selection rule, the default grids, kNN fold sizes, --pca and accuracy = rank-1."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from featurebench.errors import FeaturebenchError
from featurebench.fit.classifiers import get_classifier, make_estimator
from featurebench.fit.grids import load_grid
from featurebench.fit.run import run_fit
from featurebench.fit.search import plateau_choice, probe_folds, probe_tolerance, search
from tests.test_fit import blobs, write

CS = [1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0, 1e3]


@pytest.mark.parametrize("means, expected", [
    # one clear best
    ([0.5, 0.6, 0.9, 0.7, 0.6, 0.6, 0.6], 0.1),
    # a plateau of 5 tied values from C=0.01 to 100: its middle, not its smallest
    ([0.5, 0.9, 0.9, 0.9, 0.9, 0.9, 0.6], 1.0),
    # even plateau of 4 (0.1 .. 100): the lower middle
    ([0.5, 0.6, 0.9, 0.9, 0.9, 0.9, 0.6], 1.0),
    # two plateaus: the longer wins even though the shorter comes first
    ([0.9, 0.9, 0.5, 0.9, 0.9, 0.9, 0.5], 10.0),
    # two equally long plateaus: the first
    ([0.9, 0.9, 0.5, 0.5, 0.5, 0.9, 0.9], 1e-3),
    # NaN (failed fits) never qualify and split a plateau
    ([0.9, 0.9, np.nan, 0.9, 0.9, 0.9, np.nan], 10.0),
])
def test_plateau_choice_known_plateaus(means, expected) -> None:
    assert CS[plateau_choice(CS, means)] == expected


def test_plateau_choice_tolerance_and_unsorted_values() -> None:
    # 0.899 is within 0.002 of the best: part of the plateau
    assert CS[plateau_choice(CS, [0.5, 0.899, 0.9, 0.9, 0.6, 0.6, 0.6], tol=0.002)] == 0.1
    assert CS[plateau_choice(CS, [0.5, 0.899, 0.9, 0.9, 0.6, 0.6, 0.6])] == 0.1  # exact: 0.1 and 1 -> 0.1
    shuffled = [CS[i] for i in (3, 0, 6, 1, 5, 2, 4)]
    scores = {1e-3: 0.5, 1e-2: 0.9, 0.1: 0.9, 1.0: 0.9, 10.0: 0.5, 100.0: 0.5, 1e3: 0.5}
    assert shuffled[plateau_choice(shuffled, [scores[c] for c in shuffled])] == 0.1
    with pytest.raises(FeaturebenchError):
        plateau_choice(CS, [np.nan] * len(CS))
    assert probe_tolerance(1000) == pytest.approx(1e-3)


def test_probe_picks_the_middle_of_a_real_plateau() -> None:
    """Separable blobs: every C from moderate to huge classifies the folds perfectly, so the old
    first-of-ties rule picked the plateau's smallest C; the probe picks its middle."""
    X, y = blobs(300, 6, 3, sep=12.0, seed=5)
    Cs = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0]
    result = search(X, y, "logreg", {"C": Cs}, cv=3, n_jobs=1, protocol="probe", seed=0)
    perfect = [r["params"]["C"] for r in result.table if r["mean_test_score"] == 1.0]
    assert len(perfect) >= 3 and perfect == sorted(perfect)
    assert result.best_params["C"] == perfect[(len(perfect) - 1) // 2]
    assert result.best_params["C"] != perfect[0]
    assert [r["params"]["C"] for r in result.table if r.get("chosen")] == [result.best_params["C"]]
    grid = search(X, y, "logreg", {"C": Cs}, cv=3, n_jobs=1, protocol="grid")
    assert grid.best_params["C"] == [r["params"]["C"] for r in grid.table if r["mean_test_score"] == 1.0][0]


def test_probe_folds_are_seeded_stratified_kfold() -> None:
    y = np.repeat([0, 1, 2], 30)
    a, b = probe_folds(y, 3, seed=1), probe_folds(y, 3, seed=1)
    assert all(np.array_equal(x[1], z[1]) for x, z in zip(a, b))
    assert not all(np.array_equal(x[1], z[1]) for x, z in zip(a, probe_folds(y, 3, seed=2)))
    assert sorted(np.concatenate([v for _, v in a]).tolist()) == list(range(90))
    assert all(np.bincount(y[v]).tolist() == [10, 10, 10] for _, v in a)


def test_default_grids_are_the_measured_ones() -> None:
    assert load_grid(None, "svm") == {"C": [1.0, 10.0, 100.0]}
    assert load_grid(None, "xgb") == {"max_depth": [2, 4]}
    assert load_grid(None, "hgb") == {"learning_rate": [0.3]}
    xgb = make_estimator("xgb")
    assert (xgb.learning_rate, xgb.colsample_bytree, xgb.early_stopping_rounds, xgb.validation_fraction) == \
        (0.3, 0.2, 10, 0.1)
    hgb = make_estimator("hgb")
    assert hgb.early_stopping is True and hgb.max_features == 0.1
    assert make_estimator("svm").gamma == "scale"
    assert get_classifier("knn").default_grid["n_neighbors"] == [1, 3, 5, 9, 15]


def test_xgb_stops_early_on_train_rows_only() -> None:
    X, y = blobs(200, 5, 3, sep=6.0, seed=2)
    model = make_estimator("xgb", 0, 1, n_estimators=500, early_stopping_rounds=5).fit(X, y)
    assert model.best_iteration_ < 499
    assert set(model.classes_) == {0, 1, 2}
    np.testing.assert_allclose(model.predict_proba(X).sum(axis=1), 1.0, rtol=1e-5)
    assert np.mean(model.predict(X) == y) > 0.9


def test_xgb_refit_boosts_the_rounds_its_folds_chose_on_every_train_row() -> None:
    """The refit reuses early stopping's answer (the median of the chosen candidate's folds) instead of
    boosting up to n_estimators again on 90% of the rows."""
    X, y = blobs(150, 5, 3, sep=2.0, seed=4)
    result = search(X, y, "xgb", {"max_depth": [2, 3], "n_estimators": [300], "early_stopping_rounds": [5]},
                    cv=3, n_jobs=1)
    chosen = result.best_row()
    rounds = [entry["rounds"] for entry in chosen["found_params"]]
    assert len(rounds) == 3 and all(1 <= r <= 300 for r in rounds)
    assert result.details["refit_params"] == {"rounds": int(round(np.median(rounds)))}
    model = result.estimator.named_steps["clf"]
    assert model.rounds == result.details["refit_params"]["rounds"]
    assert model.model_.get_booster().num_boosted_rounds() == model.rounds  # every round kept, no holdout
    assert model.found_params() == {}


def test_knn_default_grid_is_cut_to_the_fold_size() -> None:
    X, yy = blobs(12, 3, 2, sep=6.0)  # 3 folds of 12 rows: 8 train rows each
    result = search(X, yy, "knn", load_grid(None, "knn"), cv=3, n_jobs=1)
    assert {r["params"]["n_neighbors"] for r in result.table} == {1, 3, 5}
    assert np.all(np.isfinite([r["mean_test_score"] for r in result.table]))
    assert any("left out of the grid" in w for w in result.warnings)


def test_pca_sits_in_the_pipeline_and_is_recorded(tmp_path: Path) -> None:
    X, y = blobs(200, 40, 4, sep=6.0, seed=4)
    path = write(tmp_path / "wide.h5", X, y, dataset="wide")
    result = run_fit(path, "svm", pca=5, out=tmp_path / "r", n_jobs=1, n_boot=50)
    assert result.metrics["pca"] == 5 and result.run_name.endswith("__pca5")
    from featurebench.fit.bundle import load_bundle

    pipeline = load_bundle(result.bundle_path).estimator
    assert pipeline.named_steps["pca"].n_components_ == 5
    assert pipeline.named_steps["pca"].n_samples_ == 150  # the train slice only
    with pytest.raises(FeaturebenchError, match="--pca"):
        run_fit(path, "svm", pca=500, out=tmp_path / "r2", n_jobs=1)


def test_svm_accuracy_equals_rank1(tmp_path: Path) -> None:
    """Overlapping classes, where SVC's vote-based predict and its ovr decision function disagree
    on some rows: the run's prediction is the top-scored class, so the two numbers are one."""
    X, y = blobs(400, 4, 5, sep=1.5, seed=9)
    path = write(tmp_path / "hard.h5", X, y, dataset="hard")
    m = run_fit(path, "svm", grid='{"C": [1]}', out=tmp_path / "r", n_jobs=1, n_boot=50).metrics
    assert m["score_kind"] == "decision"
    assert m["accuracy"] == m["rank1"]
    assert 0.3 < m["accuracy"] < 0.95
