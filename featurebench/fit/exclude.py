"""``fit --exclude ROWS_FILE`` and the per-test-row predictions a run keeps (``predictions.csv``).

A rows file lists one row per line: a row number of the feature file, or an image path as the
file stores it (relative to the dataset root). Blank lines and ``#`` comments are ignored.
``featurebench audit`` writes such a file (``exclude_rows.txt``) for the rows it flags.
"""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from pathlib import Path

import numpy as np

from featurebench.errors import FeaturebenchError
from featurebench.fit.rows import Rows
from featurebench.fit.splits import Split, coverage_warnings
from featurebench.store.reader import FeatureFile

#: The run folder's per-test-row predictions (read by the report's gallery of mistakes).
PREDICTIONS_FILE = "predictions.csv"
PREDICTION_COLUMNS = ("row", "path", "true", "predicted", "score", "true_score")


def read_rows_file(path: str | Path, features: FeatureFile) -> np.ndarray:
    """The sorted, unique row numbers a rows file names (numbers or stored paths)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise FeaturebenchError(f"--exclude {path}: cannot read it ({exc})") from None
    by_path: dict[str, int] | None = None
    rows: list[int] = []
    for number, raw in enumerate(lines, 1):
        item = raw.split("#", 1)[0].strip()
        if not item:
            continue
        if item.isdigit():
            row = int(item)
        else:
            if by_path is None:
                by_path = {p: i for i, p in enumerate(features.paths)}
            if item not in by_path:
                raise FeaturebenchError(f"--exclude {path}, line {number}: {item!r} is neither a row number nor a "
                                        f"path stored in {features.path} (see `featurebench info`)")
            row = by_path[item]
        if row >= features.n_rows:
            raise FeaturebenchError(f"--exclude {path}, line {number}: row {row} is past the last row of "
                                    f"{features.path} ({features.n_rows} rows)")
        rows.append(row)
    return np.unique(np.asarray(rows, dtype=np.int64))


#: What a run scored with ``--exclude-test`` reports: not test accuracy, never ranked with it.
AUDITED_METRIC = "accuracy on audited test rows"


def exclude_rows(split: Split, excluded: np.ndarray, drop_test: bool = False) -> tuple[Split, int]:
    """``split`` without the ``excluded`` rows among its train rows, and how many of them are test rows.

    Test rows stay unless ``drop_test`` (``fit --exclude-test``): removing test rows a model got
    wrong (audit's label issues) inflates the score by construction, so such a run is recorded as
    :data:`AUDITED_METRIC` and the report never ranks it with test accuracy. With a separate test
    file the rows file names train-file rows only."""
    labels_train = split.y_train
    keep_train = ~np.isin(split.train.numbers(), excluded)
    train = Rows.of(split.train.numbers()[keep_train])
    test, y_test, in_test = split.test, split.y_test, 0
    if split.test_file is None:
        keep_test = ~np.isin(split.test.numbers(), excluded)
        in_test = int((~keep_test).sum())
        if drop_test:
            test, y_test = Rows.of(split.test.numbers()[keep_test]), split.y_test[keep_test]
    if not len(train) or not len(test):
        raise FeaturebenchError(f"--exclude removes every {'train' if not len(train) else 'test'} row")
    out = replace(split, train=train, test=test, y_train=labels_train[keep_train], y_test=y_test,
                  warnings=list(split.warnings))
    coverage_warnings(out)
    return out, in_test


def predictions_csv(rows: np.ndarray, paths: list[str], y_true: np.ndarray, y_pred: np.ndarray,
                    scores: np.ndarray, label_names: list[str]) -> str:
    """One line per test row: file row, path, true and predicted class, top score, the true class's score."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(PREDICTION_COLUMNS)
    for i, row in enumerate(rows):
        writer.writerow([int(row), paths[int(row)] if paths else "", label_names[int(y_true[i])],
                         label_names[int(y_pred[i])], f"{scores[i, int(y_pred[i])]:.6g}",
                         f"{scores[i, int(y_true[i])]:.6g}"])
    return buffer.getvalue()
