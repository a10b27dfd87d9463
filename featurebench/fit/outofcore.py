"""Out-of-core training: ``partial_fit`` over HDF5 blocks when the train slice exceeds the budget.

Only linear models trained by SGD can learn this way (``--clf sgd``, and
``--clf logreg`` as SGD with log-loss, alpha = 1 / (C * n_train)). Each epoch
visits the train blocks in a seeded shuffled order (rows shuffled within a
block); a seeded held-out part of the train rows, kept in memory, scores every
epoch and stops training when it no longer improves (the best epoch's weights
are kept). The held-out score also picks the grid point. Memory stays near the
budget: the held-out rows (an eighth of it) plus one block (a sixteenth) and its copies.
"""

from __future__ import annotations

import gc
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from featurebench.errors import FeaturebenchError
from featurebench.fit.classifiers import get_classifier, make_estimator
from featurebench.fit.grids import Grid
from featurebench.fit.memory import human_bytes
from featurebench.fit.rows import Rows, block_rows, iter_rows, n_blocks, read_selection
from featurebench.fit.search import SearchResult, make_pipeline, _rank
from featurebench.store.reader import FeatureFile

HOLDOUT_FRACTION = 0.1
MAX_EPOCHS = 30
N_ITER_NO_CHANGE = 3
TOL = 1e-4


@dataclass
class ReadStats:
    """What the out-of-core loop read (tests check that memory stays bounded)."""

    block_rows: int = 0
    reads: int = 0
    max_rows_per_read: int = 0
    rows_read: int = 0
    epochs: list[int] = field(default_factory=list)

    def saw(self, n: int) -> None:
        self.reads += 1
        self.rows_read += n
        self.max_rows_per_read = max(self.max_rows_per_read, n)


def needs_memory_error(clf: str, need: int, budget: int, n_rows: int, n_features: int) -> FeaturebenchError:
    """The error for a classifier that cannot train out of core."""
    return FeaturebenchError(
        f"--clf {clf} needs the train slice in memory: about {human_bytes(need)} "
        f"({n_rows} rows x {n_features} float32 features plus the CV fold copies), more than the "
        f"--max-memory budget of {human_bytes(budget)}. Raise --max-memory, use fewer --n-jobs, or choose "
        "--clf sgd or --clf logreg, which train out of core."
    )


def _sgd_params(clf: str, params: dict[str, Any], n_train: int) -> dict[str, Any]:
    if clf == "logreg":
        unknown = set(params) - {"C"}
        if unknown:
            raise FeaturebenchError(
                f"Out-of-core logreg (SGD with log-loss) takes only C in --grid, not {', '.join(sorted(unknown))}"
            )
        return {"loss": "log_loss", "penalty": "l2", "alpha": 1.0 / (float(params["C"]) * n_train)}
    return dict(params)


def _combos(grid: Grid | list[Grid]) -> list[dict[str, Any]]:
    parts = grid if isinstance(grid, list) else [grid]
    return [dict(zip(part, values)) for part in parts for values in itertools.product(*part.values())]


def fit_out_of_core(features: FeatureFile, rows: Rows, y: np.ndarray, clf: str, grid: Grid | list[Grid],
                    budget_bytes: int, scale: str = "none", seed: int = 42,
                    holdout_fraction: float = HOLDOUT_FRACTION, max_epochs: int = MAX_EPOCHS,
                    n_iter_no_change: int = N_ITER_NO_CHANGE, tol: float = TOL,
                    stats: ReadStats | None = None) -> SearchResult:
    """Train ``clf`` on ``rows`` of ``features`` (labels ``y`` encoded, aligned with the rows)."""
    from sklearn.preprocessing import StandardScaler

    spec = get_classifier(clf)
    if not spec.out_of_core:
        raise FeaturebenchError(f"--clf {clf} cannot train out of core")
    stats = stats or ReadStats()
    n, d = len(rows), features.feature_dim
    rng = np.random.default_rng(seed)
    # An eighth of the budget for the held-out rows (float64 copies appear when scoring them), a
    # sixteenth per block: a block exists as read, filtered, shuffled and converted copies at once.
    hold_cap = max(1, budget_bytes // 8 // (4 * d))
    n_hold = int(min(max(1, round(n * holdout_fraction)), hold_cap, n - 1))
    hold_positions = np.sort(rng.choice(n, size=n_hold, replace=False))
    is_hold = np.zeros(n, dtype=bool)
    is_hold[hold_positions] = True
    block = block_rows(features, budget_bytes // 16)
    stats.block_rows = block
    numbers = rows.numbers() if not rows.is_range else None
    hold_rows = Rows.of(numbers[hold_positions] if numbers is not None else rows.start + hold_positions)
    X_hold = read_selection(features, hold_rows, block)
    y_hold = y[hold_positions]
    classes = np.arange(int(y.max()) + 1)
    blocks = n_blocks(features, rows, block)

    def train_blocks(order: np.ndarray | None):
        for positions, data in iter_rows(features, rows, block, order):
            stats.saw(len(positions))
            keep = ~is_hold[positions]
            yield data[keep], y[positions[keep]]

    scaler = None
    started = time.perf_counter()
    if scale == "standard":
        scaler = StandardScaler()
        for Xb, _ in train_blocks(None):
            if len(Xb):
                scaler.partial_fit(Xb)
        X_hold = scaler.transform(X_hold)

    table: list[dict[str, Any]] = []
    best_model, best_score = None, -np.inf
    n_train = n - n_hold
    for combo in _combos(grid):
        estimator = make_estimator("sgd", seed, 1, **_sgd_params(spec.name, combo, n_train))
        best_epoch_score, best_state, stale, epochs = -np.inf, None, 0, 0
        for epoch in range(max_epochs):
            epochs += 1
            for Xb, yb in train_blocks(rng.permutation(blocks)):
                if not len(Xb):
                    continue
                order = rng.permutation(len(Xb))
                Xb, yb = Xb[order], yb[order]
                if scaler is not None:
                    Xb = scaler.transform(Xb, copy=False)
                estimator.partial_fit(Xb, yb, classes=classes)
            gc.collect()  # partial_fit leaves small reference cycles behind; keep them from piling up
            score = float(np.mean(estimator.predict(X_hold) == y_hold))
            if score > best_epoch_score + tol:
                best_epoch_score, stale = score, 0
                best_state = (estimator.coef_.copy(), estimator.intercept_.copy())
            else:
                stale += 1
                if stale >= n_iter_no_change:
                    break
        estimator.coef_, estimator.intercept_ = best_state
        stats.epochs.append(epochs)
        table.append({"params": combo, "mean_test_score": best_epoch_score, "std_test_score": 0.0,
                      "split0_test_score": best_epoch_score, "epochs": epochs})
        if best_epoch_score > best_score:
            best_model, best_score = estimator, best_epoch_score
    ranks = _rank(np.array([row["mean_test_score"] for row in table]))
    for row, rank in zip(table, ranks):
        row["rank_test_score"] = int(rank)
    best = table[int(np.flatnonzero(ranks == 1)[0])]["params"]
    seconds = time.perf_counter() - started
    return SearchResult(make_pipeline(best_model, scale, scaler), dict(best), table, "accuracy",
                        f"out-of-core SGD ({'log-loss' if spec.name == 'logreg' else 'partial_fit'}), "
                        "held-out early stopping", 1, seconds, 0.0,
                        {"out_of_core": True, "block_rows": block, "holdout_rows": n_hold,
                         "budget_bytes": budget_bytes, "epochs": list(stats.epochs),
                         "sgd_alpha_from_C": spec.name == "logreg"})
