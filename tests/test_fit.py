"""featurebench fit: grids, splits, search, metrics, out-of-core, bundles and the run record.

Synthetic feature files written with the store's own writer; offline and fast
(n_jobs <= 2, small grids).
"""

from __future__ import annotations

import json
import re
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

from featurebench.errors import FeaturebenchError
from featurebench.fit import metrics as M
from featurebench.fit.bundle import load_bundle, save_bundle, untrusted_types
from featurebench.fit.grids import PRESETS, load_grid
from featurebench.fit.memory import parse_memory
from featurebench.fit.outofcore import ReadStats, fit_out_of_core
from featurebench.fit.record import METRICS_KEYS
from featurebench.fit.rows import Rows, iter_rows, read_selection
from featurebench.fit.run import run_fit
from featurebench.fit.search import search
from featurebench.fit.splits import make_split
from featurebench.fit.warn import FitWarning
from featurebench.store.reader import open_feature_file
from featurebench.store.writer import write_feature_arrays

REPO = Path(__file__).resolve().parents[1]


def blobs(n: int, dim: int, n_classes: int, sep: float, seed: int = 0, priors=None):
    """Gaussian blobs: class k centred at ``sep * e_k`` (unit noise), rows shuffled."""
    rng = np.random.default_rng(seed)
    y = rng.choice(n_classes, size=n, p=priors) if priors is not None else np.arange(n) % n_classes
    y = rng.permutation(y)
    centres = np.zeros((n_classes, dim))
    centres[np.arange(n_classes), np.arange(n_classes) % dim] = sep
    X = centres[y] + rng.normal(size=(n, dim))
    return X.astype(np.float32), y


def write(path: Path, X, y, names=None, **attrs) -> Path:
    names = names or [f"class{k}" for k in range(int(np.max(y)) + 1)]
    return write_feature_arrays(path, X, y, names, attrs={"model": "synthetic", **attrs})


@pytest.fixture()
def separable(tmp_path: Path) -> Path:
    """3 imbalanced, well-separated classes (60/25/15 %), 8-d."""
    X, y = blobs(480, 8, 3, sep=8.0, seed=1, priors=[0.6, 0.25, 0.15])
    return write(tmp_path / "separable.h5", X, y, ["rose", "tulip", "daisy"], dataset="toyflowers")


# --- grids --------------------------------------------------------------------------------------------

def test_grid_presets_json_yaml_and_errors(tmp_path: Path) -> None:
    assert load_grid(None, "logreg") == {"C": [0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0]}
    assert load_grid("classic-ch10", "logreg") == {"C": [1e-4, 1e-3, 1e-2, 0.1, 1.0]}
    assert PRESETS["classic-ch3"]["C"] == [0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0]
    assert load_grid('{"C": [0.5, 2]}', "logreg") == {"C": [0.5, 2]}
    assert load_grid('{"C": 3}', "logreg") == {"C": [3]}
    yaml_file = tmp_path / "grid.yaml"
    yaml_file.write_text("n_neighbors: [1, 3]\nweights: [uniform]\n")
    assert load_grid(str(yaml_file), "knn") == {"n_neighbors": [1, 3], "weights": ["uniform"]}
    json_file = tmp_path / "grid.json"
    json_file.write_text('{"alpha": [0.001]}')
    assert load_grid(str(json_file), "sgd") == {"alpha": [0.001]}
    assert len(load_grid(None, "logreg", protocol="probe")["C"]) == 45
    with pytest.raises(FeaturebenchError, match="neither a preset"):
        load_grid("no-such-grid", "logreg")
    with pytest.raises(FeaturebenchError, match="not valid JSON"):
        load_grid("{C: [1]}", "logreg")
    with pytest.raises(FeaturebenchError, match="Unknown classifier"):
        load_grid(None, "forest")


def test_grid_with_unknown_parameter_names_the_valid_ones(separable: Path, tmp_path: Path) -> None:
    with pytest.raises(FeaturebenchError, match=r"gamma.*does not have.*C"):
        run_fit(separable, "logreg", grid='{"gamma": [1]}', out=tmp_path / "r", n_jobs=1)


