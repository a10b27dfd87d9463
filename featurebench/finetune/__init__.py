"""Fine-tuning: network surgery, warm-up then unfreeze, classic preprocessors and augmentation,
raw-image HDF5 datasets. "When features are not enough."

Public API (imported lazily: ``import featurebench.finetune`` never imports TensorFlow):

* :func:`run_finetune` / :class:`FinetuneOptions` — a whole run into ``RESULTS_DIR/<run-name>/``
* :class:`Recipe`, :func:`load_recipe`, :func:`resolve_recipe`, :data:`BUILTIN_RECIPES`
* :func:`build_images` / :class:`BuildImagesOptions`, :class:`ImageFile` — the raw-image HDF5 file
* :class:`FolderSource`, :func:`open_source`, :func:`make_dataset` — streaming input pipelines
* surgery: :func:`assemble`, :func:`freeze_body`, :func:`unfreeze_from`, :func:`body_spec`, :func:`build_body`
* heads: :func:`fc_head`, :func:`gap_head`
* :func:`inspect_model`, :func:`format_table` — ``featurebench inspect``
* preprocessors: :class:`SimpleResize`, :class:`AspectAwareResize`, :class:`MeanSubtract`,
  :class:`PatchCrop`, :class:`CenterCrop`, :func:`ten_crops`, :func:`compute_means`
* :func:`build_augmenter` — augmentation presets as Keras preprocessing layers
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "run_finetune": "run", "FinetuneOptions": "run", "FinetuneResult": "run",
    "Recipe": "recipes", "load_recipe": "recipes", "resolve_recipe": "recipes",
    "build_images": "image_file", "BuildImagesOptions": "image_file", "ImageFile": "image_file",
    "FolderSource": "folder_source", "open_source": "folder_source", "make_dataset": "pipeline",
    "assemble": "surgery", "freeze_body": "surgery", "unfreeze_from": "surgery", "body_spec": "surgery",
    "build_body": "surgery", "body_of": "surgery", "compile_model": "surgery", "precision_policy": "surgery",
    "fc_head": "heads", "gap_head": "heads",
    "inspect_model": "inspection", "format_table": "inspection",
    "SimpleResize": "preprocess", "AspectAwareResize": "preprocess", "MeanSubtract": "preprocess",
    "PatchCrop": "preprocess", "CenterCrop": "preprocess", "ten_crops": "preprocess",
    "compute_means": "means", "build_augmenter": "augment", "predict_split": "evaluate",
}

__all__ = sorted([*_EXPORTS, "BUILTIN_RECIPES"])


def __getattr__(name: str) -> Any:
    if name == "BUILTIN_RECIPES":
        return import_module("featurebench.finetune.recipes").BUILTIN
    if name in _EXPORTS:
        return getattr(import_module(f"featurebench.finetune.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'featurebench.finetune' has no attribute {name!r}")
