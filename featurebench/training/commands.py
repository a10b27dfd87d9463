"""Typer command function for ``build-images`` (register with ``app.command()(build_images)``): the
raw-image HDF5 file that ``finetune`` and ``train`` read. The library is imported inside the body.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from featurebench.terminal import diagnostics as console
from featurebench.terminal import results as out
from featurebench.text import command_line


def build_images(
    source: Path = typer.Argument(..., help="Class-per-folder directory, a CSV/TSV of path,label, "
                                  "or a directory plus --label-pattern."),
    output: Path = typer.Option(..., "-o", "--output", help="Raw-image HDF5 file to write."),
    size: int = typer.Option(224, help="Stored image size (square). Store larger than the network input "
                             "(e.g. 256 for 224) to train on random crops / test on 10 crops."),
    resize: str = typer.Option("center-crop", help="center-crop (aspect-aware resize + centre crop) or stretch."),
    seed: int = typer.Option(42, help="Seed of the one shuffle of the image list (stored)."),
    train_fraction: float = typer.Option(0.75, help="Rows [:int(N*f)] are train+val, the rest test (as extract)."),
    val_fraction: float = typer.Option(0.1, help="Validation rows: the last int(N*f) of the train part."),
    label_pattern: Optional[str] = typer.Option(None, help="Regex on file names giving the label."),
    root: Optional[Path] = typer.Option(None, help="Root for relative paths in a CSV (default: the CSV's folder)."),
    allow_outside_root: bool = typer.Option(False, help="Allow CSV paths that leave the dataset root."),
    allow_truncated: bool = typer.Option(False, help="Keep truncated images instead of skipping them."),
    max_pixels: int = typer.Option(178_956_970, help="Refuse images with more pixels (decompression bombs)."),
    workers: int = typer.Option(2, help="Decoding threads."),
    compression: Optional[str] = typer.Option(None, help="HDF5 compression: gzip or lzf (photos gain little)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing output."),
    dataset_name: Optional[str] = typer.Option(None, "--name", help="Dataset name recorded in the file."),
) -> None:
    """Write a raw-image HDF5 dataset (uint8, resized, labels, seeded train/val/test split) for fine-tuning."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from featurebench.training.image_file import BuildImagesOptions, build_images as run_build

    opts = BuildImagesOptions(
        source=str(source), output=str(output), size=size, resize=resize, seed=seed, train_fraction=train_fraction,
        val_fraction=val_fraction, label_pattern=label_pattern, root=str(root) if root else None,
        allow_outside_root=allow_outside_root, allow_truncated=allow_truncated, max_pixels=max_pixels,
        workers=workers, compression=compression, force=force, dataset_name=dataset_name, command=command_line(),
    )
    progress = Progress(TextColumn("[bold]build-images"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                        console=console)
    task = progress.add_task("images", total=None)
    with progress:
        summary = run_build(opts, lambda done, total: progress.update(task, completed=done, total=total))
    counts = ", ".join(f"{k} {v}" for k, v in summary.counts.items())
    out.print(f"[green]Wrote[/] {summary.output}: {summary.n_images} images ({counts}), {summary.n_skipped} skipped, "
                  f"{summary.file_bytes / 1e6:.1f} MB, {summary.seconds:.1f} s", soft_wrap=True)
    if summary.skipped_reasons:
        console.print("Skipped by reason: " + ", ".join(f"{k}: {v}" for k, v in sorted(summary.skipped_reasons.items())))
    for warning in summary.warnings:
        console.print(f"[yellow]warning:[/] {warning}", soft_wrap=True)


__all__ = ["build_images"]