def test_parse_memory() -> None:
    assert parse_memory("512MB") == 512_000_000
    assert parse_memory("2GiB") == 2 * 2**30
    assert parse_memory(1000) == 1000
    assert 0 < parse_memory("10%") < parse_memory(None) * 2
    with pytest.raises(FeaturebenchError, match="max-memory"):
        parse_memory("lots")


# --- search -------------------------------------------------------------------------------------------

def test_separable_file_known_best_C_and_accuracy(separable: Path, tmp_path: Path) -> None:
    # Tiny C shrinks the weights to zero: only the (unpenalised) intercept is left, which predicts the
    # majority class (~60 %). C = 10 separates perfectly; among ties the first grid value wins.
    result = run_fit(separable, "logreg", grid='{"C": [1e-6, 1e-5, 10, 100]}', out=tmp_path / "r", n_jobs=2)
    m = result.metrics
    assert m["best_params"] == {"C": 10.0}
    scores = {row["params"]["C"]: row["mean_test_score"] for row in m["cv"]["results"]}
    assert 0.5 < scores[1e-6] < 0.7
    assert scores[10.0] >= 0.99
    assert m["accuracy"] >= 0.97 and m["rank1"] >= 0.97
    assert m["accuracy_ci95"][0] <= m["accuracy"] <= m["accuracy_ci95"][1]
    assert m["rank5"] is None  # 3 classes
    assert m["cv"]["param"] == "C"
    assert m["n_train"] == 360 and m["n_test"] == 120 and m["split"] == "index"
    assert result.run_name == "toyflowers__synthetic__logreg"


def test_fast_logreg_path_agrees_with_gridsearchcv() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV

    X, y = blobs(450, 20, 4, sep=1.8, seed=3)
    X += 3.0  # a common offset, like non-negative CNN features
    Cs = [1e-3, 1e-2, 0.1, 1.0, 10.0]
    ours = search(X, y, "logreg", {"C": Cs}, cv=3, n_jobs=2)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        naive = GridSearchCV(LogisticRegression(max_iter=5000, tol=1e-8), {"C": Cs}, cv=3).fit(X, y)
    fold_size = len(y) / 3
    for row, reference in zip(ours.table, naive.cv_results_["mean_test_score"]):
        assert abs(row["mean_test_score"] - reference) <= 2 / fold_size, (row, reference)
    best_reference = naive.cv_results_["mean_test_score"].max()
    chosen = naive.cv_results_["mean_test_score"][Cs.index(ours.best_params["C"])]
    assert chosen >= best_reference - 2 / fold_size
    # The refit model is a plain LogisticRegression on the raw features, equal to a cold fit.
    clf = ours.estimator.named_steps["clf"]
    with threadpool_limits(1):
        cold = LogisticRegression(C=ours.best_params["C"], max_iter=5000, tol=1e-8).fit(X, y)
    assert np.mean(clf.predict(X) == cold.predict(X)) >= 0.99
    assert clf.coef_.dtype == np.float32 and clf.n_features_in_ == 20


def test_wide_features_match_a_cold_converged_fit() -> None:
    from sklearn.linear_model import LogisticRegression

    X, y = blobs(90, 400, 3, sep=3.0, seed=4)
    X += 1.0
    result = search(X, y, "logreg", {"C": [0.01, 1.0]}, cv=3, n_jobs=1)
    clf = result.estimator.named_steps["clf"]
    assert clf.coef_.shape == (3, 400) and clf.get_params()["tol"] == 1e-4
    cold = LogisticRegression(C=result.best_params["C"], max_iter=5000, tol=1e-8).fit(X, y)
    np.testing.assert_allclose(clf.decision_function(X), cold.decision_function(X), atol=2e-2, rtol=2e-2)


def test_probe_protocol(separable: Path, tmp_path: Path) -> None:
    result = run_fit(separable, "logreg", protocol="probe", out=tmp_path / "r", n_jobs=1)
    m = result.metrics
    assert m["protocol"] == "probe" and m["scoring"] == "balanced_accuracy" and m["cv_folds"] == 3
    assert len(m["cv"]["results"]) == 45
    assert m["search_details"]["selection"] == "middle of the best plateau"
    assert m["mean_per_class_accuracy"] >= 0.97
    assert result.run_name.endswith("__probe")


