"""Ensemble members: a run folder's metrics.json and probabilities.npz, checked to cover the same test images.

Members must come from the same images (their recorded identities, checked by
:func:`featurebench.store.identity.check_joinable`: two folders whose files share relative
names are not the same images), and each probability file is checked (shape, finite values,
probabilities). Members are matched by the stored test paths (relative to the dataset root), not by row
position: runs whose test sets hold the same images in another order are realigned to the
first member's order; any other difference (an image only one run tested, other labels,
another label space) is refused with a message naming the runs and examples.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from featurebench.errors import FeaturebenchError
from featurebench.fit.record import PROBABILITIES_FILE, read_probabilities
from featurebench.store.identity import check_joinable, recorded_run_identity


@dataclass
class Member:
    """One run: folder, record, and per-test-image predictions."""

    run_dir: Path
    metrics: dict[str, Any]
    paths: list[str]
    y_true: np.ndarray
    proba: np.ndarray
    label_names: list[str]

    @property
    def name(self) -> str:
        return str(self.metrics.get("run_name") or self.run_dir.name)

    def summary(self) -> dict[str, Any]:
        """What the ensemble record lists about this member."""
        m = self.metrics
        return {"run_name": self.name, "run_dir": str(self.run_dir), "kind": m.get("kind"),
                "extractor": m.get("extractor"), "classifier": m.get("classifier"), "accuracy": m.get("accuracy"),
                "macro_f1": m.get("macro_f1"), "random_init": bool(m.get("random_init")), "n_test": len(self.paths)}


def load_member(run_dir: str | Path) -> Member:
    """Read ``run_dir``: its metrics.json and probabilities.npz (probabilities only)."""
    run_dir = Path(run_dir).expanduser().resolve()
    metrics_path, predictions_path = run_dir / "metrics.json", run_dir / PROBABILITIES_FILE
    if not metrics_path.is_file():
        raise FeaturebenchError(f"{run_dir} is not a run folder (no metrics.json); pass RESULTS_DIR/<run-name> folders "
                                "written by fit, finetune, train or ensemble.")
    if not predictions_path.is_file():
        raise FeaturebenchError(f"{run_dir} has no {PROBABILITIES_FILE} (runs made before featurebench wrote one); "
                                "run it again (fit/finetune/train --force) to record its test predictions.")
    try:
        metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
        pred = read_probabilities(predictions_path)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise FeaturebenchError(f"{run_dir}: unreadable metrics.json or {PROBABILITIES_FILE} ({exc}); "
                                "run it again with --force.") from None
    scores = _checked_scores(run_dir, pred)
    if pred["score_kind"] != "probability":
        from featurebench.fit.classifiers import probabilistic_classifiers

        raise FeaturebenchError(f"{run_dir}: its classifier ({metrics.get('classifier')}) gives decision scores, not "
                                "probabilities, and scores on different scales cannot be averaged; refit it with "
                                "`featurebench fit ... --calibrate` (calibrated probabilities), or ensemble runs of "
                                f"classifiers with predict_proba ({', '.join(probabilistic_classifiers())}) "
                                "or networks.")
    if not isinstance(metrics, dict):
        raise FeaturebenchError(f"{run_dir}: metrics.json is not a JSON object; run it again with --force.")
    return Member(run_dir, metrics, pred["paths"], pred["y_true"], scores, pred["label_names"])


def _checked_scores(run_dir: Path, pred: dict[str, Any]) -> np.ndarray:
    """The run's scores as float64, refused (one line naming the file) unless they are one row of
    finite scores per test path and one column per class, probabilities in [0, 1] summing to 1."""
    where = run_dir / PROBABILITIES_FILE
    scores, n, width = np.asarray(pred["scores"]), len(pred["paths"]), len(pred["label_names"])
    fix = "run it again (fit/finetune/train --force) to rewrite it"
    if scores.ndim != 2 or scores.shape != (n, width) or np.shape(pred["y_true"]) != (n,):
        raise FeaturebenchError(f"{where}: scores of shape {scores.shape} and {np.shape(pred['y_true'])} labels for "
                                f"{n} test paths and {width} classes (expected ({n}, {width})); {fix}.")
    if scores.dtype.kind not in "fiu" or np.asarray(pred["y_true"]).dtype.kind not in "iu":
        raise FeaturebenchError(f"{where}: scores of type {scores.dtype} / labels of type "
                                f"{np.asarray(pred['y_true']).dtype} are not numbers; {fix}.")
    scores = scores.astype(np.float64)
    if n and not np.isfinite(scores).all():
        raise FeaturebenchError(f"{where}: the scores hold NaN or infinite values; {fix}.")
    y_true = np.asarray(pred["y_true"])
    if n and (y_true.min() < 0 or y_true.max() >= width):
        raise FeaturebenchError(f"{where}: a true label is outside the {width} classes; {fix}.")
    if pred["score_kind"] == "probability" and n and (
            scores.min() < 0 or scores.max() > 1 or not np.allclose(scores.sum(axis=1), 1.0, atol=1e-3)):
        raise FeaturebenchError(f"{where}: the probabilities are not in [0, 1] summing to 1 per row "
                                f"(min {scores.min():.3g}, max {scores.max():.3g}); {fix}.")
    return scores


def align_members(members: list[Member]) -> list[Member]:
    """The members with rows in the first member's test order; refuses mismatched test sets."""
    if len(members) < 2:
        raise FeaturebenchError("an ensemble needs at least 2 runs")
    names = [m.name for m in members]
    if len(set(m.run_dir for m in members)) != len(members):
        raise FeaturebenchError(f"the same run is listed twice ({', '.join(names)})")
    first = members[0]
    aligned = [first]
    first_identity = recorded_run_identity(first.metrics)
    for other in members[1:]:
        check_joinable("ensemble", first_identity, recorded_run_identity(other.metrics), str(first.run_dir),
                       str(other.run_dir))
        if other.label_names != first.label_names:
            raise FeaturebenchError(f"{other.name} has labels {other.label_names[:6]}..., {first.name} has "
                                    f"{first.label_names[:6]}...: not the same classification task")
        if other.paths != first.paths:
            here, there = set(first.paths), set(other.paths)
            if here != there or len(there) != len(other.paths) or len(here) != len(first.paths):
                only_first = sorted(here - there)[:3]
                only_other = sorted(there - here)[:3]
                raise FeaturebenchError(
                    f"{other.name} and {first.name} were tested on different images ({len(other.paths)} vs "
                    f"{len(first.paths)} test rows; only in {first.name}: {only_first or 'none'}, only in "
                    f"{other.name}: {only_other or 'none'}). Ensemble runs of the same source, seed and split "
                    "(same extract/build-images settings).")
            position = {path: i for i, path in enumerate(other.paths)}
            order = np.array([position[p] for p in first.paths])
            other = Member(other.run_dir, other.metrics, first.paths, other.y_true[order], other.proba[order],
                           other.label_names)
        if not np.array_equal(other.y_true, first.y_true):
            bad = int(np.sum(other.y_true != first.y_true))
            raise FeaturebenchError(f"{other.name} and {first.name} disagree on the true label of {bad} test "
                                    "image(s): they were not made from the same labelled source.")
        aligned.append(other)
    return aligned


__all__ = ["Member", "align_members", "load_member"]
