"""``featurebench train``: source + net -> ``RESULTS_DIR/<run-name>/`` with a model trained from scratch.

Steps: open the source (a ``build-images`` file, or a folder/CSV streamed through the
decode pipeline), compute the training-split RGB means if the settings subtract them,
build the net with the normalisation inside it (or load a checkpoint on ``--resume``),
train with the learning-rate schedule, save ``model.keras``, score the test split
(centre or 10-crop) and write the run record (``kind: scratch``).

The ctrl+c workflow: every ``checkpoint_every``-th epoch is checkpointed
(``checkpoint/epoch-NNNN-scratch.keras``; those of every ``keep_every``-th epoch are kept), so an
interrupted run continues with ``--resume RUN_DIR|CHECKPOINT --lr NEW`` from that checkpoint's epoch
with the new rate.

Run folder: ``metrics.json``, ``model.keras`` (0..255 RGB in), ``history.json`` and
``monitor.png`` (rewritten every epoch, with the learning rate per epoch), ``train.json``,
``means.json`` (dataset-mean only), ``probabilities.npz``, ``classification_report.txt``,
``confusion.csv``, ``checkpoint/``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

from featurebench.data.pipeline import SourceOptions
from featurebench.errors import FeaturebenchError
from featurebench.outputs import check_writable_folder
from featurebench.train import loop
from featurebench.train.loop import TrainResult
from featurebench.train.settings import RESUMABLE, TrainSettings, resolve_settings
from featurebench.training.checkpoint import locate_resume, resume_state
from featurebench.training.session import (check_resume_settings, check_same_source, enter_run_dir, interrupted,
                                           open_training_source, prepare_run_dir, slug)

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


def _saved_settings(run_dir: Path) -> TrainSettings:
    """The run's ``train.json``. One written before ``--keep-every`` existed had ``checkpoint_every``
    mean "keep every N-th": read as that ``keep_every``, with a checkpoint after every epoch."""
    path = run_dir / SETTINGS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise TypeError(f"a JSON {type(data).__name__}, not an object")
        if "keep_every" not in data and "checkpoint_every" in data:
            data = {**data, "checkpoint_every": 1, "keep_every": data["checkpoint_every"]}
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
    if opts.resume:
        run_dir, checkpoint = locate_resume(opts.resume, SETTINGS_FILE, "train")
        saved = _saved_settings(run_dir)
        settings = resolve_settings(saved.net, {k: v for k, v in overrides.items() if k != "net"}, base=saved)
        if overrides.get("net", saved.net) != saved.net:
            raise FeaturebenchError(f"--resume: {run_dir} trains {saved.net}, not {overrides['net']}")
        check_resume_settings(run_dir, SETTINGS_FILE, settings.to_dict(), RESUMABLE, "settings")
        state = resume_state(run_dir, checkpoint)
        if state.epochs_done >= settings.epochs:
            raise FeaturebenchError(f"--resume: {run_dir} has trained {state.epochs_done} of {settings.epochs} epochs; "
                                    f"pass --epochs N (N > {state.epochs_done}) to train longer.")
    else:
        if "net" not in overrides:
            raise FeaturebenchError("Pass --net NAME (minivggnet, alexnet, minigooglenet, resnet).")
        settings = resolve_settings(overrides["net"], {k: v for k, v in overrides.items() if k != "net"})
        state, run_dir = None, None
    image_size = int(settings.image_size)
    check_writable_folder(run_dir if opts.resume else Path(opts.out).expanduser().resolve(),
                          "--resume" if opts.resume else "--out")
    created = None  # the run folder this run made (removed again if stopped before a checkpoint)
    try:
        source, warnings = open_training_source(opts.source, image_size, settings, opts, opts.dataset_name,
                                                "training", given=overrides)
        if opts.resume:
            check_same_source(run_dir, state, source, say)
            name = run_dir.name
        else:
            name = run_name_for(source.dataset, settings, opts.run_name)
            run_dir = Path(opts.out).expanduser().resolve() / name
            prepare_run_dir(run_dir, opts.force, [Path(opts.source)])
            created = run_dir
        enter_run_dir(run_dir, SETTINGS_FILE, settings.to_dict(), warnings, say)
        return loop.train_and_record(opts, settings, source, run_dir, name, state, on_epoch, say, warnings)
    except KeyboardInterrupt:
        raise interrupted(run_dir, created) from None


__all__ = ["RUN_NAME_TEMPLATE", "SETTINGS_FILE", "TrainOptions", "run_name_for", "run_train"]