@pytest.mark.parametrize("clf, grid", [
    ("linsvm", '{"C": [0.1, 1]}'),
    ("svm", '{"C": [1, 10], "gamma": ["scale"]}'),
    ("knn", '{"n_neighbors": [1, 5]}'),
    ("hgb", '{"max_iter": [20], "learning_rate": [0.1]}'),
    ("xgb", '{"n_estimators": [20], "max_depth": [2], "learning_rate": [0.3]}'),
    ("sgd", '{"alpha": [1e-4, 1e-2]}'),
])
def test_every_classifier_fits_scores_and_round_trips(separable: Path, tmp_path: Path, clf: str, grid: str) -> None:
    result = run_fit(separable, clf, grid=grid, out=tmp_path / "r", n_jobs=1, n_boot=200)
    assert result.metrics["accuracy"] >= 0.95
    assert result.metrics["classifier"] == clf
    bundle = load_bundle(result.bundle_path)  # our allow-list covers every registered classifier
    ff = open_feature_file(separable)
    X = ff.read_rows(ff.split_index)
    assert [bundle.label_names[i] for i in bundle.estimator.predict(X)][:5] == \
        [ff.label_names[i] for i in bundle.estimator.predict(X)][:5]


# --- no leakage ---------------------------------------------------------------------------------------

def test_scaler_and_search_never_see_test_rows(tmp_path: Path, monkeypatch) -> None:
    from featurebench.fit import logreg_path

    X, y = blobs(400, 6, 2, sep=4.0, seed=5)
    split = int(400 * 0.75)
    X[split:] += 1e6  # test rows: a huge offset any leak would show
    path = write(tmp_path / "leak.h5", X, y)
    seen_max = []
    original = logreg_path._Working.__init__

    def spy(self, data, *args, **kwargs):
        seen_max.append(float(np.max(data)))
        original(self, data, *args, **kwargs)

    monkeypatch.setattr(logreg_path._Working, "__init__", spy)
    result = run_fit(path, "logreg", grid='{"C": [0.1, 1]}', scale="standard", out=tmp_path / "r", n_jobs=2)
    assert len(seen_max) == 4 and max(seen_max) < 100  # 3 folds + refit, all on train rows only
    scaler = load_bundle(result.bundle_path).estimator.named_steps["scale"]
    np.testing.assert_allclose(scaler.mean_, X[:split].mean(axis=0), atol=1e-3)
    assert scaler.n_samples_seen_ == split
    # The generic GridSearchCV path: the scaler inside the pipeline is fitted on train rows only.
    result = run_fit(path, "linsvm", grid='{"C": [1]}', scale="standard", out=tmp_path / "r2", n_jobs=1)
    scaler = load_bundle(result.bundle_path).estimator.named_steps["scale"]
    assert np.abs(scaler.mean_).max() < 100 and scaler.n_samples_seen_ == split


# --- metrics ------------------------------------------------------------------------------------------

def test_rank_k_against_hand_computed_cases() -> None:
    scores = np.array([
        [0.1, 0.5, 0.3, 0.1],   # true 2: rank 2 (behind class 1)
        [0.7, 0.1, 0.1, 0.1],   # true 0: rank 1
        [0.2, 0.3, 0.4, 0.1],   # true 3: rank 4
        [0.25, 0.25, 0.25, 0.25],  # true 2, all tied: classes 0 and 1 come first -> rank 3
    ])
    y = np.array([2, 0, 3, 2])
    np.testing.assert_array_equal(M.true_class_rank(scores, y), [1, 0, 3, 2])
    assert M.rank_k_accuracy(scores, y, 1) == 0.25
    assert M.rank_k_accuracy(scores, y, 2) == 0.5
    assert M.rank_k_accuracy(scores, y, 3) == 0.75
    assert M.rank_k_accuracy(scores, y, 4) == 1.0
    # A class the estimator never saw scores -inf and ranks last.
    full = M.expand_scores(np.array([[0.9, 0.1]]), np.array([0, 2]), 3)
    assert full[0, 1] == -np.inf and M.true_class_rank(full, np.array([1]))[0] == 2


