"""The end of every training epoch: history row -> checkpoint -> history.json + monitor.png -> the caller's hook.

Shared by the fine-tuning phases and the from-scratch loop. Epoch numbers are global (they run on
across phases and across ``--resume``), so a resumed run's history and checkpoints continue in place.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from featurebench.training.checkpoint import TrainState, checkpoint_name, save_checkpoint
from featurebench.training.monitor import HISTORY_FILE, MONITOR_FILE, plot_history, save_history

#: ``on_epoch(info)``: info has phase, epoch (0-based, global), phase_epoch, phase_epochs, logs, seconds.
EpochCallback = Callable[[dict[str, Any]], None]


@dataclass
class Phase:
    """One stretch of epochs with one optimizer: ``name`` (warmup, finetune, scratch) ends at ``end_epoch``."""

    name: str
    end_epoch: int
    optimizer: str
    lr: float
    momentum: float = 0.0


def epoch_callback(state: TrainState, run_dir: Path, phase: Phase, phase_start: int, title: str,
                   on_epoch: EpochCallback | None, checkpoint_every: int, keep_every: int = 0):
    """The Keras callback ending every epoch: history row, checkpoint (every ``checkpoint_every``
    epochs and at the phase end, also when the phase ends early; older ones kept every ``keep_every``),
    history.json, monitor.png, then ``on_epoch``. Logs other callbacks added before it (e.g.
    ``learning_rate``) land in the row. A finished epoch that is not checkpointed is held in memory
    (model and optimizer variables), so a Ctrl+C can still write it: see :func:`fit_epochs`."""
    import keras

    class EpochEnd(keras.callbacks.Callback):
        #: (epochs done, model variables, optimizer variables) of the last epoch not checkpointed.
        _unsaved: tuple[int, list, list] | None = None

        def _checkpoint(self):
            save_checkpoint(self.model, state, run_dir, keep_every)
            self._unsaved = None

        def checkpoint_interrupted(self):
            """Ctrl+C: write the last finished epoch if it was not checkpointed (its variables from memory,
            since the model has moved on into the epoch that was interrupted)."""
            if self._unsaved is None:
                return
            epochs_done, values, optimizer_values = self._unsaved
            for variable, value in zip(self.model.variables, values):
                variable.assign(value)
            for variable, value in zip(self.model.optimizer.variables, optimizer_values):
                variable.assign(value)
            state.epochs_done = epochs_done
            state.history[:] = [row for row in state.history if row["epoch"] < epochs_done]
            self._checkpoint()

        def on_train_end(self, logs=None):
            # The phase is over (all its epochs, or early stopping): its last epoch is always resumable.
            if checkpoint_every and state.model_file != checkpoint_name(state):
                self._checkpoint()

        def on_epoch_begin(self, epoch, logs=None):
            self._started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds = time.perf_counter() - self._started
            logs = {k: float(v) for k, v in (logs or {}).items()}
            row = {"epoch": epoch, "phase": phase.name, **logs, "seconds": round(seconds, 3)}
            state.history.append(row)
            state.epochs_done = epoch + 1
            state.train_seconds += seconds
            if checkpoint_every and (state.epochs_done % checkpoint_every == 0 or state.epochs_done == phase.end_epoch):
                self._checkpoint()
            elif checkpoint_every:
                self._unsaved = (state.epochs_done, [v.numpy() for v in self.model.variables],
                                 [v.numpy() for v in self.model.optimizer.variables])
            save_history(state.history, run_dir / HISTORY_FILE)
            plot_history(state.history, run_dir / MONITOR_FILE, title, state.finetune_start)
            if on_epoch:
                on_epoch({"phase": phase.name, "epoch": epoch, "phase_epoch": epoch - phase_start + 1,
                          "phase_epochs": phase.end_epoch - phase_start, "logs": logs, "seconds": seconds})

    return EpochEnd()


def fit_epochs(model: Any, epoch_end: Any, data: Any, **fit_args: Any) -> None:
    """``model.fit(data, **fit_args)`` (``epoch_end``, from :func:`epoch_callback`, among the callbacks);
    on Ctrl+C the last finished epoch is checkpointed first, so no finished epoch is lost."""
    try:
        model.fit(data, **fit_args)
    except KeyboardInterrupt:
        epoch_end.checkpoint_interrupted()
        raise


__all__ = ["EpochCallback", "Phase", "epoch_callback", "fit_epochs"]
