"""Comparisons you could publish: runs grouped by test rows, repeats ranked by their mean, paired tests.

Real (tiny, synthetic) `fit` runs where the behaviour depends on what fit records; fixture records
where it depends on the report alone. No TensorFlow.
"""

from __future__ import annotations

import json
import sys
from math import comb
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from fixtures_report import make_metrics, write_run  # noqa: E402

from featurebench.errors import FeaturebenchError  # noqa: E402
from featurebench.fit.run import run_fit  # noqa: E402
from featurebench.report import build_report, collect_runs, tables  # noqa: E402
from featurebench.report.compare import mcnemar_exact, paired_splits  # noqa: E402
from featurebench.store.writer import write_feature_arrays  # noqa: E402

FIT = {"n_jobs": 1, "n_boot": 20, "cv": 2}


def _features(path: Path, n: int = 160, noise: float = 1.6, **attrs) -> Path:
    rng = np.random.default_rng(3)
    y = rng.permutation(np.arange(n) % 2)
    X = (y[:, None] * 2.0 + rng.normal(scale=noise, size=(n, 5))).astype(np.float32)
    paths = [f"{'ab'[k]}/img_{i:03d}.jpg" for i, k in enumerate(y)]
    return write_feature_arrays(path, X, y, ["a", "b"], paths=paths,
                                attrs={"model": "synthetic", "dataset": "toy", **attrs})


def _rows(results: Path) -> dict[str, dict]:
    return {row["run"]: row for _, row in tables.leaderboard_rows(collect_runs(results).runs)}


def test_mcnemar_p_value_equals_a_hand_computation():
    best = {f"i{k}": ok for k, ok in enumerate([1, 1, 1, 1, 1, 1, 0, 0, 1, 1])}
    other = {f"i{k}": ok for k, ok in enumerate([0, 0, 0, 1, 1, 0, 1, 0, 0, 1])}
    # discordant: best only right on i0, i1, i2, i5, i8 (b = 5); other only right on i6 (c = 1)
    result = mcnemar_exact({k: bool(v) for k, v in best.items()}, {k: bool(v) for k, v in other.items()})
    hand = min(1.0, 2 * sum(comb(6, k) for k in range(0, 2)) / 2 ** 6)  # two-sided exact binomial, n = b + c = 6
    assert (result["b"], result["c"]) == (5, 1)
    assert result["p_value"] == pytest.approx(hand) == pytest.approx(0.21875)
    assert mcnemar_exact({"x": True}, {"x": True})["p_value"] == 1.0
    assert mcnemar_exact({"x": True}, {"y": True}) is None  # not the same images: no test


def test_paired_splits_pairs_by_seed_and_digest():
    def rec(accs, digests=("d1", "d2", "d3")):
        return {"repeats": {"splits": [{"seed": 40 + i, "accuracy": a, "test_rows_digest": d}
                                       for i, (a, d) in enumerate(zip(accs, digests))]}}
    test = paired_splits(rec([0.90, 0.92, 0.91]), rec([0.88, 0.91, 0.87]))
    assert test["n_splits"] == 3 and (test["wins"], test["losses"]) == (0, 3)
    assert test["mean_diff"] == pytest.approx(-0.0233333, abs=1e-6)
    from scipy.stats import ttest_rel
    assert test["p_value"] == pytest.approx(ttest_rel([0.88, 0.91, 0.87], [0.90, 0.92, 0.91]).pvalue)
    assert paired_splits(rec([0.9, 0.9, 0.9]), rec([0.8, 0.8, 0.8], ("x", "y", "z"))) is None


def test_every_run_records_its_test_rows_and_split_count(tmp_path):
    features = _features(tmp_path / "f.h5")
    one = run_fit(features, "logreg", grid='{"C": [1]}', out=tmp_path / "r", **FIT).metrics
    again = run_fit(features, "knn", grid='{"n_neighbors": [3]}', out=tmp_path / "r", **FIT).metrics
    strat = run_fit(features, "logreg", grid='{"C": [1]}', out=tmp_path / "r", stratified=True, **FIT).metrics
    rep = run_fit(features, "logreg", grid='{"C": [1]}', out=tmp_path / "r", repeats=2, **FIT).metrics
    assert one["test_rows_digest"].startswith("sha256:") and one["n_splits"] == 1
    assert one["test_rows_digest"] == again["test_rows_digest"] != strat["test_rows_digest"]
    assert one["test_set"] == {"kind": "stored", "description": "stored split", "n_rows": 40}
    assert rep["n_splits"] == 2 and rep["test_set"]["kind"] == "repeats"
    assert rep["repeats"]["splits"][0]["test_rows_digest"] == strat["test_rows_digest"]  # seed 42 = --stratified
    assert rep["test_rows_digest"] not in (one["test_rows_digest"], strat["test_rows_digest"])


