"""Training from scratch: the classic architectures, LR schedules and the ``featurebench train`` run.

Public API (imported lazily: ``import featurebench.train`` never imports TensorFlow):

* :func:`run_train` / :class:`TrainOptions` / :class:`TrainSettings` — a whole run into ``RESULTS_DIR/<run-name>/``
* :data:`NETS`, :func:`build_net` — MiniVGGNet, AlexNet, MiniGoogLeNet, pre-activation ResNet
* :func:`make_schedule`, :func:`polynomial_decay`, :func:`step_decay` — learning-rate schedules

May import the training core (:mod:`featurebench.training`: ``build-images`` files, streamed folders,
augmentation, checkpoints, the training monitor, 10-crop testing, the run record) and the lower rooms;
never ``finetune``, ``explain`` or the CLI.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "run_train": "run", "TrainOptions": "run", "TrainResult": "loop", "TrainSettings": "settings",
    "NETS": "nets", "build_net": "nets",
    "make_schedule": "schedules", "polynomial_decay": "schedules", "step_decay": "schedules",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(f"featurebench.train.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'featurebench.train' has no attribute {name!r}")
