"""``featurebench fit`` and ``featurebench predict``: classical classifiers on extracted features.
May import store, extractors (``predict``), data, outputs and errors; never TensorFlow at import time.

Public API (imported lazily so that ``import featurebench.fit`` stays cheap):

* :func:`run_fit` -> :class:`RunResult` — search, refit, evaluate, write ``RESULTS_DIR/<run>/``
* :func:`predict_images` -> :class:`PredictResult` — classify images with a saved bundle
* :func:`load_bundle`, :func:`save_bundle` — safe skops model bundles
* :func:`search` — the search on in-memory arrays; :func:`evaluate` — the test metrics
* :data:`CLASSIFIERS`, :data:`PRESETS` — registered classifiers and named grids
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "run_fit": "featurebench.fit.run", "RunResult": "featurebench.fit.run",
    "predict_images": "featurebench.fit.predict", "PredictResult": "featurebench.fit.predict",
    "write_predictions_csv": "featurebench.fit.predict",
    "load_bundle": "featurebench.fit.bundle", "save_bundle": "featurebench.fit.bundle",
    "Bundle": "featurebench.fit.bundle",
    "search": "featurebench.fit.search", "SearchResult": "featurebench.fit.search",
    "evaluate": "featurebench.fit.metrics", "rank_k_accuracy": "featurebench.fit.metrics",
    "CLASSIFIERS": "featurebench.fit.classifiers", "get_classifier": "featurebench.fit.classifiers",
    "PRESETS": "featurebench.fit.grids", "load_grid": "featurebench.fit.grids",
    "FitWarning": "featurebench.fit.warn",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'featurebench.fit' has no attribute {name!r}")
