"""Ensembles and feature fusion: the classic "combine several models" comparison.
May import the training core (the run record), fit, store and errors; only the CLI imports it.

* :func:`run_ensemble` — average the predicted probabilities of N runs (``fit``, ``finetune``,
  ``train`` or other ensembles) over the same test images -> a run record with ``kind: ensemble``;
* :func:`fuse_features` — concatenate the features of several extractors on the same rows into one
  feature file (early fusion) that ``featurebench fit`` reads like any other.

Neither imports TensorFlow.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {"run_ensemble": "average", "EnsembleResult": "average", "load_member": "members",
            "align_members": "members", "fuse_features": "fuse", "FuseSummary": "fuse"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(f"featurebench.ensemble.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'featurebench.ensemble' has no attribute {name!r}")
