"""Typer command function for ``audit`` (registered in cli.py; scikit-learn loads inside the body)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from featurebench.terminal import diagnostics as console


def audit(
    features: Path = typer.Argument(..., help="Feature file (.h5) written by `featurebench extract`."),
    run: Optional[Path] = typer.Option(None, "--run", help="A fit run folder on this file: use its test rows "
                                       "and predictions, and write audit.json there (the report shows it)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for audit.json without --run "
                                       "(default: FEATURES with the suffix .audit)."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Cosine similarity (features centred on the "
                                              "train mean) from which a train/test pair is a near-duplicate "
                                              "(default: adaptive, see --ratio)."),
    ratio: float = typer.Option(0.25, "--ratio", help="Adaptive threshold: a near-duplicate pair is this many times "
                                "closer than the median nearest-neighbour distance between train rows."),
    labels: bool = typer.Option(True, "--labels/--no-labels", help="Look for label issues (confident learning; "
                                "needs cleanlab, the audit extra)."),
    folds: int = typer.Option(5, "--folds", help="Folds of the out-of-fold probabilities for the label audit."),
    seed: int = typer.Option(42, "--seed", help="Seed of the folds."),
) -> None:
    """Find near-duplicates across the split, label issues, outliers and class imbalance."""
    from featurebench.audit.run import run_audit

    say = lambda line: console.print(line, highlight=False, soft_wrap=True)  # noqa: E731 - progress on stderr
    typer.echo(run_audit(features, run, out, threshold, ratio, labels, folds, seed, say=say).describe())
