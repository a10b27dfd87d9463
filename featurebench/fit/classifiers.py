"""The classifier registry: ``name -> estimator factory + default grid``.

Every factory takes ``(random_state, n_threads)`` and returns an unfitted
scikit-learn-compatible estimator; ``n_threads`` is the estimator's own thread
count (1 when the search already runs several fits in parallel). Nothing here
imports scikit-learn or XGBoost until a factory is called.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from featurebench.errors import FeaturebenchError


@dataclass(frozen=True)
class ClassifierSpec:
    """A registered classifier."""

    name: str
    factory: Callable[[int, int], Any]
    #: The grid searched when ``--grid`` is not given (estimator parameter names, unprefixed).
    default_grid: dict[str, list[Any]]
    #: The main swept parameter (reports plot the CV score against it).
    main_param: str | None
    description: str
    #: Trains with ``partial_fit`` over HDF5 chunks when the train slice exceeds the memory budget.
    out_of_core: bool = False
    #: Grid for ``--protocol probe`` when ``--grid`` is not given.
    probe_grid: dict[str, list[Any]] | None = None
    #: Threads of the final refit (``None``: --n-jobs). xgb: 1, since two OpenMP threads on a busy
    #: 2-core machine cost 12-16x the CPU time of one (spin-waiting; results/bench_fit_refit.md).
    refit_threads: int | None = None
    extras: dict[str, Any] = field(default_factory=dict)


def _logreg(random_state: int, n_threads: int) -> Any:
    from sklearn.linear_model import LogisticRegression

    # max_iter high enough that the unscaled classic setting converges (the search warm-starts,
    # so large values cost little); tol is scikit-learn's default.
    return LogisticRegression(C=1.0, max_iter=1000, tol=1e-4, random_state=random_state)


def _linsvm(random_state: int, n_threads: int) -> Any:
    from sklearn.svm import LinearSVC

    return LinearSVC(C=1.0, max_iter=5000, random_state=random_state)


def _svm(random_state: int, n_threads: int) -> Any:
    from sklearn.svm import SVC

    return SVC(kernel="rbf", C=1.0, gamma="scale", cache_size=500, random_state=random_state)


def _xgb(random_state: int, n_threads: int) -> Any:
    from featurebench.fit.boosting import EarlyStoppingXGBClassifier

    # colsample_bytree=0.2: each tree sees a fifth of the features (5x less work per round, and
    # better than PCA first on CNN features: results/bench_fit.md).
    return EarlyStoppingXGBClassifier(max_depth=4, learning_rate=0.3, n_estimators=1000, early_stopping_rounds=10,
                                      validation_fraction=0.1, max_bin=64, colsample_bytree=0.2,
                                      random_state=random_state, n_jobs=n_threads)


def _hgb(random_state: int, n_threads: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    # max_features=0.1: each split looks at a tenth of the features (as xgb's colsample_bytree).
    return HistGradientBoostingClassifier(max_iter=300, learning_rate=0.3, early_stopping=True,
                                          validation_fraction=0.1, n_iter_no_change=10, max_bins=64,
                                          max_features=0.1, random_state=random_state)


def _knn(random_state: int, n_threads: int) -> Any:
    from sklearn.neighbors import KNeighborsClassifier

    return KNeighborsClassifier(n_neighbors=5, n_jobs=n_threads)


def _sgd(random_state: int, n_threads: int) -> Any:
    from sklearn.linear_model import SGDClassifier

    return SGDClassifier(loss="log_loss", alpha=1e-4, max_iter=1000, tol=1e-3, random_state=random_state)


#: The classic "feature extraction + logistic regression" grid (Practitioner bundle, ch. 3).
CLASSIC_CH3 = [0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0]
#: The grid of the later chapters (ch. 10 and on).
CLASSIC_CH10 = [1e-4, 1e-3, 1e-2, 0.1, 1.0]
#: The linear-probe sweep: 45 log-spaced values of C in [1e-6, 1e5] (Kornblith et al. 2019).
PROBE_C = [float(f"{10 ** (-6 + 11 * i / 44):.6g}") for i in range(45)]

CLASSIFIERS: dict[str, ClassifierSpec] = {
    spec.name: spec for spec in [
        ClassifierSpec("logreg", _logreg, {"C": CLASSIC_CH3}, "C",
                       "multinomial logistic regression (lbfgs; warm-started C path)",
                       out_of_core=True, probe_grid={"C": PROBE_C}),
        ClassifierSpec("linsvm", _linsvm, {"C": [1e-3, 1e-2, 0.1, 1.0, 10.0]}, "C",
                       "linear SVM (liblinear, one-vs-rest)", probe_grid={"C": PROBE_C[::2]}),
        # The defaults of svm, xgb and hgb are measured against the earlier, larger grids on
        # Flowers-17 and Dogs vs Cats features in results/bench_fit.md. svm: gamma="scale"
        # (1 / (n_features * X.var())) with 3 values of C, a quarter of the old 12-point grid.
        ClassifierSpec("svm", _svm, {"C": [1.0, 10.0, 100.0]}, "C", "RBF-kernel SVM (libsvm, gamma='scale')"),
        # Boosted trees grow one tree per class per round: rounds by early stopping on a held-out
        # part of the fit's own train rows instead of a swept n_estimators.
        ClassifierSpec("xgb", _xgb, {"max_depth": [2, 4]}, "max_depth",
                       "XGBoost (hist, early stopping on 10% of the train rows, 20% of features per tree)",
                       refit_threads=1),
        # hgb: one candidate (a single fit with early stopping, no CV): each fit is the slowest here.
        ClassifierSpec("hgb", _hgb, {"learning_rate": [0.3]}, "learning_rate",
                       "scikit-learn HistGradientBoosting (early stopping, 10% of features per split)"),
        ClassifierSpec("knn", _knn, {"n_neighbors": [1, 3, 5, 9, 15], "weights": ["uniform", "distance"]},
                       "n_neighbors", "k-nearest neighbours (Euclidean; n_neighbors above the fold size dropped)"),
        ClassifierSpec("sgd", _sgd, {"alpha": [1e-6, 1e-5, 1e-4, 1e-3, 1e-2]}, "alpha",
                       "linear model trained by SGD (log-loss); trains out of core", out_of_core=True),
    ]
}


def get_classifier(name: str) -> ClassifierSpec:
    """The spec called ``name``, or a :class:`FeaturebenchError` listing the known names."""
    try:
        return CLASSIFIERS[name.lower()]
    except KeyError:
        raise FeaturebenchError(
            f"Unknown classifier {name!r}; choose one of {', '.join(CLASSIFIERS)} (--clf)."
        ) from None


def list_classifiers() -> list[ClassifierSpec]:
    """All registered classifiers, in registry order."""
    return list(CLASSIFIERS.values())


def make_estimator(name: str, random_state: int = 42, n_threads: int = 1, **params: Any) -> Any:
    """An unfitted estimator for ``name`` with ``params`` set."""
    estimator = get_classifier(name).factory(random_state, n_threads)
    return estimator.set_params(**params) if params else estimator


def probabilistic_classifiers() -> list[str]:
    """Names of the classifiers whose default estimator has ``predict_proba`` (what ``ensemble`` can average)."""
    return [name for name in CLASSIFIERS if hasattr(make_estimator(name), "predict_proba")]
