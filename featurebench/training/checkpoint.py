"""Per-epoch checkpoints: the whole model (weights, trainable flags, optimizer state) plus a state file.

``RUN/checkpoint/epoch-NNNN.keras`` is written first, then ``state.json`` (atomically)
pointing at it, then older checkpoint files are removed; an interruption at any
moment leaves a state file that names a complete model file. ``--resume`` loads
that model compiled (optimizer state included) and continues the epoch count.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from featurebench.errors import FeaturebenchError

CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "state.json"


@dataclass
class TrainState:
    """Where training stands. ``epochs_done`` counts over both phases; phase 2 began at ``finetune_start``."""

    phase: str = "warmup"
    epochs_done: int = 0
    finetune_start: int | None = None
    unfreeze_index: int | None = None
    train_seconds: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)
    model_file: str | None = None
    #: The identity of the source the run trains on (featurebench.store.identity.training_identity);
    #: ``--resume`` refuses another source. None in checkpoints written before identities.
    source_identity: dict[str, Any] | None = None


#: The type each state field must have (``None`` allowed where the field may be None).
_STATE_TYPES = {"phase": (str,), "epochs_done": (int,), "finetune_start": (int, type(None)),
                "unfreeze_index": (int, type(None)), "train_seconds": (int, float), "history": (list,),
                "model_file": (str, type(None)), "source_identity": (dict, type(None))}


def checkpoint_epoch(path: Path) -> int | None:
    """The epoch count in a checkpoint file name (``epoch-0040-scratch.keras`` -> 40), or None."""
    parts = path.name.split("-")
    return int(parts[1]) if len(parts) >= 3 and parts[0] == "epoch" and parts[1].isdigit() else None


def save_checkpoint(model: Any, state: TrainState, run_dir: Path, keep_every: int = 0) -> None:
    """Write the model and ``state.json``; remove older checkpoints, except every ``keep_every``-th epoch's."""
    folder = run_dir / CHECKPOINT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    name = f"epoch-{state.epochs_done:04d}-{state.phase}.keras"
    model.save(folder / name)
    state.model_file = name
    tmp = folder / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(asdict(state), indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, folder / STATE_FILE)
    for old in folder.glob("epoch-*.keras"):
        epoch = checkpoint_epoch(old)
        if old.name != name and not (keep_every and epoch is not None and epoch % keep_every == 0):
            old.unlink(missing_ok=True)


def load_state(run_dir: Path) -> TrainState | None:
    """The run's checkpoint state; None when there is none. A state file that is not JSON, not an
    object, or holds fields of the wrong type is refused in one line."""
    path = run_dir / CHECKPOINT_DIR / STATE_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise TypeError(f"a JSON {type(data).__name__}, not an object")
        wrong = [f"{key}={value!r}"[:60] for key, value in data.items()
                 if key in _STATE_TYPES and (not isinstance(value, _STATE_TYPES[key]) or isinstance(value, bool))]
        if wrong or any(not isinstance(row, dict) for row in data.get("history", [])):
            raise TypeError(f"fields of the wrong type: {', '.join(wrong) or 'history rows'}")
        state = TrainState(**data)
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise FeaturebenchError(f"Checkpoint state {path} is unreadable ({' '.join(str(exc).split())[:160]}); start "
                                "over with --force") from None
    if state.epochs_done < 0:
        raise FeaturebenchError(f"Checkpoint state {path} is unreadable (epochs_done {state.epochs_done}); start over "
                                "with --force")
    return state


def check_checkpoint_file(path: Path) -> None:
    """Refuse (one line) a checkpoint model file that is missing, empty or truncated, before any work:
    a ``.keras`` file is a zip archive whose members are checked (CRC) here, without loading Keras."""
    import zipfile

    if not path.is_file():
        raise FeaturebenchError(f"Checkpoint model {path} is missing; resume from another checkpoint "
                                f"(--resume {path.parent}/epoch-NNNN-...keras) or start over with --force")
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        bad = f"not a complete .keras archive: {exc}"
    if bad:
        raise FeaturebenchError(f"Checkpoint model {path} is damaged or truncated ({bad}); resume from an earlier "
                                f"checkpoint (--resume {path.parent}/epoch-NNNN-...keras) or start over with --force")


def load_checkpoint_model(run_dir: Path, state: TrainState) -> Any:
    """The checkpointed model, compiled with its optimizer state restored."""
    import keras

    path = run_dir / CHECKPOINT_DIR / str(state.model_file)
    check_checkpoint_file(path)
    return keras.models.load_model(path, compile=True)


def remove_checkpoints(run_dir: Path) -> None:
    folder = run_dir / CHECKPOINT_DIR
    if folder.is_dir():
        for path in folder.iterdir():
            path.unlink(missing_ok=True)
        folder.rmdir()


__all__ = ["CHECKPOINT_DIR", "TrainState", "check_checkpoint_file", "checkpoint_epoch", "load_checkpoint_model", "load_state", "remove_checkpoints",
           "save_checkpoint"]
