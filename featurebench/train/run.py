"""``featurebench train``: source + net -> ``RESULTS_DIR/<run-name>/`` with a model trained from scratch.

Steps: open the source (a ``build-images`` file, or a folder/CSV streamed through the
decode pipeline), compute the training-split RGB means if the settings subtract them,
build the net with the normalisation inside it (or load a checkpoint on ``--resume``),
train with the learning-rate schedule, save ``model.keras``, score the test split
(centre or 10-crop) and write the run record (``kind: scratch``).

The ctrl+c workflow: every epoch is checkpointed (``checkpoint/epoch-NNNN-scratch.keras``;
every ``checkpoint_every``-th is kept), so an interrupted run continues with
``--resume RUN_DIR|CHECKPOINT --lr NEW`` from that checkpoint's epoch with the new rate.

Run folder: ``metrics.json``, ``model.keras`` (0..255 RGB in), ``history.json`` and
``monitor.png`` (rewritten every epoch, with the learning rate per epoch), ``train.json``,
``means.json`` (dataset-mean only), ``probabilities.npz``, ``classification_report.txt``,
``confusion.csv``, ``checkpoint/``.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

from featurebench.data.pipeline import SourceOptions
from featurebench.errors import FeaturebenchError
from featurebench.outputs import check_writable_folder
from featurebench.store.identity import check_joinable
from featurebench.train import loop
from featurebench.train.loop import PHASE, TrainInterrupted, TrainResult
from featurebench.train.settings import RESUMABLE, TrainSettings, resolve_settings
from featurebench.training.checkpoint import (CHECKPOINT_DIR, TrainState, check_checkpoint_file, checkpoint_epoch,
                                             load_state)
from featurebench.training.session import check_resume_settings, open_training_source, prepare_run_dir, slug

RUN_NAME_TEMPLATE = "{dataset}__{net}__scratch-{augment}"
SETTINGS_FILE = "train.json"


@dataclass
class TrainOptions(SourceOptions):
    """Everything ``train`` needs besides the settings (source flags: SourceOptions)."""

    source: str = ""
    out: str = "results"
    run_name: str | None = None
    #: A run folder or one of its checkpoint files to continue from (the run's settings are reused;
    #: only :data:`featurebench.train.settings.RESUMABLE` ones may change).
    resume: str | None = None
    force: bool = False
    dataset_name: str | None = None
    command: str = field(default_factory=lambda: " ".join(sys.argv))


def locate_resume(path: str) -> tuple[Path, Path | None]:
    """``(run_dir, checkpoint file or None for the latest)`` from a ``--resume`` argument."""
    target = Path(path).expanduser().resolve()
    if target.is_file():
        if target.parent.name != CHECKPOINT_DIR or checkpoint_epoch(target) is None:
            raise FeaturebenchError(f"--resume {path}: not a checkpoint of a train run "
                                    f"(expected RUN/{CHECKPOINT_DIR}/epoch-NNNN-{PHASE}.keras)")
        return target.parent.parent, target
    if target.is_dir():
        run_dir = target.parent if target.name == CHECKPOINT_DIR else target
        return run_dir, None
    raise FeaturebenchError(f"--resume {path}: no such run folder or checkpoint file")


def _state_at(run_dir: Path, checkpoint: Path | None) -> TrainState:
    """The checkpoint state, rolled back to ``checkpoint``'s epoch when an older one is named."""
    state = load_state(run_dir)
    if state is None:
        raise FeaturebenchError(f"--resume: no checkpoint/state.json in {run_dir}; start the run without --resume.")
    if checkpoint is None or checkpoint.name == state.model_file:
        return state
    epoch = int(checkpoint_epoch(checkpoint))
    history = [row for row in state.history if row["epoch"] < epoch]
    return TrainState(phase=PHASE, epochs_done=epoch, history=history, model_file=checkpoint.name,
                      train_seconds=float(sum(row.get("seconds", 0.0) for row in history)),
                      source_identity=state.source_identity)


def _check_same_source(run_dir: Path, state: TrainState, source: Any, say: Callable[[str], None]) -> None:
    """Refuse to resume on another source than the run's (its checkpoint's recorded identity), before
    anything in the run folder is touched; older checkpoints (no identity) are resumed with a note."""
    if state.source_identity is None:
        say(f"note: {run_dir}'s checkpoint predates source identities; the source cannot be checked against it")
        return
    check_joinable("resume", state.source_identity, source.identity(), f"the run in {run_dir}",
                   str(getattr(source, "path", None) or source.describe().get("source")))


def _saved_settings(run_dir: Path) -> TrainSettings:
    path = run_dir / SETTINGS_FILE
    if not path.is_file():
        raise FeaturebenchError(f"--resume: {run_dir} has no {SETTINGS_FILE}; it is not a `featurebench train` run.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise TypeError(f"a JSON {type(data).__name__}, not an object")
        known = {f.name for f in fields(TrainSettings)}
        return TrainSettings(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in known})
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise FeaturebenchError(f"--resume: {path} is unreadable ({' '.join(str(exc).split())[:160]}); start over "
                                "with --force.") from None


