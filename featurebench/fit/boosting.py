"""XGBoost with early stopping on a held-out part of the rows it is fitted on.

``n_estimators`` becomes an upper bound: boosting stops when the log-loss on a
seeded stratified ``validation_fraction`` of the *training* rows has not improved
for ``early_stopping_rounds`` rounds, and prediction uses the best round. It is
the same contract as scikit-learn's ``HistGradientBoostingClassifier(early_stopping=True)``:
inside a grid search the held-out part comes from the fold's train rows, never from
validation or test rows. The refit after a search boosts every train row for ``rounds``:
the median of the round counts early stopping chose in the chosen candidate's folds (no
held-out part, no extra patience rounds: cheaper, and on 10% more rows).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin


class EarlyStoppingXGBClassifier(ClassifierMixin, BaseEstimator):
    """``xgboost.XGBClassifier(tree_method="hist")`` whose round count is chosen by early stopping."""

    def __init__(self, max_depth: int = 4, learning_rate: float = 0.1, n_estimators: int = 1000,
                 early_stopping_rounds: int = 10, validation_fraction: float = 0.1, max_bin: int = 64,
                 subsample: float = 1.0, colsample_bytree: float = 1.0, random_state: int = 42,
                 n_jobs: int | None = 1, rounds: int | None = None):
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.n_estimators = n_estimators
        self.early_stopping_rounds = early_stopping_rounds
        self.validation_fraction = validation_fraction
        self.max_bin = max_bin
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.rounds = rounds

    def _holdout(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit

        counts = np.bincount(y)
        n_val = max(int(round(self.validation_fraction * len(y))), len(counts))
        stratify = counts.min() >= 2 and n_val < len(y) - len(counts)
        splitter = (StratifiedShuffleSplit if stratify else ShuffleSplit)(
            n_splits=1, test_size=n_val, random_state=self.random_state)
        return next(splitter.split(np.zeros(len(y)), y))

    def fit(self, X: np.ndarray, y: np.ndarray) -> "EarlyStoppingXGBClassifier":
        """Fit on ``1 - validation_fraction`` of the rows, stopping on the rest; with ``rounds``
        set, boost exactly that many rounds on every row (the refit after a search)."""
        from xgboost import XGBClassifier

        self.classes_, encoded = np.unique(np.asarray(y), return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError("EarlyStoppingXGBClassifier needs at least 2 classes")
        if self.rounds is not None:
            model = XGBClassifier(tree_method="hist", n_estimators=max(1, int(self.rounds)), **self._shared())
            model.fit(X, encoded, verbose=False)
            self.model_, self.best_iteration_, self.n_features_in_ = model, max(1, int(self.rounds)) - 1, X.shape[1]
            return self
        train, val = self._holdout(encoded)
        # every class must be in the boosting part (XGBoost wants labels 0..K-1)
        missing = np.setdiff1d(np.arange(len(self.classes_)), encoded[train])
        if len(missing):
            train = np.union1d(train, np.flatnonzero(np.isin(encoded, missing)))
        model = XGBClassifier(tree_method="hist", n_estimators=self.n_estimators,
                              early_stopping_rounds=self.early_stopping_rounds, **self._shared())
        model.fit(X[train], encoded[train], eval_set=[(X[val], encoded[val])], verbose=False)
        self.model_ = model
        self.best_iteration_ = int(model.best_iteration)
        self.n_features_in_ = X.shape[1]
        return self

    def _shared(self) -> dict:
        return {"max_depth": self.max_depth, "learning_rate": self.learning_rate, "max_bin": self.max_bin,
                "subsample": self.subsample, "colsample_bytree": self.colsample_bytree,
                "random_state": self.random_state, "n_jobs": self.n_jobs, "verbosity": 0}

    def found_params(self) -> dict:
        """The round count early stopping chose (``{"rounds": N}``), for a refit that reuses it."""
        return {} if self.rounds is not None else {"rounds": self.best_iteration_ + 1}

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities from the best round (columns in ``classes_`` order)."""
        proba = np.asarray(self.model_.predict_proba(X), dtype=np.float64)
        return proba if proba.ndim == 2 else np.column_stack([1 - proba, proba])

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The most probable class."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
