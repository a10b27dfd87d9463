"""audit: planted near-duplicates, flipped labels and outliers in a small synthetic set are found."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from featurebench.audit.run import run_audit
from featurebench.store.writer import write_feature_arrays

pytest.importorskip("cleanlab", reason="the label audit needs the [audit] extra (cleanlab): pip install -e '.[audit]'")


def _planted(tmp_path: Path):
    """4 well-separated classes, 400 rows (split at 300); 6 test rows copied into train with a
    little noise, 5% of the labels flipped, 2 rows far from every class."""
    rng = np.random.default_rng(0)
    n, dim = 400, 24
    y = rng.permutation(np.arange(n) % 4)
    centres = rng.normal(size=(4, dim)) * 4
    X = centres[y] + rng.normal(size=(n, dim))
    copies = rng.choice(np.arange(300, 400), 6, replace=False)
    targets = rng.choice(np.arange(0, 300), 6, replace=False)
    X[targets] = X[copies] + rng.normal(scale=0.02, size=(6, dim))
    y[targets] = y[copies]
    others = np.setdiff1d(np.arange(n), np.concatenate([targets, copies]))
    flipped = rng.choice(others, 20, replace=False)
    y_noisy = y.copy()
    y_noisy[flipped] = (y[flipped] + rng.integers(1, 4, 20)) % 4
    far = rng.choice(np.setdiff1d(others, flipped), 2, replace=False)
    X[far] = rng.normal(size=(2, dim)) * 40
    paths = [f"c{k}/img_{i:03d}.jpg" for i, k in enumerate(y_noisy)]
    path = write_feature_arrays(tmp_path / "planted.h5", X.astype(np.float32), y_noisy, ["a", "b", "c", "d"],
                                paths=paths, attrs={"model": "synthetic"})
    return path, set(zip(targets.tolist(), copies.tolist())), set(flipped.tolist()), set(far.tolist())


def test_audit_finds_planted_duplicates_flipped_labels_and_outliers(tmp_path: Path) -> None:
    path, dup_pairs, flipped, far = _planted(tmp_path)
    result = run_audit(path, out=tmp_path / "audit")
    record = json.loads((tmp_path / "audit" / "audit.json").read_text())
    found = {(p["train_row"], p["test_row"]) for p in record["near_duplicates"]["pairs"]}
    assert found == dup_pairs
    assert record["near_duplicates"]["accuracy"]["n_test_without"] == 100 - 6
    issues = {r["row"] for r in record["label_issues"]["rows"]}
    recall, precision = len(issues & flipped) / len(flipped), len(issues & flipped) / max(1, len(issues))
    assert recall >= 0.8 and precision >= 0.7, (recall, precision)
    assert far <= {r["row"] for r in record["outliers"]["rows"]}
    assert record["imbalance"]["counts"]["a"]["all"] > 0
    excluded = [int(line.split()[0]) for line in result.exclude_path.read_text().splitlines()
                if line and not line.startswith("#")]
    assert {t for t, _ in dup_pairs} <= set(excluded) and len(excluded) == len(set(excluded))
    assert "near-duplicate train/test pair" in result.describe()


def test_audit_uses_a_runs_test_rows_and_refit_excludes_them(tmp_path: Path) -> None:
    from featurebench.fit.run import run_fit

    path, dup_pairs, _, _ = _planted(tmp_path)
    run = run_fit(path, "logreg", grid='{"C": [1]}', out=tmp_path / "r", n_jobs=1, n_boot=20)
    result = run_audit(path, run_dir=run.run_dir, labels=False)
    assert result.path == run.run_dir / "audit.json"
    acc = result.record["near_duplicates"]["accuracy"]
    assert acc["source"].startswith("run ") and acc["all"] == pytest.approx(run.metrics["accuracy"])
    assert result.record["label_issues"] == {"skipped": "--no-labels"}
    refit = run_fit(path, "logreg", grid='{"C": [1]}', out=tmp_path / "r", n_jobs=1, n_boot=20,
                    exclude=result.exclude_path)
    assert refit.metrics["n_train"] == run.metrics["n_train"] - len({t for t, _ in dup_pairs})


def test_audit_command_prints_results_to_stdout_progress_to_stderr_without_tensorflow(tmp_path: Path) -> None:
    import subprocess
    import sys

    path, _, _, _ = _planted(tmp_path)
    code = ("import sys; from featurebench.cli import main; sys.argv = ['featurebench', 'audit', sys.argv[1], "
            "'--out', sys.argv[2]]\ntry:\n    main()\nfinally:\n    print('TF', 'tensorflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code, str(path), str(tmp_path / "a")], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "6 near-duplicate train/test pair(s)" in done.stdout and "TF False" in done.stdout
    assert "label issues: fold 5/5 done" in done.stderr
    assert (tmp_path / "a" / "audit.json").is_file()


def test_missing_cleanlab_is_a_clear_error_before_any_work(tmp_path: Path, monkeypatch) -> None:
    import sys

    from featurebench.errors import FeaturebenchError

    path, _, _, _ = _planted(tmp_path)
    monkeypatch.setitem(sys.modules, "cleanlab", None)  # import cleanlab -> ImportError
    with pytest.raises(FeaturebenchError, match=r"needs cleanlab: pip install 'featurebench\[audit\]'"):
        run_audit(path, out=tmp_path / "a")
    assert not (tmp_path / "a").exists()
    assert run_audit(path, out=tmp_path / "b", labels=False).record["label_issues"] == {"skipped": "--no-labels"}
