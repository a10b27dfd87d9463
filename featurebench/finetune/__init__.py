"""Fine-tuning: surgery on a pretrained backbone (new head, freeze, warm-up, unfreeze, lower LR), its
recipes and the ``featurebench finetune`` run. "When features are not enough."

May import the training core (:mod:`featurebench.training`: data, augmentation, checkpoints, record) and
the lower rooms (data, extractors, fit); never ``train``, ``explain`` or the CLI.

Public API (imported lazily: ``import featurebench.finetune`` never imports TensorFlow):

* :func:`run_finetune` / :class:`FinetuneOptions` — a whole run into ``RESULTS_DIR/<run-name>/``
* :class:`Recipe`, :func:`load_recipe`, :func:`resolve_recipe`, :data:`BUILTIN_RECIPES`
* surgery: :func:`assemble`, :func:`freeze_body`, :func:`unfreeze_from`, :func:`body_spec`, :func:`build_body`
* heads: :func:`fc_head`, :func:`gap_head`

The data path, checkpoints and the run record are :mod:`featurebench.training`'s; ``inspect`` is
:mod:`featurebench.explain`'s.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "run_finetune": "run", "FinetuneOptions": "run", "FinetuneResult": "run",
    "Recipe": "recipes", "load_recipe": "recipes", "resolve_recipe": "recipes",
    "assemble": "surgery", "freeze_body": "surgery", "unfreeze_from": "surgery", "body_spec": "surgery",
    "build_body": "surgery", "body_of": "surgery", "fc_head": "heads", "gap_head": "heads",
}

__all__ = sorted([*_EXPORTS, "BUILTIN_RECIPES"])


def __getattr__(name: str) -> Any:
    if name == "BUILTIN_RECIPES":
        return import_module("featurebench.finetune.recipes").BUILTIN
    if name in _EXPORTS:
        return getattr(import_module(f"featurebench.finetune.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'featurebench.finetune' has no attribute {name!r}")
