"""The training core: the Keras plumbing every network training run shares (``finetune`` and ``train``).

May import the lower rooms (errors, text, data, extractors, extract, fit, store); never ``finetune``, ``train``
or the CLI. Nothing here imports TensorFlow at module level (``import featurebench.training`` stays light).

Public API (imported lazily):

* :func:`build_images` / :class:`BuildImagesOptions`, :class:`ImageFile` — the raw-image HDF5 file
  (``featurebench build-images``); :class:`FolderSource`, :func:`open_source` — a file or a streamed folder
* :func:`make_dataset` — the tf.data pipeline (per-epoch reseeded order, patch crops, augmentation)
* preprocessors: :class:`SimpleResize`, :class:`AspectAwareResize`, :class:`MeanSubtract`,
  :class:`PatchCrop`, :class:`CenterCrop`, :func:`ten_crops`; :func:`compute_means`
* :func:`build_augmenter` — augmentation presets; :func:`normalization_layer` — in-model normalisation
* :func:`compile_model`, :func:`precision_policy` — optimizers and the mixed-precision policy
* :func:`epoch_callback`, :func:`fit_epochs`, :class:`TrainState`, :func:`save_checkpoint`,
  :func:`load_checkpoint_model`, :func:`locate_resume`, :func:`resume_state` — the end of every epoch,
  checkpoint/resume state (``--resume RUN_DIR|CHECKPOINT``); :mod:`featurebench.training.options` —
  ``--resume``/``--checkpoint-every`` as both commands show them
* :func:`prepare_run_dir`, :func:`open_training_source`, :func:`training_means` — the run session
* :func:`predict_split` (centre / 10-crop), :func:`build_record` / :func:`write_record` — test and record
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "build_images": "image_file", "BuildImagesOptions": "image_file", "ImageFile": "image_file",
    "FolderSource": "folder_source", "open_source": "folder_source", "make_dataset": "pipeline",
    "SimpleResize": "preprocess", "AspectAwareResize": "preprocess", "MeanSubtract": "preprocess",
    "PatchCrop": "preprocess", "CenterCrop": "preprocess", "ten_crops": "preprocess",
    "compute_means": "means", "build_augmenter": "augment", "normalization_layer": "normalize",
    "compile_model": "optimization", "precision_policy": "optimization",
    "epoch_callback": "epochs", "Phase": "epochs", "fit_epochs": "epochs",
    "TrainState": "checkpoint", "save_checkpoint": "checkpoint", "load_checkpoint_model": "checkpoint",
    "locate_resume": "checkpoint", "resume_state": "checkpoint",
    "prepare_run_dir": "session", "open_training_source": "session", "training_means": "session",
    "TrainingResult": "session", "TrainingInterrupted": "session", "predict_split": "evaluate", "build_record": "record", "write_record": "record",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(f"featurebench.training.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'featurebench.training' has no attribute {name!r}")
