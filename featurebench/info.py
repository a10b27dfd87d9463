"""``featurebench info``: a readable summary of a feature file (or of an unfinished extraction)."""

from __future__ import annotations

from pathlib import Path

from featurebench.errors import FeaturebenchError
from featurebench.store import identity
from featurebench.store.journal import journal_progress
from featurebench.store.reader import open_feature_file, problem_fix
from featurebench.store.writer import skip_reason_counts

_PROVENANCE_KEYS = (
    "dataset", "source", "source_kind", "model", "model_source", "layer", "pool", "input_size", "resize",
    "preprocessing_description", "engine", "device", "engine_selection", "precision", "precision_requested",
    "int8_calibration_images", "int8_holdout_images", "int8_cosine_mean", "int8_cosine_min", "nncf_version",
    "fast_decode", "weights", "weights_sha256", "seed",
    "train_fraction", "split_index", "dtype", "featurebench_version", "tensorflow_version", "keras_version",
    "openvino_version", "created", "images_per_second",
    "command",
)


def _shown(name: str) -> str:
    """A class name on one line: quoted when it holds newlines or other control characters."""
    return name if name.isprintable() else repr(name)


def _class_counts(features, shown: int = 40) -> list[str]:
    """Per-class rows of the stored split: ``name train/test`` for each class (first ``shown``)."""
    if features.problem or not features.label_names:
        return []
    import numpy as np

    n = len(features.label_names)
    labels = np.asarray(features.labels, dtype=np.int64)
    i = features.split_index
    train, test = np.bincount(labels[:i], minlength=n), np.bincount(labels[i:], minlength=n)
    cells = [f"{_shown(name)} {a}/{b}" for name, a, b in zip(features.label_names, train, test)]
    line = ", ".join(cells[:shown]) + (f", ... ({n - shown} more)" if n > shown else "")
    return [f"  per class:    train/test rows: {line}",
            f"                test rows per class: {test.min()}..{test.max()} (train {train.min()}..{train.max()})"]


def describe(path: str | Path, max_skipped: int = 20) -> str:
    """Plain-text description: completeness, counts, provenance, skipped images and reasons."""
    path = Path(path)
    if not path.exists():
        progress = journal_progress(path.expanduser().resolve())
        if progress is not None:
            done, total = progress
            return (f"{path}: extraction not finished ({done} of {total} images done). If it is not running "
                    "any more, re-run the same `featurebench extract` command to resume it.")
        if not path.exists():  # (an extraction may have finished between the two checks)
            raise FeaturebenchError(f"Feature file {path} does not exist.")
    from featurebench.training.image_file import is_image_file

    if is_image_file(path):
        return _describe_images(path)
    with open_feature_file(path, require_complete=False) as features:
        attrs = features.attrs
        complete = bool(attrs.get("complete", False))
        if features.problem:
            state = f"NO (unusable: {features.problem}{problem_fix(features.problem)[:-1]})"
        else:
            state = "yes" if complete else "NO (interrupted; re-run extract to finish)"
        lines = [
            f"{path}",
            f"  complete:     {state}",
            f"  rows:         {features.n_rows} x {features.feature_dim} ({attrs.get('dtype', features.features.dtype)})",
            f"  classes:      {len(features.label_names)}: {', '.join(map(_shown, features.label_names[:12]))}"
            + (" ..." if len(features.label_names) > 12 else ""),
            f"  split:        train rows [:{features.split_index}], test rows [{features.split_index}:]"
            + (f" ({attrs['split']})" if attrs.get("split") else ""),
            *_class_counts(features),
            *([f"  shard:        {features.shard[0]} of {features.shard[1]} (a slice of one extraction: join the "
               "shards with `featurebench merge` before fit)"] if features.shard else []),
            f"  skipped:      {attrs.get('n_skipped', 0)}   ignored (non-image files): {attrs.get('n_ignored', 0)}",
        ]
        lines += [f"  {key + ':':<13} {attrs[key]}" for key in _PROVENANCE_KEYS if attrs.get(key) not in (None, "")]
        lines.append(f"  identity:     {identity.describe(features.identity)}")
        skipped = features.skipped
        if skipped:
            counts = skip_reason_counts(reason for _, reason in skipped)
            lines.append("  skipped by reason: " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
            lines += [f"    {p!r}: {reason}" for p, reason in skipped[:max_skipped]]
            if len(skipped) > max_skipped:
                lines.append(f"    ... and {len(skipped) - max_skipped} more (read the 'skipped' group with h5py)")
        duplicates = features.duplicates
        if duplicates:
            labels = dict(zip(features.paths, features.labels.tolist())) if not features.problem else {}
            conflicts = sum(1 for p, first in duplicates if labels.get(p) != labels.get(first))
            lines.append(f"  duplicates:   {len(duplicates)} rows have the same bytes as an earlier row (kept)"
                         + (f"; {conflicts} of them with a different label" if conflicts else ""))
            lines += [f"    {p!r} = {first!r}" for p, first in duplicates[:max_skipped]]
            if len(duplicates) > max_skipped:
                lines.append(f"    ... and {len(duplicates) - max_skipped} more (the 'duplicates' group)")
        warnings = [] if features.problem else features.json_attr("warnings", [])
        for warning in warnings:
            lines.append(f"  warning: {warning}")
    return "\n".join(lines)


def _describe_images(path: Path) -> str:
    """The summary of a raw-image file written by ``build-images`` (input of finetune/train, not of fit)."""
    from featurebench.training.image_file import ImageFile

    images = ImageFile(path)
    info = images.describe()
    names = images.label_names
    lines = [
        f"{path}",
        "  kind:         raw images from `featurebench build-images` (for finetune/train; fit needs a feature "
        "file from `featurebench extract`)",
        f"  images:       {info.get('n_images')} x {'x'.join(map(str, images.image_size))} RGB uint8",
        f"  classes:      {len(names)}: {', '.join(map(_shown, names[:12]))}" + (" ..." if len(names) > 12 else ""),
        f"  split:        {images.count('train')} train, {images.count('val')} validation, {images.count('test')} test",
        f"  skipped:      {images.n_skipped}",
    ]
    lines += [f"  {key + ':':<13} {info[key]}" for key in ("dataset", "source", "resize", "seed", "created", "command")
              if info.get(key) not in (None, "")]
    return "\n".join(lines)