def test_evaluate_metrics_and_bootstrap() -> None:
    y_true = np.array([0, 0, 1, 1, 2, 2, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 2, 2, 2, 0])
    scores = np.eye(3)[y_pred]
    out = M.evaluate(y_true, y_pred, scores, ["a", "b", "c"], n_boot=500)
    assert out["accuracy"] == 0.75
    assert out["mean_per_class_accuracy"] == pytest.approx((0.5 + 1.0 + 0.75) / 3)
    assert out["confusion"]["matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 3]]
    assert [c["support"] for c in out["per_class"]] == [2, 2, 4]
    low, high = out["accuracy_ci95"]
    assert low < 0.75 < high
    assert M.bootstrap_ci(np.ones(10)) == (1.0, 1.0)
    half = np.r_[np.ones(50), np.zeros(50)]
    assert M.bootstrap_ci(half, seed=1) == M.bootstrap_ci(half, seed=1)
    text = M.classification_report_text(y_true, y_pred, ["a", "b", "c"])
    assert "a" in text and "macro avg" in text


# --- splits -------------------------------------------------------------------------------------------

def test_stratified_split_is_seeded_and_recorded(separable: Path, tmp_path: Path) -> None:
    with open_feature_file(separable) as ff:
        a = make_split(ff, stratified=True, seed=7)
        b = make_split(ff, stratified=True, seed=7)
        np.testing.assert_array_equal(a.test.numbers(), b.test.numbers())
        counts = np.bincount(a.y_test, minlength=3) / len(a.y_test)
        np.testing.assert_allclose(counts, np.bincount(ff.labels) / ff.n_rows, atol=0.02)
    result = run_fit(separable, "logreg", grid='{"C": [1]}', stratified=True, seed=7, out=tmp_path / "r", n_jobs=1)
    saved = json.loads((result.run_dir / "split.json").read_text())
    assert saved["test_rows"] == a.test.numbers().tolist() and saved["seed"] == 7
    assert result.metrics["split"] == "stratified" and result.run_name.endswith("__stratified")


def test_missing_class_warns_loudly(tmp_path: Path) -> None:
    X, y = blobs(200, 4, 3, sep=6.0, seed=2)
    y[:150][y[:150] == 2] = 0  # class 2 only in the test slice
    path = write(tmp_path / "missing.h5", X, y, ["a", "b", "c"])
    with pytest.warns(FitWarning, match=r"NO train rows \(c\)"):
        result = run_fit(path, "logreg", grid='{"C": [1]}', out=tmp_path / "r", n_jobs=1)
    assert any("NO train rows" in w for w in result.metrics["warnings"])
    assert result.metrics["per_class"][2]["recall"] == 0.0
    assert load_bundle(result.bundle_path).label_names == ["a", "b"]


def test_separate_test_file(tmp_path: Path) -> None:
    X, y = blobs(300, 5, 2, sep=6.0, seed=8)
    train = write(tmp_path / "train.h5", X[:200], y[:200], ["cat", "dog"])
    test = write(tmp_path / "test.h5", X[200:], y[200:], ["cat", "dog"])
    result = run_fit(train, "logreg", grid='{"C": [1]}', test_file=test, out=tmp_path / "r", n_jobs=1)
    assert result.metrics["split"] == "test-file"
    assert result.metrics["n_train"] == 200 and result.metrics["n_test"] == 100
    assert result.metrics["accuracy"] >= 0.95
    other = write(tmp_path / "other.h5", X[200:], y[200:], ["cat", "dog"], model="another-model")
    with pytest.raises(FeaturebenchError, match="extracted differently"):
        run_fit(train, "logreg", grid='{"C": [1]}', test_file=other, out=tmp_path / "r", n_jobs=1)


def test_rows_selection_reads_only_selected_rows(separable: Path) -> None:
    with open_feature_file(separable) as ff:
        every = ff.read_rows()
        pick = np.array([3, 4, 5, 100, 101, 479])
        np.testing.assert_array_equal(read_selection(ff, Rows.of(pick), block=7), every[pick])
        assert Rows.of(np.array([5, 6, 7])).is_range
        seen = sorted(p for positions, _ in iter_rows(ff, Rows(10, 50), block=16) for p in positions)
        assert seen == list(range(40))


# --- run folder ---------------------------------------------------------------------------------------

def _documented_keys() -> list[str]:
    table = (REPO / "docs" / "metrics.md").read_text()
    keys: list[str] = []
    for line in table.splitlines():
        if line.startswith("| `"):
            keys += re.findall(r"`([a-z_0-9]+)`", line.split("|")[1])
    return keys


def test_metrics_json_has_every_documented_key(separable: Path, tmp_path: Path) -> None:
    result = run_fit(separable, "logreg", grid='{"C": [0.1, 1]}', out=tmp_path / "r", n_jobs=1,
                     command="featurebench fit separable.h5 --clf logreg")
    on_disk = json.loads((result.run_dir / "metrics.json").read_text())
    documented = _documented_keys()
    assert len(documented) >= 35 and set(documented) == set(METRICS_KEYS)
    assert not [k for k in documented if k not in on_disk]
    assert on_disk["schema"] == "featurebench-run" and on_disk["schema_version"] == 1
    assert on_disk["kind"] == "features" and on_disk["random_init"] is False
    assert on_disk["provenance"]["model"] == "synthetic" and on_disk["provenance"]["split_index"] == 360
    assert on_disk["versions"]["scikit-learn"] and on_disk["command"].startswith("featurebench fit")
    assert on_disk["feature_file_bytes"] == separable.stat().st_size
    assert [c["label"] for c in on_disk["per_class"]] == ["rose", "tulip", "daisy"]
    assert on_disk["cv"]["results"][0]["params"] == {"C": 0.1}
    for name in ("cv_results.csv", "classification_report.txt", "confusion.csv", "model.skops"):
        assert (result.run_dir / name).is_file()
    csv_text = (result.run_dir / "cv_results.csv").read_text().splitlines()
    assert csv_text[0].startswith("param_C,rank_test_score,mean_test_score,std_test_score") and len(csv_text) == 3
    assert (result.run_dir / "confusion.csv").read_text().startswith("true\\predicted,rose,tulip,daisy")
    assert "daisy" in (result.run_dir / "classification_report.txt").read_text()
    try:  # the report module's own schema check, when it is there
        from featurebench.report.collect import validate
    except ImportError:
        return
    validate(on_disk)


def test_refuses_to_overwrite_without_force_and_skips_existing(separable: Path, tmp_path: Path) -> None:
    first = run_fit(separable, "logreg", grid='{"C": [1]}', out=tmp_path / "r", n_jobs=1)
    with pytest.raises(FeaturebenchError, match="already exists.*--force"):
        run_fit(separable, "logreg", grid='{"C": [1]}', out=tmp_path / "r", n_jobs=1)
    skipped = run_fit(separable, "logreg", grid='{"C": [1]}', out=tmp_path / "r", n_jobs=1, skip_existing=True)
    assert skipped.skipped and skipped.metrics["created"] == first.metrics["created"]
    again = run_fit(separable, "logreg", grid='{"C": [10]}', out=tmp_path / "r", n_jobs=1, force=True)
    assert again.metrics["best_params"] == {"C": 10.0}
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == [first.run_name]  # no temp folders left
    named = run_fit(separable, "logreg", grid='{"C": [1]}', out=tmp_path / "r", n_jobs=1,
                    run_name="{dataset}-{clf}-custom")
    assert named.run_name == "toyflowers-logreg-custom"


def test_incomplete_feature_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FeaturebenchError, match="does not exist"):
        run_fit(tmp_path / "nope.h5", "logreg", out=tmp_path / "r")


