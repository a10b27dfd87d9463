"""CLI commands of the scale capability (``merge``, ``sweep``), registered in ``featurebench.cli``.

Plain typer-annotated functions over the library; Ray is imported only when ``--ray`` is given.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from featurebench.terminal import diagnostics as console
from featurebench.text import command_line


def merge(
    shard_files: List[Path] = typer.Argument(..., help="The shard files of one `extract --shards N` run (all N)."),
    output: Path = typer.Option(..., "-o", "--output", help="Feature file to write (HDF5)."),
    virtual: bool = typer.Option(False, "--virtual", help="Write features as an HDF5 virtual dataset over the "
                                 "shard files (no copy; keep the shard files beside it)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing output."),
) -> None:
    """Assemble the shard files of `extract --shards` into the one file a single machine writes."""
    from featurebench.scale.merge import merge_shards

    counts = merge_shards(shard_files, output, virtual=virtual, force=force, command=command_line())
    kind = "virtual features over the shard files" if virtual else "copied features"
    typer.echo(f"Wrote {output}: {counts['n_rows']} rows, {counts['n_skipped']} skipped, "
               f"{counts['n_duplicates']} duplicates, from {len(shard_files)} shards ({kind})")


def sweep(
    features: List[Path] = typer.Argument(..., help="Feature files (.h5) written by `featurebench extract`."),
    clf: List[str] = typer.Option(["logreg"], "--clf", help="Classifiers: repeat the flag or separate with "
                                  "commas (--clf logreg,svm,xgb)."),
    out: Path = typer.Option(Path("results"), "--out", help="Results folder; each cell goes to OUT/<run-name>/."),
    ray: bool = typer.Option(False, "--ray", help="Run each cell as a Ray task (pip install 'featurebench[ray]'; "
                             "the feature files and --out must be on storage every node reads)."),
    address: Optional[str] = typer.Option(None, help="With --ray: the cluster, auto or ray://HOST:PORT "
                                          "(default: start one on this machine)."),
    cpus_per_task: int = typer.Option(1, help="With --ray: CPUs per cell (its grid search's n_jobs)."),
    spill_dir: Optional[str] = typer.Option(None, help="With --ray and no --address: folder the object store "
                                            "spills to (default: Ray's temporary folder)."),
    skip_existing: bool = typer.Option(False, "--skip-existing", help="Leave finished cells as they are (resume)."),
    force: bool = typer.Option(False, "--force", help="Replace existing run folders."),
    grid: Optional[str] = typer.Option(None, "--grid", help="Grid for every cell (see `featurebench fit --help`)."),
    cv: int = typer.Option(3, "--cv", help="Folds of the grid search (train slice only)."),
    n_jobs: Optional[int] = typer.Option(None, "--n-jobs", help="Parallel fits per cell (default: all cores; "
                                         "with --ray: --cpus-per-task)."),
    scale: str = typer.Option("none", "--scale", help="none or standard."),
    protocol: str = typer.Option("grid", "--protocol", help="grid or probe."),
    seed: int = typer.Option(42, "--seed", help="Seed of splits, bootstrap and classifiers."),
) -> None:
    """Fit every (feature file, classifier) cell, each into its own run folder as `fit` does."""
    from rich.markup import escape

    from featurebench.errors import FeaturebenchError
    from featurebench.scale.sweep import run_sweep

    classifiers = [name.strip() for value in clf for name in value.split(",") if name.strip()]
    fit_args = {"grid": grid, "cv": cv, "scale": scale, "protocol": protocol, "seed": seed, "force": force,
                "skip_existing": skip_existing, "command": command_line()}
    if n_jobs is not None:
        fit_args["n_jobs"] = n_jobs

    def on_cell(path: str, name: str, run, error: str | None) -> None:
        if run is not None:
            typer.echo(run.describe())
            for message in run.warnings:
                console.print(f"[yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True)
        else:
            console.print(f"[red]failed:[/] {escape(name)} on {escape(path)}: {escape(error or '')}",
                          highlight=False, soft_wrap=True)

    def on_begin(number: int, total: int, path: str, name: str) -> None:
        verb = "submitting" if ray else "fitting"
        console.print(f"sweep [{number}/{total}] {verb} {escape(name)} on {escape(Path(path).name)}",
                      highlight=False, soft_wrap=True)

    result = run_sweep(features, classifiers, out, fit_args, ray=ray, address=address,
                       cpus_per_task=cpus_per_task, on_cell=on_cell, on_begin=on_begin,
                       spill_dir=spill_dir)
    from featurebench.text import plural

    skipped = sum(1 for run in result.runs if run.skipped)
    console.print(f"Sweep: {plural(len(result.runs) - skipped, 'cell')} done, {skipped} skipped (already there), "
                  f"{len(result.failures)} failed; `featurebench report {escape(str(out))}` to compare them.",
                  soft_wrap=True, highlight=False)
    if result.failures:
        raise FeaturebenchError(f"{len(result.failures)} of {len(result.runs) + len(result.failures)} sweep "
                                "cells failed (listed above); fix them and re-run with --skip-existing.")