def test_runs_on_other_test_rows_are_ranked_apart_and_the_headline_comes_from_the_main_group(tmp_path):
    features = _features(tmp_path / "f.h5")
    out = tmp_path / "r"
    base = run_fit(features, "logreg", grid='{"C": [1]}', out=out, **FIT)
    knn = run_fit(features, "knn", grid='{"n_neighbors": [1]}', out=out, **FIT)
    rows_file = tmp_path / "exclude_rows.txt"
    base_csv = (base.run_dir / "predictions.csv").read_text().splitlines()[1:]
    wrong = [line.split(",")[0] for line in base_csv if line.split(",")[2] != line.split(",")[3]]
    rows_file.write_text("\n".join(["0", "1", *wrong]) + "\n")  # two train rows + the base run's errors
    with pytest.warns(Warning, match="stay in the test set"):
        kept = run_fit(features, "logreg", grid='{"C": [1]}', out=out, exclude=rows_file, **FIT)
    audited = run_fit(features, "logreg", grid='{"C": [1]}', out=out, exclude=rows_file, exclude_test=True, **FIT)
    strat = run_fit(features, "logreg", grid='{"C": [1]}', out=out, stratified=True, seed=7, **FIT)
    assert audited.metrics["accuracy"] > base.metrics["accuracy"]  # removing the errors inflates it
    rows = _rows(out)
    main = {name for name, row in rows.items() if row["main_group"]}
    assert main == {base.run_name, knn.run_name, kept.run_name}
    assert not rows[audited.run_name]["main_group"] and not rows[strat.run_name]["main_group"]
    assert "audited test rows" in rows[audited.run_name]["group"]
    assert "other test rows than the main group" in rows[strat.run_name]["group"]
    assert rows[audited.run_name]["rank_in_group"] == 1 and not rows[audited.run_name]["best_in_dataset"]
    summary = build_report(out, tmp_path / "report.html", md_path=tmp_path / "report.md", plots=False)
    assert summary.best["toy"].name in main
    md = (tmp_path / "report.md").read_text()
    leaderboard = md.split("### Leaderboard", 1)[1].split("###", 1)[0]
    assert audited.run_name not in leaderboard and strat.run_name not in leaderboard
    assert audited.run_name in md.split("### Other test-row sets", 1)[1]


def test_differences_carry_mcnemar_p_values_from_the_runs_predictions(tmp_path):
    features = _features(tmp_path / "f.h5", noise=2.5)
    out = tmp_path / "r"
    a = run_fit(features, "logreg", grid='{"C": [1]}', out=out, **FIT)
    b = run_fit(features, "knn", grid='{"n_neighbors": [1]}', out=out, **FIT)
    rows = _rows(out)
    best, other = sorted((a, b), key=lambda r: -r.metrics["accuracy"])
    row = rows[other.run_name]

    def correct(run):
        lines = (run.run_dir / "predictions.csv").read_text().splitlines()[1:]
        return {line.split(",")[1]: line.split(",")[2] == line.split(",")[3] for line in lines}
    assert row["p_value"] == pytest.approx(mcnemar_exact(correct(best), correct(other))["p_value"])
    assert row["delta_to_best"] == pytest.approx(other.metrics["accuracy"] - best.metrics["accuracy"])
    assert row["significant"] == (row["p_value"] < 0.05)
    assert "McNemar exact" in row["comparison"]
    assert rows[best.run_name]["p_value"] is None
    frame = tables.runs_dataframe(collect_runs(out).runs)
    assert frame.loc[frame["run"] == other.run_name, "p_value"].item() == pytest.approx(row["p_value"])