# --- bundles ------------------------------------------------------------------------------------------

def test_bundle_round_trip_and_tampered_bundle_is_refused(separable: Path, tmp_path: Path) -> None:
    result = run_fit(separable, "logreg", grid='{"C": [1]}', out=tmp_path / "r", n_jobs=1)
    bundle = load_bundle(result.bundle_path)
    assert bundle.label_names == ["rose", "tulip", "daisy"] and bundle.classifier == "logreg"
    assert bundle.extractor["model"] == "synthetic"
    with open_feature_file(separable) as ff:
        X = ff.read_rows(ff.split_index)
    assert np.mean(bundle.estimator.predict(X) == open_feature_file(separable).labels[360:]) >= 0.97

    tampered = tmp_path / "tampered.skops"
    with zipfile.ZipFile(result.bundle_path) as src, zipfile.ZipFile(tampered, "w") as dst:
        for item in src.namelist():
            data = src.read(item)
            if item == "schema.json":
                schema = data.decode()
                schema = schema.replace('"__class__": "LogisticRegression"', '"__class__": "system"')
                schema = schema.replace('"__module__": "sklearn.linear_model._logistic"', '"__module__": "os"')
                data = schema.encode()
            dst.writestr(item, data)
    assert "os.system" in untrusted_types(tampered)
    with pytest.raises(FeaturebenchError, match=r"Refusing to load .*tampered\.skops.*os\.system"):
        load_bundle(tampered)
    with pytest.raises(FeaturebenchError, match="not a skops model bundle"):
        (tmp_path / "junk.skops").write_text("not a zip")
        load_bundle(tmp_path / "junk.skops")


