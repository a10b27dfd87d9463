"""The two-phase training loop: warm up the head on a frozen body, then unfreeze and fine-tune.

Every epoch ends in :func:`featurebench.training.epochs.epoch_callback` (history row -> checkpoint ->
history.json + monitor.png -> the caller's ``on_epoch``). Epoch numbers run on across both phases and across ``--resume``
(Keras ``initial_epoch``), and the input pipeline is reseeded per epoch number, so a
resumed run continues exactly where the checkpoint left it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from featurebench.finetune.recipes import Recipe
from featurebench.finetune.surgery import freeze_body, trainable_summary, unfreeze_from
from featurebench.training.checkpoint import TrainState
from featurebench.training.epochs import EpochCallback, Phase, epoch_callback, fit_epochs
from featurebench.training.optimization import compile_model


def _run_phase(model: Any, phase: Phase, state: TrainState, make_train: Callable[[int], Any],
               make_val: Callable[[int], Any] | None, recipe: Recipe, run_dir: Path, title: str,
               on_epoch: EpochCallback | None, checkpoint_every: int, phase_start: int) -> None:
    import keras

    if state.epochs_done >= phase.end_epoch:
        return
    epoch_end = epoch_callback(state, run_dir, phase, phase_start, title, on_epoch, checkpoint_every)
    callbacks = [epoch_end]
    val = make_val(state.epochs_done) if make_val else None
    if recipe.early_stopping:
        callbacks.insert(0, keras.callbacks.EarlyStopping(monitor="val_loss" if val is not None else "loss",
                                                          patience=recipe.early_stopping, restore_best_weights=True))
    fit_epochs(model, epoch_end, make_train(state.epochs_done), validation_data=val, epochs=phase.end_epoch,
               initial_epoch=state.epochs_done, callbacks=callbacks, verbose=0, shuffle=False)


def train(model: Any, recipe: Recipe, make_train: Callable[[int], Any], make_val: Callable[[int], Any] | None,
          run_dir: Path, state: TrainState | None = None, on_epoch: EpochCallback | None = None,
          on_phase: Callable[[str, dict[str, Any]], None] | None = None, title: str = "",
          checkpoint_every: int = 1, source_identity: dict[str, Any] | None = None) -> TrainState:
    """Run (or continue, given the checkpoint ``state`` and the model loaded from it) both phases.

    ``make_train(epoch)``/``make_val(epoch)`` build the datasets starting at that epoch number.
    ``on_phase(name, summary)`` is told when a phase starts, with trainable-parameter counts.
    ``source_identity`` goes into a new run's checkpoints (a ``--resume`` on another source is refused).
    """
    finetune = recipe.unfreeze_from is not None and recipe.epochs > 0
    fresh = state is None
    state = state or TrainState(phase="warmup" if recipe.warmup_epochs > 0 or not finetune else "finetune",
                                source_identity=source_identity)
    if state.phase == "warmup":
        warmup = Phase("warmup", recipe.warmup_epochs, recipe.warmup_optimizer, recipe.warmup_lr)
        if fresh:
            freeze_body(model)
            compile_model(model, warmup.optimizer, warmup.lr)
        if on_phase:
            on_phase("warmup", trainable_summary(model))
        _run_phase(model, warmup, state, make_train, make_val, recipe, run_dir, title, on_epoch, checkpoint_every, 0)
        if not finetune:
            return state
        state.phase, fresh = "finetune", True
    if state.phase == "finetune":
        if fresh:
            state.finetune_start = state.epochs_done
            state.unfreeze_index = unfreeze_from(model, recipe.unfreeze_from)
            compile_model(model, recipe.optimizer, recipe.lr, recipe.momentum)
        start = state.finetune_start or 0
        if on_phase:
            on_phase("finetune", {**trainable_summary(model), "unfreeze_index": state.unfreeze_index})
        phase = Phase("finetune", start + recipe.epochs, recipe.optimizer, recipe.lr, recipe.momentum)
        _run_phase(model, phase, state, make_train, make_val, recipe, run_dir, title, on_epoch, checkpoint_every,
                   start)
    return state


__all__ = ["train"]
