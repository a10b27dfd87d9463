"""Per-epoch checkpoints: the whole model (weights, trainable flags, optimizer state) plus a state file.

``RUN/checkpoint/epoch-NNNN-PHASE.keras`` is written first, then ``state.json`` (atomically)
pointing at it, then older checkpoint files are removed; an interruption at any
moment leaves a state file that names a complete model file. ``--resume RUN_DIR|CHECKPOINT``
(:func:`locate_resume`, :func:`resume_state`) loads that model compiled (optimizer state
included) and continues the epoch count, from the latest checkpoint or an older kept one.
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


def checkpoint_phase(path: Path) -> str | None:
    """The phase in a checkpoint file name (``epoch-0040-scratch.keras`` -> ``scratch``), or None."""
    parts = path.name.removesuffix(".keras").split("-", 2)
    return parts[2] if checkpoint_epoch(path) is not None and path.suffix == ".keras" and parts[2] else None


def checkpoint_name(state: TrainState) -> str:
    """The checkpoint file name of ``state``'s epoch and phase (``epoch-0040-scratch.keras``)."""
    return f"epoch-{state.epochs_done:04d}-{state.phase}.keras"


def save_checkpoint(model: Any, state: TrainState, run_dir: Path, keep_every: int = 0) -> None:
    """Write the model and ``state.json``; remove older checkpoints, except every ``keep_every``-th epoch's."""
    folder = run_dir / CHECKPOINT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    name = checkpoint_name(state)
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


#: What ``--resume`` takes, in the words of both commands' help and errors.
RESUME_FORM = f"--resume RUN_DIR (its latest checkpoint) or --resume RUN_DIR/{CHECKPOINT_DIR}/epoch-NNNN-PHASE.keras"


def locate_resume(path: str, settings_file: str, command: str) -> tuple[Path, Path | None]:
    """``(run_dir, checkpoint file, or None for the latest)`` from a ``--resume`` argument: a run folder,
    its ``checkpoint/`` folder or one of its checkpoint files. ``settings_file`` (``train.json``,
    ``recipe.json``) tells a ``command`` run folder from another."""
    target = Path(path).expanduser().resolve()
    checkpoint = None
    if target.is_file():
        if target.parent.name != CHECKPOINT_DIR or checkpoint_phase(target) is None:
            raise FeaturebenchError(f"--resume {path}: not a checkpoint file; pass {RESUME_FORM}")
        run_dir, checkpoint = target.parent.parent, target
    elif target.is_dir():
        run_dir = target.parent if target.name == CHECKPOINT_DIR else target
    else:
        raise FeaturebenchError(f"--resume {path}: no such run folder or checkpoint file; pass {RESUME_FORM}")
    if not (run_dir / settings_file).is_file():
        raise FeaturebenchError(f"--resume {path}: {run_dir} has no {settings_file}; it is not a "
                                f"`featurebench {command}` run folder.")
    return run_dir, checkpoint


def resume_state(run_dir: Path, checkpoint: Path | None = None) -> TrainState:
    """The state to continue ``run_dir`` from, with its model file checked: the latest checkpoint's,
    or rolled back to ``checkpoint``'s epoch when an older one is named (history cut there)."""
    state = load_state(run_dir)
    if state is None:
        raise FeaturebenchError(f"--resume: no {CHECKPOINT_DIR}/{STATE_FILE} in {run_dir}; run without --resume "
                                "to start.")
    if checkpoint is not None and checkpoint.name != state.model_file:
        epoch, phase = int(checkpoint_epoch(checkpoint)), checkpoint_phase(checkpoint)
        history = [row for row in state.history if row["epoch"] < epoch]
        later_phase = phase != state.phase and phase != "warmup"
        if later_phase or epoch > state.epochs_done:
            raise FeaturebenchError(f"--resume {checkpoint}: not a checkpoint of this run's history (it is at epoch "
                                    f"{state.epochs_done}, {state.phase}); pass {RESUME_FORM}")
        same_phase = phase == state.phase
        state = TrainState(phase=phase, epochs_done=epoch, history=history, model_file=checkpoint.name,
                           finetune_start=state.finetune_start if same_phase else None,
                           unfreeze_index=state.unfreeze_index if same_phase else None,
                           train_seconds=float(sum(row.get("seconds", 0.0) for row in history)),
                           source_identity=state.source_identity)
    if state.model_file is None:
        raise FeaturebenchError(f"--resume: {run_dir}/{CHECKPOINT_DIR}/{STATE_FILE} names no checkpoint model; "
                                "start over with --force.")
    check_checkpoint_file(run_dir / CHECKPOINT_DIR / state.model_file)
    return state


def remove_checkpoints(run_dir: Path) -> None:
    folder = run_dir / CHECKPOINT_DIR
    if folder.is_dir():
        for path in folder.iterdir():
            path.unlink(missing_ok=True)
        folder.rmdir()


__all__ = ["CHECKPOINT_DIR", "RESUME_FORM", "TrainState", "check_checkpoint_file", "checkpoint_epoch",
           "checkpoint_name", "checkpoint_phase", "load_checkpoint_model", "load_state", "locate_resume",
           "remove_checkpoints", "resume_state", "save_checkpoint"]