def test_a_repeats_run_is_ranked_charted_and_headlined_by_its_mean(tmp_path):
    def repeated(name, first, accs, **extra):
        record = make_metrics(name, "flowers", accuracy=first, n_test=100, **extra)
        record.update(n_splits=len(accs), test_rows_digest="sha256:same-splits",
                      test_set={"kind": "repeats", "description": "3 stratified splits (seeds 42..44)", "n_rows": 100},
                      repeats={"n": 3, "seeds": [42, 43, 44], "accuracy_mean": float(np.mean(accs)),
                               "accuracy_std": float(np.std(accs, ddof=1)),
                               "splits": [{"seed": 42 + i, "accuracy": a, "test_rows_digest": f"d{i}"}
                                          for i, a in enumerate(accs)]})
        return record
    write_run(tmp_path, repeated("lucky-first-split", 0.97, [0.97, 0.88, 0.85]))  # mean 0.90
    write_run(tmp_path, repeated("steady", 0.93, [0.93, 0.94, 0.95], seed=1))  # mean 0.94
    pairs = tables.leaderboard_rows(collect_runs(tmp_path).runs)
    assert [row["run"] for _, row in pairs] == ["steady", "lucky-first-split"]
    steady, lucky = pairs[0][1], pairs[1][1]
    assert steady["best_in_dataset"] and steady["score"] == pytest.approx(0.94)
    assert lucky["score"] == pytest.approx(0.90) and "paired over 3 splits" in lucky["comparison"]
    summary = build_report(tmp_path, tmp_path / "out" / "r.html", md_path=tmp_path / "out" / "r.md",
                           csv_path=tmp_path / "out" / "r.csv", plots=False)
    assert summary.best["flowers"].name == "steady"
    assert "94.00 ± 1.00% (mean of 3 splits)" in summary.describe()
    html = (tmp_path / "out" / "r.html").read_text()
    assert "94.00 ± 1.00" in html and "90.00 ± 6.24" in html
    md = (tmp_path / "out" / "r.md").read_text()
    assert "**94.00 ± 1.00**" in md and "first split 97.00" in md
    import pandas as pd
    frame = pd.read_csv(tmp_path / "out" / "r.csv")
    assert list(frame["run"]) == ["steady", "lucky-first-split"]
    assert list(frame["score"]) == pytest.approx([0.94, 0.90])
    assert frame["score_std"].tolist() == pytest.approx([0.01, float(np.std([0.97, 0.88, 0.85], ddof=1))])


def test_fit_summary_leads_with_the_mean_of_repeats(tmp_path):
    result = run_fit(_features(tmp_path / "f.h5"), "logreg", grid='{"C": [1]}', out=tmp_path / "r", repeats=3, **FIT)
    first = result.describe().splitlines()[0]
    mean, std = result.metrics["repeats"]["accuracy_mean"], result.metrics["repeats"]["accuracy_std"]
    assert f"test accuracy {mean:.4f} ± {std:.4f} (mean ± std over 3 splits" in first
    assert "95% CI of the mean" in first
    assert "first split:" in result.describe().splitlines()[1]


def test_old_records_without_a_digest_are_grouped_by_inference_and_labelled(tmp_path):
    write_run(tmp_path, make_metrics("old-a", accuracy=0.91))
    write_run(tmp_path, make_metrics("old-b", accuracy=0.93, seed=1))
    new = make_metrics("new", accuracy=0.99, seed=2)
    new.update(test_rows_digest="sha256:abc", n_splits=1,
               test_set={"kind": "stored", "description": "stored split", "n_rows": 120})
    write_run(tmp_path, new)
    rows = _rows(tmp_path)
    assert rows["old-a"]["group"] == rows["old-b"]["group"] != rows["new"]["group"]
    assert "inferred" in rows["old-a"]["group"]
    assert rows["old-b"]["main_group"] and rows["old-b"]["best_in_dataset"]  # the group most runs share
    assert not rows["new"]["main_group"] and rows["new"]["rank_in_group"] == 1


def test_old_records_get_their_digest_from_probabilities(tmp_path):
    features = _features(tmp_path / "f.h5")
    out = tmp_path / "r"
    new = run_fit(features, "logreg", grid='{"C": [1]}', out=out, **FIT)
    old = run_fit(features, "knn", grid='{"n_neighbors": [3]}', out=out, **FIT)
    record = json.loads((old.run_dir / "metrics.json").read_text())
    for key in ("test_rows_digest", "n_splits", "test_set"):
        del record[key]
    (old.run_dir / "metrics.json").write_text(json.dumps(record))
    rows = _rows(out)
    assert rows[old.run_name]["group"] == rows[new.run_name]["group"]
    assert "inferred" not in rows[old.run_name]["group"] and rows[old.run_name]["main_group"]