def test_bundle_save_load_plain_values(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    est = LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1])
    path = save_bundle(tmp_path / "m.skops", est, ["no", "yes"], {"model": "x", "input_size": [224, 224]},
                       "logreg", {"note": np.float32(0.5)})
    bundle = load_bundle(path)
    assert bundle.extractor["input_size"] == [224, 224] and bundle.meta == {"note": 0.5}


# --- out of core --------------------------------------------------------------------------------------

@pytest.fixture()
def big_file(tmp_path: Path) -> Path:
    """16,000 x 32 float32 (2 MB): large next to a 256 KB budget."""
    X, y = blobs(16_000, 32, 4, sep=3.0, seed=9)
    X += 2.0
    return write(tmp_path / "big.h5", X, y)


def test_out_of_core_with_tiny_budget_keeps_memory_bounded(big_file: Path) -> None:
    budget = 256 * 1024
    with open_feature_file(big_file) as ff:
        split = make_split(ff)
        train_bytes = len(split.train) * ff.feature_dim * 4
        # Warm up first so that imports and first-call caches do not count.
        fit_out_of_core(ff, split.train, split.y_train, "sgd", {"alpha": [1e-4]}, budget, max_epochs=1)
        stats = ReadStats()
        tracemalloc.start()
        try:
            result = fit_out_of_core(ff, split.train, split.y_train, "sgd", {"alpha": [1e-4]}, budget,
                                     scale="standard", seed=0, stats=stats, max_epochs=3)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert stats.max_rows_per_read * 32 * 4 <= budget // 16
    assert stats.reads > 100 and stats.epochs == [3]
    # Bounded by the budget (plus a fixed ~0.3 MB of per-call bookkeeping), far below the train slice.
    assert peak < 2 * budget and peak < train_bytes / 3, (peak, budget, train_bytes)
    assert result.best_row()["mean_test_score"] > 0.9


def test_run_fit_goes_out_of_core_for_sgd_and_logreg_only(big_file: Path, tmp_path: Path) -> None:
    sgd = run_fit(big_file, "sgd", grid='{"alpha": [1e-4]}', out=tmp_path / "r", max_memory="512KB", n_jobs=1)
    assert sgd.metrics["out_of_core"] and sgd.metrics["accuracy"] > 0.9
    logreg = run_fit(big_file, "logreg", grid='{"C": [1, 100]}', out=tmp_path / "r", max_memory="512KB", n_jobs=1)
    assert logreg.metrics["out_of_core"] and logreg.metrics["accuracy"] > 0.9
    assert "SGD" in logreg.metrics["search_method"] and len(logreg.metrics["cv"]["results"]) == 2
    assert type(load_bundle(logreg.bundle_path).estimator.named_steps["clf"]).__name__ == "SGDClassifier"
    with pytest.raises(FeaturebenchError, match=r"--clf svm needs the train slice in memory.*--clf sgd"):
        run_fit(big_file, "svm", out=tmp_path / "r", max_memory="512KB", n_jobs=1)
    stratified = run_fit(big_file, "sgd", grid='{"alpha": [1e-4]}', out=tmp_path / "r", max_memory="512KB",
                         n_jobs=1, stratified=True)  # row-number selections, read block by block
    assert stratified.metrics["out_of_core"] and stratified.metrics["accuracy"] > 0.9
    in_memory = run_fit(big_file, "sgd", grid='{"alpha": [1e-4]}', out=tmp_path / "r2", n_jobs=1)
    assert not in_memory.metrics["out_of_core"]


def test_fit_module_import_is_light() -> None:
    import subprocess
    import sys

    code = ("import sys, featurebench.fit, featurebench.fit.run; "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
