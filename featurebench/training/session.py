"""What every training run shares (``finetune`` and ``train``): the run folder, the opened source, the RGB means.

- :func:`prepare_run_dir` — refuse to overwrite, ``--force`` to start over, ``--resume`` only with
  the settings the run was started with (a few named keys may change);
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
from featurebench.training.checkpoint import TrainState, load_state


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


def prepare_run_dir(run_dir: Path, resume: bool, force: bool, settings_file: str, current: dict[str, Any],
                    resumable: Iterable[str], inputs: Iterable[Path] = ()) -> TrainState | None:
    """Check what is in ``run_dir``; returns the checkpoint state when resuming. A run folder that
    is or holds one of the ``inputs`` (the source) is refused: ``--force`` would delete it."""
    from featurebench.outputs import check_not_an_input

    check_not_an_input(run_dir, inputs, "--out/--run-name")
    if resume:
        state = load_state(run_dir)
        if state is None:
            raise FeaturebenchError(f"--resume: no checkpoint in {run_dir}/checkpoint; run without --resume to start.")
        check_resume_settings(run_dir, settings_file, current, resumable)
        return state
    if run_dir.exists() and any(run_dir.iterdir()):
        if not force:
            hint = " (it has a checkpoint: pass --resume to continue it)" if load_state(run_dir) else ""
            raise FeaturebenchError(f"Run folder {run_dir} already exists{hint}; pass --force to start over, "
                                    "or --run-name/--out to write elsewhere.")
        shutil.rmtree(run_dir)
    return None


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


__all__ = ["TrainingResult", "check_resume_settings", "load_size_for", "open_training_source", "prepare_run_dir", "slug",
           "training_means"]
