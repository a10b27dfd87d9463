"""The exact class activation map (Zhou et al. 2016) of a linear classifier on pooled conv features.

A bundle whose features are the average-pooled (or flattened) maps ``A`` (H, W, D) of a conv layer
and whose classifier is linear (logreg, linsvm, sgd; a StandardScaler folded in) scores class ``c`` as

    avg:      s_c = mean_ij (sum_k w_ck A_ijk) + b_c
    flatten:  s_c = sum_ij  (sum_k w_cijk A_ijk) + b_c

so ``M_c(i, j) = sum_k w_c.. A_ij.`` is where the evidence lies, exactly: no gradients, and the
map's mean (avg) or sum (flatten) plus the bias is the classifier's decision score.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Linear scikit-learn classifiers whose ``coef_``/``intercept_`` give the decision function.
LINEAR_CLASSIFIERS = ("LogisticRegression", "LinearSVC", "SGDClassifier", "RidgeClassifier")
#: Poolings for which the linear head gives an exact map.
CAM_POOLS = ("avg", "flatten")


def _steps(estimator: Any) -> list[Any]:
    return [step for _, step in estimator.steps] if hasattr(estimator, "steps") else [estimator]


def linear_head(estimator: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """``(W, b)`` with ``decision_function(X) == X @ W.T + b`` on raw features, one row per output
    class of the estimator (a binary model's single row becomes ``[-w, w]``), or None when the
    estimator is not a (scaled) linear classifier."""
    *pre, clf = _steps(estimator)
    if type(clf).__name__ not in LINEAR_CLASSIFIERS or not hasattr(clf, "coef_"):
        return None
    W = np.asarray(clf.coef_, dtype=np.float64)
    b = np.asarray(clf.intercept_, dtype=np.float64).ravel() * np.ones(W.shape[0])
    for step in reversed(pre):
        if type(step).__name__ != "StandardScaler":
            return None
        mean = step.mean_ if getattr(step, "mean_", None) is not None else 0.0
        scale = step.scale_ if getattr(step, "scale_", None) is not None else 1.0
        b = b - W @ (np.broadcast_to(mean, W.shape[1]) / np.broadcast_to(scale, W.shape[1]))
        W = W / scale
    if W.shape[0] == 1:
        W, b = np.vstack([-W, W]), np.concatenate([-b, b])
    return W, b


def class_activation_maps(feature_maps: np.ndarray, W: np.ndarray, pool: str) -> np.ndarray:
    """``(C, H, W)`` maps of one image's ``(H, W, D)`` feature maps for every row of ``W``."""
    maps = np.asarray(feature_maps, dtype=np.float64)
    if pool == "avg":
        return np.einsum("hwd,cd->chw", maps, W)
    if pool == "flatten":
        return np.einsum("hwd,chwd->chw", maps, W.reshape(W.shape[0], *maps.shape))
    raise ValueError(f"no exact CAM for pool {pool!r}; use Grad-CAM")


def decision_from_maps(maps: np.ndarray, b: np.ndarray, pool: str) -> np.ndarray:
    """The decision scores the maps add up to (mean for avg pooling, sum for flatten), plus ``b``."""
    reduce = maps.mean(axis=(1, 2)) if pool == "avg" else maps.sum(axis=(1, 2))
    return reduce + b
