"""``featurebench info``: a readable summary of a feature file (or of an unfinished extraction)."""

from __future__ import annotations

from pathlib import Path

from featurebench.errors import FeaturebenchError
from featurebench.store.journal import journal_progress
from featurebench.store.reader import open_feature_file
from featurebench.store.writer import skip_reason_counts

_PROVENANCE_KEYS = (
    "dataset", "source", "source_kind", "model", "model_source", "layer", "pool", "input_size", "resize",
    "preprocessing_description", "weights", "weights_sha256", "seed", "train_fraction", "split_index",
    "dtype", "featurebench_version", "tensorflow_version", "keras_version", "created", "images_per_second",
    "command",
)


def describe(path: str | Path, max_skipped: int = 20) -> str:
    """Plain-text description: completeness, counts, provenance, skipped images and reasons."""
    path = Path(path)
    if not path.exists():
        progress = journal_progress(path.expanduser().resolve())
        if progress is None:
            raise FeaturebenchError(f"Feature file {path} does not exist.")
        done, total = progress
        return (f"{path}: extraction not finished ({done} of {total} images done). "
                "Re-run the same `featurebench extract` command to resume it.")
    with open_feature_file(path, require_complete=False) as features:
        attrs = features.attrs
        complete = bool(attrs.get("complete", False))
        lines = [
            f"{path}",
            f"  complete:     {'yes' if complete else 'NO (interrupted; re-run extract to finish)'}",
            f"  rows:         {features.n_rows} x {features.feature_dim} ({attrs.get('dtype', features.features.dtype)})",
            f"  classes:      {len(features.label_names)}: {', '.join(features.label_names[:12])}"
            + (" ..." if len(features.label_names) > 12 else ""),
            f"  split:        train rows [:{features.split_index}], test rows [{features.split_index}:]",
            f"  skipped:      {attrs.get('n_skipped', 0)}   ignored (non-image files): {attrs.get('n_ignored', 0)}",
        ]
        lines += [f"  {key + ':':<13} {attrs[key]}" for key in _PROVENANCE_KEYS if attrs.get(key) not in (None, "")]
        skipped = features.skipped
        if skipped:
            counts = skip_reason_counts(reason for _, reason in skipped)
            lines.append("  skipped by reason: " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
            lines += [f"    {p!r}: {reason}" for p, reason in skipped[:max_skipped]]
            if len(skipped) > max_skipped:
                lines.append(f"    ... and {len(skipped) - max_skipped} more (read the 'skipped' group with h5py)")
        for warning in features.json_attr("warnings", []):
            lines.append(f"  warning: {warning}")
    return "\n".join(lines)
