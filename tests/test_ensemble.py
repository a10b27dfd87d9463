"""``ensemble`` and ``fuse``: probabilities averaged over the same test images, rows checked by path,
feature files concatenated on the same rows with provenance; mismatches refused."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from featurebench.errors import FeaturebenchError


def feature_file(path, dim, seed, paths=None, n=60, noise=1.0):
    """Three noisy classes (class k shifts feature k), rows in one fixed order."""
    from featurebench.store.writer import write_feature_arrays

    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    X = rng.normal(0, noise, (n, dim))
    X[np.arange(n), labels] += 1.5
    paths = paths or [f"{'abc'[k]}/img_{i:03d}.jpg" for i, k in enumerate(labels)]
    return write_feature_arrays(path, X, labels, ["a", "b", "c"], paths,
                                attrs={"model": f"m{seed}", "dataset": "toy", "seed": 42})


def fit(path, out, clf="logreg"):
    from featurebench.fit import run_fit

    return run_fit(path, clf, grid='{"C": [1.0]}' if clf == "logreg" else None, cv=2, n_jobs=1, out=out,
                   command="test", n_boot=50).run_dir


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ens")
    a, b = feature_file(tmp / "a.h5", 6, 1), feature_file(tmp / "b.h5", 4, 2)
    return tmp, a, b, fit(a, tmp / "results"), fit(b, tmp / "results")


def test_ensemble_probabilities_are_the_members_average(two_runs):
    from featurebench.ensemble import run_ensemble
    from featurebench.fit.record import read_probabilities

    tmp, _, _, run_a, run_b = two_runs
    result = run_ensemble([run_a, run_b], tmp / "results", command="test")
    pa, pb = read_probabilities(run_a / "probabilities.npz"), read_probabilities(run_b / "probabilities.npz")
    pe = read_probabilities(result.run_dir / "probabilities.npz")
    assert pe["paths"] == pa["paths"] == pb["paths"] and len(pe["paths"]) == 15
    assert np.allclose(pe["scores"], (pa["scores"] + pb["scores"]) / 2, atol=1e-6)
    m = json.loads((result.run_dir / "metrics.json").read_text())
    assert (m["kind"], m["classifier"], m["extractor"]) == ("ensemble", "ensemble", "m1+m2")
    assert m["accuracy"] == pytest.approx(np.mean(pe["scores"].argmax(1) == pe["y_true"]))
    members = {x["run_name"]: x["accuracy"] for x in m["members"]}
    assert set(members) == {run_a.name, run_b.name}
    assert m["gain_over_best_member"] == pytest.approx(m["accuracy"] - max(members.values()))

    from featurebench.report.collect import collect_runs
    from featurebench.report.tables import markdown_summary

    text = markdown_summary(collect_runs(tmp / "results").runs)
    section = text.split("### Ensembles and their members")[1]
    assert run_a.name in section and run_b.name in section and "(ensemble of 2)" in text

    from featurebench.report import build_report

    build_report(tmp / "results", tmp / "report.html", plots=False)
    assert '<span class="badge">ensemble of 2</span>' in (tmp / "report.html").read_text()


def test_ensemble_realigns_reordered_rows_and_refuses_other_images(two_runs, tmp_path):
    import shutil

    from featurebench.ensemble import run_ensemble
    from featurebench.fit.record import read_probabilities, write_probabilities

    tmp, _, _, run_a, run_b = two_runs
    shuffled = tmp_path / "b-shuffled"
    shutil.copytree(run_b, shuffled)
    p = read_probabilities(run_b / "probabilities.npz")
    order = np.random.default_rng(0).permutation(len(p["paths"]))
    write_probabilities(shuffled / "probabilities.npz", [p["paths"][i] for i in order], p["y_true"][order],
                      p["scores"][order], p["label_names"])
    same = run_ensemble([run_a, run_b], tmp_path / "r1", command="test").metrics
    again = run_ensemble([run_a, shuffled], tmp_path / "r2", command="test").metrics
    assert again["accuracy"] == same["accuracy"] and again["confusion"] == same["confusion"]

    other = feature_file(tmp_path / "other.h5", 4, 3, paths=[f"x/{i}.jpg" for i in range(60)])
    with pytest.raises(FeaturebenchError, match="tested on different images"):
        run_ensemble([run_a, fit(other, tmp_path / "r3")], tmp_path / "r4")
    with pytest.raises(FeaturebenchError, match="at least 2"):
        run_ensemble([run_a], tmp_path / "r5")
    with pytest.raises(FeaturebenchError, match="no metrics.json"):
        run_ensemble([run_a, tmp_path], tmp_path / "r6")
    with pytest.raises(FeaturebenchError, match="decision scores") as refused:
        run_ensemble([run_a, fit(tmp / "b.h5", tmp_path / "r7", clf="linsvm")], tmp_path / "r8")
    from featurebench.fit.classifiers import make_estimator

    accepted = str(refused.value).split("predict_proba (")[1].split(")")[0].split(", ")
    assert accepted and all(hasattr(make_estimator(name), "predict_proba") for name in accepted)  # not svm today


def test_fuse_concatenates_the_same_rows_with_provenance(two_runs, tmp_path):
    from featurebench.ensemble import fuse_features
    from featurebench.store.reader import open_feature_file

    tmp, a, b, _, _ = two_runs
    summary = fuse_features([a, b], tmp_path / "ab.h5", block_rows=7, command="test", scale="none")
    assert (summary.n_rows, summary.feature_dim) == (60, 10)
    with h5py.File(a) as fa, h5py.File(b) as fb, open_feature_file(summary.output) as fused:
        assert np.array_equal(fused.features[()], np.concatenate([fa["features"][()], fb["features"][()]], axis=1))
        assert fused.paths == [p.decode() for p in fa["paths"][()]] and fused.split_index == fa.attrs["split_index"]
        parts = json.loads(fused.attrs["parts"])
        assert [(p["model"], p["columns"]) for p in parts] == [("m1", [0, 6]), ("m2", [6, 10])]
        assert fused.attrs["model"] == "m1+m2" and fused.attrs["model_source"] == "fused"
    fused_run = fit(summary.output, tmp_path / "res")
    m = json.loads((fused_run / "metrics.json").read_text())
    assert m["extractor"] == "m1+m2" and m["feature_dim"] == 10
    from featurebench.fit.predict import predict_images

    with pytest.raises(FeaturebenchError, match="fitted on fused features"):
        predict_images(fused_run / "model.skops", [str(tmp_path)])

    with pytest.raises(FeaturebenchError, match="already exists"):
        fuse_features([a, b], summary.output)
    other_order = feature_file(tmp_path / "c.h5", 3, 4, paths=[f"{'abc'[i % 3]}/img_{i:03d}.jpg"
                                                              for i in range(59, -1, -1)])
    with pytest.raises(FeaturebenchError, match="differ at row 0"):
        fuse_features([a, other_order], tmp_path / "ac.h5")
    short = feature_file(tmp_path / "d.h5", 3, 5, n=30)
    with pytest.raises(FeaturebenchError, match="hold 30 and 60 rows"):
        fuse_features([a, short], tmp_path / "ad.h5")
    assert not (tmp_path / "ac.h5").exists() and not (tmp_path / "ad.h5").exists()


def test_calibrated_svm_records_probabilities_and_joins_an_ensemble(two_runs, tmp_path):
    from featurebench.ensemble import run_ensemble
    from featurebench.fit import run_fit
    from featurebench.fit.bundle import load_bundle
    from featurebench.fit.record import read_probabilities

    tmp, a, b, run_a, _ = two_runs
    raw = run_fit(b, "svm", grid='{"C": [1.0]}', cv=2, n_jobs=1, out=tmp_path, n_boot=20).run_dir
    with pytest.raises(FeaturebenchError, match=r"decision scores.*--calibrate"):
        run_ensemble([run_a, raw], tmp_path / "e1")
    result = run_fit(b, "svm", grid='{"C": [1.0]}', cv=2, n_jobs=1, out=tmp_path, n_boot=20, calibrate=True)
    assert result.run_name.endswith("__calibrated") and result.metrics["score_kind"] == "probability"
    assert "CalibratedClassifierCV" in result.metrics["calibration"]["library"]
    proba = read_probabilities(result.run_dir / "probabilities.npz")
    assert np.allclose(proba["scores"].sum(axis=1), 1.0, atol=1e-5) and proba["score_kind"] == "probability"
    assert hasattr(load_bundle(result.bundle_path).estimator, "predict_proba")  # predict shows probabilities
    ensemble = run_ensemble([run_a, result.run_dir], tmp_path / "e2", command="test").metrics
    assert ensemble["n_test"] == 15 and ensemble["test_rows_digest"] == result.metrics["test_rows_digest"]


def test_fuse_scales_each_part_by_default_with_train_row_statistics(two_runs, tmp_path):
    from featurebench.ensemble import fuse_features
    from featurebench.store.reader import open_feature_file
    from featurebench.store.writer import write_feature_arrays

    tmp, a, b, _, _ = two_runs
    with open_feature_file(a) as fa, open_feature_file(b) as fb:
        raw = np.concatenate([fa.features[()], 100.0 * fb.features[()]], axis=1)  # b's block 100x larger
        labels, names, paths, i = fa.labels, fa.label_names, fa.paths, fa.split_index
    big = write_feature_arrays(tmp_path / "big.h5", 100.0 * raw[:, 6:], labels, names, paths,
                               attrs={"model": "big", "dataset": "toy", "seed": 42})
    summary = fuse_features([a, big], tmp_path / "ab.h5", block_rows=7, command="test")
    with open_feature_file(summary.output) as fused:
        X = fused.features[()]
        assert fused.attrs["fusion_scale"] == "standard" and "train rows [:45]" in fused.attrs["fusion_scale_method"]
    assert np.allclose(X[:i].mean(axis=0), 0, atol=1e-4) and np.allclose(X[:i].std(axis=0), 1, atol=1e-3)
    assert not np.allclose(X[i:].mean(axis=0), 0, atol=1e-3)  # test rows did not set the statistics
    # Changing test rows changes nothing about the train rows' scaled values.
    moved = raw.copy()
    moved[i:] += 50.0
    moved_b = write_feature_arrays(tmp_path / "moved.h5", 100.0 * moved[:, 6:], labels, names, paths,
                                   attrs={"model": "big", "dataset": "toy", "seed": 42})
    again = fuse_features([a, moved_b], tmp_path / "ab2.h5", command="test")
    with open_feature_file(again.output) as fused2:
        assert np.allclose(fused2.features[:i], X[:i])
    block = fuse_features([a, big], tmp_path / "ab3.h5", command="test", scale="block")
    with open_feature_file(block.output) as fused3:
        Y = fused3.features[()]
        assert fused3.attrs["fusion_scale"] == "block"
    for cols in (slice(0, 6), slice(6, 10)):
        assert np.linalg.norm(Y[:i, cols], axis=1).mean() == pytest.approx(1.0, rel=1e-4)
    with pytest.raises(FeaturebenchError, match="--scale 'zscore'"):
        fuse_features([a, big], tmp_path / "ab4.h5", scale="zscore")
    run = fit(summary.output, tmp_path / "res")
    m = json.loads((run / "metrics.json").read_text())
    assert m["fusion_scale"] == "standard" and m["provenance"]["fusion_scale"] == "standard"
