"""``fit --exclude ROWS_FILE`` and the run folder's per-test-row ``predictions.csv``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from featurebench.errors import FeaturebenchError
from featurebench.fit.run import run_fit
from featurebench.fit.warn import FitWarning
from featurebench.store.writer import write_feature_arrays


def _file(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    y = rng.permutation(np.arange(200) % 2)
    X = (y[:, None] * 3.0 + rng.normal(size=(200, 4))).astype(np.float32)
    paths = [f"{'ab'[k]}/img_{i:03d}.jpg" for i, k in enumerate(y)]
    return write_feature_arrays(tmp_path / "f.h5", X, y, ["a", "b"], paths=paths, attrs={"model": "synthetic"})


def test_predictions_csv_lists_every_test_row(tmp_path: Path) -> None:
    result = run_fit(_file(tmp_path), "logreg", grid='{"C": [1]}', out=tmp_path / "r", n_jobs=1, n_boot=50)
    with open(result.run_dir / "predictions.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["row"]) for r in rows] == list(range(150, 200))
    assert rows[0]["path"].endswith("img_150.jpg")
    wrong = sum(r["true"] != r["predicted"] for r in rows)
    assert wrong == round((1 - result.metrics["accuracy"]) * 50)
    assert all(0 <= float(r["score"]) <= 1 and float(r["score"]) >= float(r["true_score"]) for r in rows)


def test_exclude_drops_rows_by_number_and_path(tmp_path: Path) -> None:
    features = _file(tmp_path)
    rows_file = tmp_path / "exclude_rows.txt"
    from featurebench.store.reader import open_feature_file

    with open_feature_file(features) as f:
        test_path = f.paths[160]
    rows_file.write_text(f"# flagged\n3\n7  # note\n\n{test_path}\n")
    base = run_fit(features, "logreg", grid='{"C": [1]}', out=tmp_path / "r", n_jobs=1, n_boot=50)
    with pytest.warns(FitWarning, match="1 of its rows are test rows; they stay in the test set"):
        result = run_fit(features, "logreg", grid='{"C": [1]}', out=tmp_path / "r", n_jobs=1, n_boot=50,
                         exclude=rows_file)
    # Train rows go; the test row named in the file stays: the run is scored on the stored split's rows.
    assert result.run_name.endswith("__exclude-exclude_rows")
    assert (result.metrics["n_train"], result.metrics["n_test"]) == (148, 50)
    assert result.metrics["test_rows_digest"] == base.metrics["test_rows_digest"]
    assert result.metrics["test_set"]["kind"] == "stored"
    assert json.loads((result.run_dir / "metrics.json").read_text())["split_detail"]["excluded_rows"] == 3
    with open(result.run_dir / "predictions.csv") as handle:
        assert 160 in {int(r["row"]) for r in csv.DictReader(handle)}
    # Only with --exclude-test: a different metric on a different test-row set.
    audited = run_fit(features, "logreg", grid='{"C": [1]}', out=tmp_path / "r", n_jobs=1, n_boot=50,
                      exclude=rows_file, exclude_test=True)
    assert audited.run_name.endswith("__exclude-exclude_rows__audited-test")
    assert audited.metrics["n_test"] == 49
    assert audited.metrics["accuracy_metric"] == "accuracy on audited test rows"
    assert audited.metrics["test_set"]["kind"] == "audited"
    assert audited.metrics["test_rows_digest"] != base.metrics["test_rows_digest"]
    with open(audited.run_dir / "predictions.csv") as handle:
        assert 160 not in {int(r["row"]) for r in csv.DictReader(handle)}
    with pytest.raises(FeaturebenchError, match="--exclude-test needs --exclude"):
        run_fit(features, "logreg", out=tmp_path / "r4", exclude_test=True)
    rows_file.write_text("no/such/image.jpg\n")
    with pytest.raises(FeaturebenchError, match="line 1.*neither a row number nor a path"):
        run_fit(features, "logreg", grid='{"C": [1]}', out=tmp_path / "r2", n_jobs=1, exclude=rows_file)
    rows_file.write_text("9999\n")
    with pytest.raises(FeaturebenchError, match="past the last row"):
        run_fit(features, "logreg", grid='{"C": [1]}', out=tmp_path / "r3", n_jobs=1, exclude=rows_file)