def run_name_for(dataset: str, settings: TrainSettings, template: str | None = None) -> str:
    """The run folder name (fields: dataset, net, augment, seed, size)."""
    values = {"dataset": dataset, "net": settings.net, "augment": settings.augment, "seed": settings.seed,
              "size": settings.image_size}
    if template and "{" not in template:
        return slug(template)
    try:
        return slug((template or RUN_NAME_TEMPLATE).format(**values))
    except (KeyError, IndexError, ValueError) as exc:
        raise FeaturebenchError(f"--run-name {template!r}: unknown field {exc}; fields are {', '.join(values)}") from None


def run_train(opts: TrainOptions, overrides: dict[str, Any] | None = None,
              on_epoch: Callable[[dict], None] | None = None, say: Callable[[str], None] | None = None) -> TrainResult:
    """Train (or resume) a from-scratch run and write its folder.

    ``overrides`` are the settings given (``None`` = not given; ``net`` names the architecture),
    applied on top of the net's published recipe (or, with ``opts.resume``, the run's saved settings). ``on_epoch(info)`` after every
    epoch (info: epoch, epochs, logs, seconds, eta_seconds, lr); ``say(message)`` for notes.
    """
    say = say or (lambda message: None)
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    checkpoint = None
    if opts.resume:
        run_dir, checkpoint = locate_resume(opts.resume)
        saved = _saved_settings(run_dir)
        settings = resolve_settings(saved.net, {k: v for k, v in overrides.items() if k != "net"}, base=saved)
        if overrides.get("net", saved.net) != saved.net:
            raise FeaturebenchError(f"--resume: {run_dir} trains {saved.net}, not {overrides['net']}")
        check_resume_settings(run_dir, SETTINGS_FILE, settings.to_dict(), RESUMABLE, "settings")
        state = _state_at(run_dir, checkpoint)
        if state.model_file is None:
            raise FeaturebenchError(f"--resume: {run_dir}/{CHECKPOINT_DIR}/state.json names no checkpoint model; "
                                    "start over with --force.")
        check_checkpoint_file(run_dir / CHECKPOINT_DIR / state.model_file)
        if state.epochs_done >= settings.epochs:
            raise FeaturebenchError(f"--resume: {run_dir} has trained {state.epochs_done} of {settings.epochs} epochs; "
                                    f"pass --epochs N (N > {state.epochs_done}) to train longer.")
    else:
        if "net" not in overrides:
            raise FeaturebenchError("Pass --net NAME (minivggnet, alexnet, minigooglenet, resnet).")
        settings = resolve_settings(overrides["net"], {k: v for k, v in overrides.items() if k != "net"})
        state = None
    image_size = int(settings.image_size)
    check_writable_folder(run_dir if opts.resume else Path(opts.out).expanduser().resolve(),
                          "--resume" if opts.resume else "--out")
    created = None  # the run folder this run made (removed again if stopped before a checkpoint)
    try:
        source, warnings = open_training_source(opts.source, image_size, settings, opts, opts.dataset_name,
                                                "training", given=overrides)
        if opts.resume:
            _check_same_source(run_dir, state, source, say)
            name = run_dir.name
        else:
            name = run_name_for(source.dataset, settings, opts.run_name)
            run_dir = Path(opts.out).expanduser().resolve() / name
            prepare_run_dir(run_dir, False, opts.force, SETTINGS_FILE, settings.to_dict(), RESUMABLE,
                            [Path(opts.source)])
            created = run_dir if not run_dir.exists() or not any(run_dir.iterdir()) else None
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / SETTINGS_FILE).write_text(json.dumps(settings.to_dict(), indent=2) + "\n", encoding="utf-8")
        for note in warnings:
            say(f"warning: {note}")
        return loop.train_and_record(opts, settings, source, run_dir, name, state, on_epoch, say, warnings)
    except KeyboardInterrupt as stop:
        if created is not None and load_state(created) is None:
            shutil.rmtree(created, ignore_errors=True)  # set-up or first epoch: nothing worth keeping
        if isinstance(stop, TrainInterrupted):
            raise
        # Ctrl+C during the set-up: the same answer as during training.
        latest = run_dir / CHECKPOINT_DIR / state.model_file if state is not None and state.model_file else None
        raise TrainInterrupted(created or (run_dir if opts.resume else None), state.epochs_done if state else 0,
                               latest, settings.net) from None


__all__ = ["RUN_NAME_TEMPLATE", "SETTINGS_FILE", "TrainOptions", "locate_resume", "run_name_for", "run_train"]
