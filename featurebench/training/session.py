"""What every training run shares (``finetune`` and ``train``): the run folder, the opened source, the RGB means.

- :func:`prepare_run_dir` — refuse to overwrite, ``--force`` to start over;
- :func:`check_resume_settings`, :func:`check_same_source` — ``--resume`` only with the settings the run
  was started with (a few named keys may change) and on the run's own source;
- :class:`TrainingInterrupted`, :func:`interrupted` — Ctrl+C: where the last checkpoint is;
- :func:`open_training_source` — a ``build-images`` file or a streamed folder, checked for classes,
  empty splits, a stored split that differs from the settings, and crops that cannot crop;
- :func:`training_means` — the training split's RGB means, computed once and kept in ``means.json``.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from featurebench.errors import FeaturebenchError
from featurebench.training.checkpoint import CHECKPOINT_DIR, TrainState, load_state


@dataclass
class TrainingResult:
    """What a finetune or train run produced: its folder, record and final checkpoint state."""

    run_dir: Path
    run_name: str
    metrics: dict[str, Any]
    state: TrainState
    warnings: list[str] = field(default_factory=list)


def slug(text: str) -> str:
    """``text`` as a safe folder name."""
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", str(text)).strip("-.") or "unnamed"


def check_resume_settings(run_dir: Path, settings_file: str, current: dict[str, Any], resumable: Iterable[str],
                          what: str = "recipe and flags") -> None:
    """Refuse a ``--resume`` whose settings differ from the saved ones, other than the ``resumable`` keys."""
    saved = json.loads((run_dir / settings_file).read_text(encoding="utf-8"))
    allowed = set(resumable)
    changed = [k for k, v in current.items() if k not in allowed and json.dumps(saved.get(k)) != json.dumps(v)]
    if changed:
        detail = ", ".join(f"{k}: {saved.get(k)!r} -> {current[k]!r}" for k in changed)
        raise FeaturebenchError(f"--resume: the run in {run_dir} was started with other settings ({detail}). "
                                f"Pass the same {what} (only {' / '.join(sorted(allowed))} may change), "
                                "or --force to start over.")


def check_same_source(run_dir: Path, state: TrainState, source: Any, say: Callable[[str], None]) -> None:
    """Refuse to resume on another source than the run's (its checkpoint's recorded identity), before
    anything in the run folder is touched; older checkpoints (no identity) are resumed with a note."""
    from featurebench.store.identity import check_joinable

    if state.source_identity is None:
        say(f"note: {run_dir}'s checkpoint predates source identities; the source cannot be checked against it")
        return
    check_joinable("resume", state.source_identity, source.identity(), f"the run in {run_dir}",
                   str(getattr(source, "path", None) or source.describe().get("source")))


def prepare_run_dir(run_dir: Path, force: bool, inputs: Iterable[Path] = ()) -> None:
    """Check what is in a new run's ``run_dir``: an existing one is refused unless ``force`` (then
    deleted). A run folder that is or holds one of the ``inputs`` (the source) is refused: ``--force``
    would delete it."""
    from featurebench.outputs import check_not_an_input

    check_not_an_input(run_dir, inputs, "--out/--run-name")
    if run_dir.exists() and any(run_dir.iterdir()):
        if not force:
            hint = f" (it has a checkpoint: pass --resume {run_dir} to continue it)" if load_state(run_dir) else ""
            raise FeaturebenchError(f"Run folder {run_dir} already exists{hint}; pass --force to start over, "
                                    "or --run-name/--out to write elsewhere.")
        shutil.rmtree(run_dir)


def enter_run_dir(run_dir: Path, settings_file: str, settings: dict[str, Any], warnings: Iterable[str],
                  say: Callable[[str], None]) -> None:
    """Make ``run_dir``, (re)write its settings file (a resume's changes included) and say the warnings."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / settings_file).write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    for note in warnings:
        say(f"warning: {note}")


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl+C during a training run: its folder (None when nothing is left to resume), the epochs its
    last checkpoint holds and that checkpoint file (None before the first)."""

    def __init__(self, run_dir: Path | None, epochs_done: int, checkpoint: Path | None):
        super().__init__(f"interrupted; the last checkpoint holds {epochs_done} epochs")
        self.run_dir, self.epochs_done, self.checkpoint = run_dir, epochs_done, checkpoint


def interrupted(run_dir: Path | None, created: Path | None) -> TrainingInterrupted:
    """What a Ctrl+C leaves: the run folder's last checkpoint. A folder this run ``created`` that no
    checkpoint reached is removed (so the same command starts again without ``--force``)."""
    state = load_state(run_dir) if run_dir is not None and run_dir.is_dir() else None
    if state is None or state.model_file is None:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        return TrainingInterrupted(None if created is not None else run_dir, 0, None)
    return TrainingInterrupted(run_dir, state.epochs_done, run_dir / CHECKPOINT_DIR / state.model_file)


def load_size_for(load_size: int | None, image_size: int, crops: bool) -> int:
    """The size images are decoded at: ``load_size``, else 256/224 of the input when crops need room."""
    if load_size:
        return load_size
    return round(image_size * 256 / 224) if crops else image_size


def open_training_source(path: str, image_size: int, settings: Any, options: Any, dataset_name: str | None,
                         what: str = "training", given: Any = None) -> tuple[Any, list[str]]:
    """Open ``path`` (``settings`` has resize, seed, fractions, load_size, patch, ten_crop) and check it.

    Returns the source and warnings for the run record. ``given``: the settings the user passed
    (``None``: all of them); a ``build-images`` file's own split is only worth a warning against a
    seed or fraction the user asked for, not against a recipe's default.
    """
    from featurebench.training.folder_source import open_source

    crops = bool(settings.patch or settings.ten_crop)
    source = open_source(path, load_size_for(settings.load_size, image_size, crops), resize=settings.resize,
                         seed=settings.seed, train_fraction=settings.train_fraction,
                         val_fraction=settings.val_fraction, options=options, dataset_name=dataset_name)
    warnings: list[str] = list(getattr(getattr(source, "listing", None), "warnings", []))
    if source.kind == "images-h5":
        attrs = source.attrs
        asked = {"seed", "train_fraction", "val_fraction"} if given is None else set(given)
        if (("train_fraction" in asked and abs(float(attrs["train_fraction"]) - settings.train_fraction) > 1e-9)
                or ("val_fraction" in asked and abs(float(attrs["val_fraction"]) - settings.val_fraction) > 1e-9)
                or ("seed" in asked and int(attrs["seed"]) != settings.seed)):
            warnings.append(f"{path} stores its own split (seed {attrs['seed']}, train {attrs['train_fraction']}, "
                            f"val {attrs['val_fraction']}); the settings' seed/fractions apply to the training "
                            "order only")
    if crops and tuple(source.image_size) == (image_size, image_size):
        warnings.append(f"images are {image_size}px, the network input size: patch crops are the whole image and "
                        "10-crop averages the image and its mirror; load or store them larger (--load-size, "
                        "build-images --size) to crop")
    n_classes = len(source.label_names)
    if n_classes < 2:
        raise FeaturebenchError(f"{path} has {n_classes} class(es); {what} needs 2 or more.")
    if source.count("train") == 0 or source.count("test") == 0:
        raise FeaturebenchError(f"{path}: the split leaves {source.count('train')} train and "
                                f"{source.count('test')} test images; add images or change --train-fraction.")
    return source, warnings


def training_means(source: Any, run_dir: Path, batch_size: int, resuming: bool,
                   say: Callable[[str], None]) -> np.ndarray:
    """RGB means of the training split: read from ``means.json`` when resuming, else computed and saved."""
    from featurebench.training.means import MEANS_FILE, compute_means, load_means, save_means

    if not (resuming and (run_dir / MEANS_FILE).is_file()):
        say("Computing RGB means of the training split ...")
        save_means(compute_means(images for images, _ in source.iter_split("train", batch_size)), run_dir / MEANS_FILE)
    return load_means(run_dir / MEANS_FILE)


__all__ = ["TrainingInterrupted", "TrainingResult", "check_resume_settings", "check_same_source", "enter_run_dir",
           "interrupted",
           "load_size_for", "open_training_source", "prepare_run_dir", "slug", "training_means"]