def test_shard_files_are_refused_by_fit_and_sweep_and_named_by_info(tmp_path):
    from featurebench.info import describe
    from featurebench.scale.sweep import run_sweep

    shard = _features(tmp_path / "shard.h5", shard_index=1, shard_count=3)
    with pytest.raises(FeaturebenchError, match=r"shard 2 of 3 .*featurebench merge"):
        run_fit(shard, "logreg", out=tmp_path / "r", **FIT)
    result = run_sweep([shard], ["logreg"], tmp_path / "s", {"grid": '{"C": [1]}', **FIT})
    assert not result.runs and "featurebench merge" in result.failures[0][2]
    assert "shard:        2 of 3" in describe(shard)


def test_grid_edges_are_said_and_recorded(tmp_path):
    from featurebench.fit.grids import grid_edges

    assert grid_edges({"C": [0.1, 1, 10]}, {"C": 10}) == [
        {"param": "C", "value": 10, "edge": "highest", "grid_min": 0.1, "grid_max": 10}]
    assert grid_edges([{"C": [0.1, 1]}, {"C": [10]}], {"C": 0.1})[0]["edge"] == "lowest"
    assert grid_edges({"C": [0.1, 1, 10]}, {"C": 1}) == []
    assert grid_edges({"C": [0.1, 10]}, {"C": 10}) == []  # two values: no inside to miss
    assert grid_edges({"kernel": ["a", "b", "c"]}, {"kernel": "c"}) == []
    grid = [1e-4, 1e-3, 1e-2]
    result = run_fit(_features(tmp_path / "f.h5", noise=0.3), "logreg", grid=json.dumps({"C": grid}),
                     out=tmp_path / "r", **FIT)
    chosen = result.metrics["best_params"]["C"]
    lines = [x for x in result.describe().splitlines() if x.startswith("grid edge")]
    if chosen in (grid[0], grid[-1]):
        side = "highest" if chosen == grid[-1] else "lowest"
        assert result.metrics["grid_edges"] == [{"param": "C", "value": chosen, "edge": side, "grid_min": 1e-4,
                                                 "grid_max": 1e-2}]
        assert len(lines) == 1 and f"C={chosen:g} is the {side} value of its grid (0.0001..0.01)" in lines[0]
    else:
        assert result.metrics["grid_edges"] == [] and not lines


def test_finetune_and_train_records_share_the_digest_of_fit_runs_on_the_same_images(tmp_path):
    """finetune, train and ensemble write their record through finetune.record.write_record (no TensorFlow here)."""
    from featurebench.training.record import build_record, write_record
    from featurebench.fit.record import read_probabilities

    fit_run = run_fit(_features(tmp_path / "f.h5"), "logreg", grid='{"C": [1]}', out=tmp_path / "r", **FIT)
    proba = read_probabilities(fit_run.run_dir / "probabilities.npz")
    order = np.random.default_rng(0).permutation(len(proba["paths"]))  # another row order: same rows
    paths, y = [proba["paths"][i] for i in order], proba["y_true"][order]
    scores = np.tile([0.3, 0.7], (len(y), 1))
    record = build_record(run_name="net", dataset="toy", extractor="net", layer="", pool="", weights="imagenet",
                          random_init=False, y_true=y, proba=scores, label_names=["a", "b"], seed=0, best_params={},
                          n_train=120, feature_dim=8, fit_seconds=1.0, predict_seconds=0.1, provenance={},
                          command="test", kind="scratch")
    run_dir = tmp_path / "r" / "net"
    run_dir.mkdir()
    write_record(run_dir, record, {}, paths, y, scores, ["a", "b"])
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved["test_rows_digest"] == fit_run.metrics["test_rows_digest"]
    assert saved["n_splits"] == 1 and saved["test_set"]["kind"] == "stored"
    rows = _rows(tmp_path / "r")
    assert rows["net"]["group"] == rows[fit_run.run_name]["group"] and rows["net"]["main_group"]
    assert "McNemar exact" in (rows["net"]["comparison"] or rows[fit_run.run_name]["comparison"])
