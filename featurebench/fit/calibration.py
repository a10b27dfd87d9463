"""``fit --calibrate``: probabilities for classifiers that only give decision values (svm, linsvm, sgd).

scikit-learn's ``CalibratedClassifierCV`` with ``ensemble=False``: the chosen model's cross-validated
decision values on the train rows (3 stratified folds, row order) fit one sigmoid per class (Platt scaling), and
the model itself is refitted on every train row. Test rows play no part.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from featurebench.errors import FeaturebenchError

#: Folds of the train rows that produce the out-of-fold decision values.
CALIBRATION_FOLDS = 3


def calibrate(estimator: Any, X: np.ndarray, y: np.ndarray) -> tuple[Any, dict[str, Any]]:
    """``estimator`` (an unfitted copy of it) wrapped and fitted so that it has ``predict_proba``,
    and what the run records about it."""
    from sklearn.base import clone
    from sklearn.calibration import CalibratedClassifierCV

    smallest = int(np.bincount(y).min()) if len(y) else 0
    folds = min(CALIBRATION_FOLDS, smallest)
    if folds < 2:
        raise FeaturebenchError(f"--calibrate needs at least 2 train rows of every class (the smallest class has "
                                f"{smallest}); drop --calibrate")
    # An integer cv: scikit-learn's StratifiedKFold in row order (nothing to pickle beyond the model).
    model = CalibratedClassifierCV(clone(estimator), method="sigmoid", ensemble=False, cv=folds)
    model.fit(X, y)
    return model, {"method": "sigmoid (Platt scaling, one-vs-rest, normalised)", "folds": folds,
                   "library": "sklearn.calibration.CalibratedClassifierCV(ensemble=False)",
                   "fitted_on": "train rows only (out-of-fold decision values)"}
