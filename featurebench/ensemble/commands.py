"""Typer command functions for ``ensemble`` and ``fuse`` (register with ``app.command()(fn)``)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape

from featurebench.terminal import print_result
from featurebench.text import command_line


def ensemble(
    run_dirs: List[Path] = typer.Argument(..., help="Two or more run folders (RESULTS_DIR/<run>) of fit, finetune, "
                                          "train or ensemble, tested on the same images."),
    out: Path = typer.Option(Path("results"), "--out", help="RESULTS_DIR; the ensemble goes to RESULTS_DIR/<run-name>/."),
    run_name: Optional[str] = typer.Option(None, help="Run folder name (default {dataset}__ensemble__{members})."),
    force: bool = typer.Option(False, "--force", help="Replace an existing run folder."),
) -> None:
    """Average the predicted probabilities of several runs over the same test images (checked by path).

    Writes a run record (kind ensemble) with its members and the gain over the best member;
    `featurebench report` lists it beside them.
    """
    from featurebench.ensemble.average import run_ensemble

    result = run_ensemble(run_dirs, out, run_name, force, command_line())
    m = result.metrics
    for member in m["members"]:
        print_result(f"  member {member['run_name']}: accuracy {member['accuracy']:.4f}")
    print_result(f"[green]{escape(result.run_name)}[/]: accuracy {m['accuracy']:.4f} on {m['n_test']} test "
                 f"images, {m['gain_over_best_member']:+.4f} vs the best member ({escape(m['best_member'])})",
                 markup=True)
    print_result(f"Run folder: {result.run_dir}")


def fuse(
    inputs: List[Path] = typer.Argument(..., help="Two or more feature files (extract) of the same images, "
                                        "same order (same source and --seed)."),
    output: Path = typer.Option(..., "-o", "--output", help="Fused feature file to write."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing output."),
    scale: str = typer.Option("standard", "--scale", help="standard (each column standardised with the train "
                              "rows' mean and std), block (each part divided by its train rows' mean L2 norm) or "
                              "none (raw concatenation)."),
) -> None:
    """Concatenate the features of several extractors row by row into one feature file (early fusion).

    Each part is scaled first (default --scale standard, statistics from the stored split's train rows
    only), so that no extractor dominates by its scale; the choice is recorded in the file."""
    from featurebench.ensemble.fuse import fuse_features

    summary = fuse_features(inputs, output, force, command=command_line(), scale=scale)
    parts = " + ".join(f"{p.get('model')} ({p['feature_dim']})" for p in summary.parts)
    print_result(f"[green]Wrote[/] {escape(str(summary.output))}: {summary.n_rows} rows x {summary.feature_dim} "
                 f"features = {escape(parts)}, scaled: {escape(scale)}, {summary.seconds:.1f} s", markup=True)


__all__ = ["ensemble", "fuse"]
