"""Label issues by confident learning (Northcutt et al. 2021), via ``cleanlab``.

Out-of-fold class probabilities come from a scaled logistic regression in stratified k-fold
cross-validation over every row (a data check, not a score: no number from it is reported as
accuracy). ``cleanlab.filter.find_label_issues`` applies the published rule (the confident
joint, pruned by noise rate) and ranks the flagged rows by self-confidence, lowest first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from featurebench.errors import FeaturebenchError


@dataclass(frozen=True)
class LabelIssue:
    """A row whose out-of-fold probabilities disagree with its label."""

    row: int
    given: int
    suggested: int
    self_confidence: float


class ScaledLogisticRegression:
    """Standardisation + logistic regression that scales the rows it is given in place.

    ``fit`` and ``predict*`` take copies of the rows (``X[index]``) and change them, so the
    feature array is held once plus the one copy: scikit-learn's ``StandardScaler`` computes
    its statistics on a float64 copy (twice the float32 rows) even with ``copy=False``. The
    mean and standard deviation are summed block by block in float64 instead (zero deviations
    scale by 1, as ``StandardScaler`` does)."""

    def __init__(self, C: float = 1.0):
        from sklearn.linear_model import LogisticRegression

        self.model = LogisticRegression(C=C, max_iter=1000)
        self.mean: np.ndarray | None = None
        self.scale: np.ndarray | None = None

    @property
    def classes_(self) -> np.ndarray:
        """The classes seen by :meth:`fit`."""
        return self.model.classes_

    def fit(self, X: np.ndarray, y: np.ndarray) -> "ScaledLogisticRegression":
        """Fit on ``X`` (scaled in place)."""
        total = np.zeros(X.shape[1], dtype=np.float64)
        squares = np.zeros(X.shape[1], dtype=np.float64)
        for start in range(0, len(X), _BLOCK):
            block = X[start:start + _BLOCK].astype(np.float64)
            total += block.sum(axis=0)
            block **= 2
            squares += block.sum(axis=0)
            del block  # not held while the model is fitted
        mean = total / len(X)
        std = np.sqrt(np.maximum(squares / len(X) - mean ** 2, 0.0))
        self.mean, self.scale = mean.astype(X.dtype), np.where(std > 10 * np.finfo(np.float64).eps, std, 1.0).astype(X.dtype)
        self.model.fit(self._scaled(X), y)
        return self

    def _scaled(self, X: np.ndarray) -> np.ndarray:
        X -= self.mean
        X /= self.scale
        return X

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted classes of ``X`` (scaled in place)."""
        return self.model.predict(self._scaled(X))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities of ``X`` (scaled in place)."""
        return self.model.predict_proba(self._scaled(X))


#: Rows per step when the scaling statistics are summed.
_BLOCK = 2048


def out_of_fold_probabilities(X: np.ndarray, y: np.ndarray, n_classes: int, folds: int = 5, seed: int = 42,
                              C: float = 1.0, progress: Callable[[str], Any] | None = None) -> np.ndarray:
    """``(N, n_classes)`` probabilities of each row from a model that never saw that row
    (``progress`` gets a line after each fold). Each fold holds one copy of its rows (scaled in place)."""
    from sklearn.model_selection import StratifiedKFold

    counts = np.bincount(y, minlength=n_classes)
    k = int(min(folds, counts[counts > 0].min()))
    if k < 2:
        raise FeaturebenchError("label audit needs at least 2 rows in every class present")
    probs = np.zeros((len(y), n_classes))
    for fold, (train, held) in enumerate(StratifiedKFold(k, shuffle=True, random_state=seed).split(X, y), 1):
        model = ScaledLogisticRegression(C).fit(X[train], y[train])
        probs[np.ix_(held, model.classes_)] = model.predict_proba(X[held])
        if progress is not None:
            progress(f"label issues: fold {fold}/{k} done")
    return probs


def require_cleanlab() -> None:
    """Raise a clear error when cleanlab (the ``[audit]`` extra) is not installed."""
    try:
        import cleanlab  # noqa: F401
    except ImportError:
        raise FeaturebenchError("the label audit needs cleanlab: pip install 'featurebench[audit]' "
                                "(or pass --no-labels to skip it)") from None


def find_label_issues(y: np.ndarray, probs: np.ndarray) -> list[LabelIssue]:
    """Rows flagged by confident learning, most suspicious first."""
    require_cleanlab()
    from cleanlab.filter import find_label_issues as cleanlab_find

    present = np.flatnonzero(np.bincount(y, minlength=probs.shape[1]) > 0)
    remap = np.full(probs.shape[1], -1)
    remap[present] = np.arange(len(present))
    sub = probs[:, present]
    sub = sub / np.maximum(sub.sum(axis=1, keepdims=True), 1e-12)
    ranked = cleanlab_find(labels=remap[y], pred_probs=sub, return_indices_ranked_by="self_confidence")
    return [LabelIssue(int(i), int(y[i]), int(present[np.argmax(sub[i])]), float(sub[i, remap[y[i]]]))
            for i in ranked]
