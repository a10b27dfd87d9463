"""``featurebench ensemble``: average the members' probabilities -> ``RESULTS_DIR/<run-name>/``.

The record is the usual metrics.json (``kind: ensemble``, ``classifier: ensemble``, extractor
``a+b+...``) with ``members`` (each run's name, kind, accuracy), ``best_member`` and
``gain_over_best_member`` (ensemble accuracy minus the best member's, on the same test images).
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from featurebench.ensemble.members import Member, align_members, load_member
from featurebench.errors import FeaturebenchError
from featurebench.outputs import check_not_an_input, check_writable_folder
from featurebench.store.identity import RUN_IDENTITY_KEY, recorded_run_identity
from featurebench.training.session import slug


@dataclass
class EnsembleResult:
    run_dir: Path
    run_name: str
    metrics: dict[str, Any]
    members: list[Member]


def ensemble_name(members: list[Member]) -> str:
    """``{dataset}__ensemble__{member extractors/classifiers}``."""
    parts = [f"{m.metrics.get('extractor')}-{m.metrics.get('classifier')}" for m in members]
    return slug(f"{members[0].metrics.get('dataset')}__ensemble__{'+'.join(parts)}")


def run_ensemble(run_dirs: list[str | Path], out: str | Path = "results", run_name: str | None = None,
                 force: bool = False, command: str | None = None) -> EnsembleResult:
    """Average the probabilities of ``run_dirs`` over their (checked) common test images and record it."""
    from featurebench.training.record import build_record, report_files, write_record

    started = time.perf_counter()
    check_writable_folder(Path(out).expanduser().resolve(), "--out")
    members = align_members([load_member(d) for d in run_dirs])
    proba = np.mean([m.proba for m in members], axis=0)
    first = members[0]
    name = slug(run_name) if run_name else ensemble_name(members)
    run_dir = Path(out).expanduser().resolve() / name
    check_not_an_input(run_dir, [m.run_dir for m in members], "--out/--run-name")
    if run_dir.exists() and any(run_dir.iterdir()):
        if not force:
            raise FeaturebenchError(f"Run folder {run_dir} already exists; pass --force to replace it, or --run-name.")
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    summaries = [m.summary() for m in members]
    best = max(summaries, key=lambda s: s["accuracy"] if s["accuracy"] is not None else -1.0)
    datasets = sorted({str(m.metrics.get("dataset")) for m in members})
    command = command or " ".join(sys.argv)
    record = build_record(
        run_name=name, dataset=str(first.metrics.get("dataset")), extractor="+".join(str(s["extractor"]) for s in summaries),
        layer="", pool="", weights="+".join(str(m.metrics.get("weights")) for m in members),
        random_init=any(s["random_init"] for s in summaries), y_true=first.y_true, proba=proba,
        label_names=first.label_names, seed=int(first.metrics.get("seed") or 0),
        best_params={"combine": "mean of probabilities", "members": [s["run_name"] for s in summaries]},
        n_train=int(first.metrics.get("n_train") or 0),
        feature_dim=int(sum(int(m.metrics.get("feature_dim") or 0) for m in members)),
        fit_seconds=float(sum(float(m.metrics.get("fit_seconds") or 0.0) for m in members)),
        predict_seconds=time.perf_counter() - started,
        provenance={"members": summaries, "combine": "mean of probabilities", "datasets": datasets},
        command=command, kind="ensemble",
        extra={"members": summaries, "best_member": best["run_name"], "best_member_accuracy": best["accuracy"],
               "probabilities_file": "probabilities.npz",
               RUN_IDENTITY_KEY: recorded_run_identity(first.metrics),
               **({"test_set": first.metrics["test_set"]} if isinstance(first.metrics.get("test_set"), dict) else {})},
    )
    record["gain_over_best_member"] = record["accuracy"] - float(best["accuracy"])
    write_record(run_dir, record, report_files(record, first.y_true, proba, first.label_names), first.paths,
                 first.y_true, proba, first.label_names)
    return EnsembleResult(run_dir, name, record, members)


__all__ = ["EnsembleResult", "ensemble_name", "run_ensemble"]
