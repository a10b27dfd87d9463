"""Typer command functions for ``inspect``, ``finetune`` and ``build-images``.

Register them on the app with ``app.command()(fn)`` (names come from the function
names). TensorFlow and the training code are imported inside the bodies, so
``featurebench --help`` stays fast.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Optional

import typer

from featurebench.terminal import diagnostics as console
from featurebench.terminal import results as out


def _command_line() -> str:
    return shlex.join(["featurebench", *sys.argv[1:]])


def inspect(
    model: str = typer.Argument(..., help="Registered name (see `featurebench models`) or a model file "
                                "(.keras, .h5, .tflite, SavedModel folder)."),
    include_top: bool = typer.Option(False, "--include-top", help="Registry models: include the ImageNet classifier."),
    weights: Optional[str] = typer.Option(None, help="Registry models: none (architecture only, no download; the "
                                          "default for the table), imagenet (the default with --activations/"
                                          "--filters), or PATH to a weights file to check it loads."),
    image_size: Optional[int] = typer.Option(None, help="Registry models: build for this input size."),
    expand: bool = typer.Option(True, "--expand/--no-expand", help="List the layers of nested models (2.15 = layer "
                                "15 of layer 2)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    unsafe_model: bool = typer.Option(False, help="Allow Keras model files with Lambda layers (runs their code)."),
    activations: Optional[Path] = typer.Option(None, "--activations", help="Image: write a grid of --layer's feature "
                                               "maps for it (PNG)."),
    layer: Optional[str] = typer.Option(None, "--layer", help="Layer for --activations (a name from the table)."),
    filters: Optional[str] = typer.Option(None, "--filters", help="Layer: write its filters' patterns, found by "
                                          "gradient ascent (PNG)."),
    n_filters: int = typer.Option(16, "--n-filters", help="How many filters --filters draws."),
    steps: int = typer.Option(30, "--steps", help="Gradient-ascent steps per filter pattern."),
    out: Path = typer.Option(Path("inspect"), "--out", help="Folder for the --activations / --filters PNGs."),
) -> None:
    """List every layer: index, name, class, output shape, params, trainable (TFLite: tensors).

    Use the indices and names with `finetune --unfreeze-from` and `extract --layer`. With
    --activations IMAGE --layer NAME or --filters LAYER, draw what a layer sees instead.
    """
    if activations is not None or filters is not None:
        from featurebench.explain.look import look_at_layers

        for line in look_at_layers(model, out, activations, layer, filters, weights or "imagenet", n_filters, steps,
                                   include_top, image_size, unsafe_model):
            typer.echo(line)
        return
    from featurebench.finetune.inspection import format_table, inspect_model

    result = inspect_model(model, include_top, weights or "none", image_size=image_size, unsafe=unsafe_model,
                           expand=expand)
    typer.echo(result.to_json() if as_json else format_table(result))


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

    from featurebench.finetune.image_file import BuildImagesOptions, build_images as run_build

    opts = BuildImagesOptions(
        source=str(source), output=str(output), size=size, resize=resize, seed=seed, train_fraction=train_fraction,
        val_fraction=val_fraction, label_pattern=label_pattern, root=str(root) if root else None,
        allow_outside_root=allow_outside_root, allow_truncated=allow_truncated, max_pixels=max_pixels,
        workers=workers, compression=compression, force=force, dataset_name=dataset_name, command=_command_line(),
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


def _epoch_line(info: dict) -> str:
    logs = info["logs"]
    parts = [f"{info['phase']:<8} epoch {info['epoch'] + 1:>4} ({info['phase_epoch']}/{info['phase_epochs']})"]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        if key in logs:
            parts.append(f"{key} {logs[key]:.4f}")
    parts.append(f"{info['seconds']:.1f}s")
    return "  ".join(parts)


def finetune(
    source: Path = typer.Argument(..., help="A `build-images` HDF5 file, a class-per-folder directory, a CSV/TSV "
                                  "of path,label, or a directory plus --label-pattern (streamed from disk)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Registered backbone (see `featurebench models`); "
                                        "default: the recipe's."),
    weights: Optional[str] = typer.Option(None, help="imagenet (default), none (random init: a baseline), or PATH."),
    recipe: Optional[str] = typer.Option(None, help="Built-in recipe (classic-flowers17, tfhub-mobilenet) or a "
                                         ".yaml/.json file; flags below override it."),
    warmup_epochs: Optional[int] = typer.Option(None, help="Phase 1: epochs training only the new head."),
    epochs: Optional[int] = typer.Option(None, help="Phase 2: epochs after unfreezing."),
    unfreeze_from: Optional[str] = typer.Option(None, help="Body layer index or name to unfreeze from "
                                                "(`featurebench inspect MODEL`), e.g. 15 or block5_conv1; "
                                                "'none' skips phase 2."),
    image_size: Optional[int] = typer.Option(None, help="Network input size (default: the model's)."),
    out: Path = typer.Option(Path("results"), "--out", help="RESULTS_DIR; the run goes to RESULTS_DIR/<run-name>/."),
    run_name: Optional[str] = typer.Option(None, help="Run folder name or template ({dataset}, {extractor}, {recipe}, "
                                           "{head}, {seed}); default {dataset}__{extractor}__finetune-{recipe}."),
    head: Optional[str] = typer.Option(None, help="fc (Flatten-Dense-Dropout-softmax) or gap (pool + softmax)."),
    head_hidden: Optional[int] = typer.Option(None, help="fc head: hidden units (classic 256)."),
    head_dropout: Optional[float] = typer.Option(None, help="Head dropout (classic 0.5)."),
    batch_size: Optional[int] = typer.Option(None, help="Images per step (classic 32)."),
    warmup_optimizer: Optional[str] = typer.Option(None, help="sgd, rmsprop, adam or adamw (classic rmsprop)."),
    warmup_lr: Optional[float] = typer.Option(None, help="Phase 1 learning rate (classic 1e-3)."),
    optimizer: Optional[str] = typer.Option(None, help="Phase 2 optimizer (classic sgd)."),
    lr: Optional[float] = typer.Option(None, help="Phase 2 learning rate (classic 1e-3)."),
    momentum: Optional[float] = typer.Option(None, help="SGD momentum (classic 0)."),
    augment: Optional[str] = typer.Option(None, help="classic (rotation 30, shifts 0.1, shear 0.2, zoom 0.2, "
                                          "flip), flip, or none."),
    normalize: Optional[str] = typer.Option(None, help="model (the backbone's preprocessing), dataset-mean "
                                            "(training-split RGB means, saved as means.json), or scale (x/255)."),
    resize: Optional[str] = typer.Option(None, help="Folder sources: center-crop (aspect-aware) or stretch."),
    load_size: Optional[int] = typer.Option(None, help="Folder sources: decode to this size before cropping."),
    patch: Optional[bool] = typer.Option(None, "--patch/--no-patch", help="Train on random crops of the loaded image."),
    ten_crop: Optional[bool] = typer.Option(None, "--ten-crop/--no-ten-crop", help="Test on 10 crops, averaged."),
    train_fraction: Optional[float] = typer.Option(None, help="Folder sources: train+val share (default 0.75)."),
    val_fraction: Optional[float] = typer.Option(None, help="Folder sources: validation share, cut from the train part."),
    early_stopping: Optional[int] = typer.Option(None, help="Stop a phase after this many epochs without "
                                                 "validation-loss improvement."),
    seed: Optional[int] = typer.Option(None, help="Seed for shuffling, split, init and augmentation (default 42)."),
    precision: Optional[str] = typer.Option(None, help="fp32 (default), bf16 (mixed bfloat16: CPUs with AVX512-BF16/"
                                            "AMX, recent GPUs) or fp16 (mixed float16 + loss scaling: GPUs)."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run from its last checkpoint."),
    force: bool = typer.Option(False, "--force", help="Delete an existing run folder and start over."),
    label_pattern: Optional[str] = typer.Option(None, help="Regex on file names giving the label."),
    root: Optional[Path] = typer.Option(None, help="Root for relative paths in a CSV."),
    workers: int = typer.Option(2, help="Decoding threads for folder sources."),
    dataset_name: Optional[str] = typer.Option(None, "--name", help="Dataset name for the run record."),
    checkpoint_every: int = typer.Option(1, help="Checkpoint every N epochs (and at each phase end)."),
    keep_checkpoint: bool = typer.Option(True, "--keep-checkpoint/--no-keep-checkpoint",
                                         help="Keep the last checkpoint (needed to extend the run with --resume)."),
) -> None:
    """Fine-tune a pretrained backbone: new head, warm-up on a frozen body, unfreeze, lower LR.

    Writes RESULTS_DIR/<run-name>/: metrics.json (for `featurebench report`), model.keras, history.json,
    monitor.png, checkpoints.

    Interrupted? Run the same command with --resume. The model is an extractor too:
    `featurebench extract SOURCE -o F.h5 --model RUN/model.keras --layer head_fc`.
    """
    from featurebench.finetune.recipes import resolve_recipe
    from featurebench.finetune.run import FinetuneOptions, run_finetune

    overrides = {
        "model": model, "weights": weights, "warmup_epochs": warmup_epochs, "epochs": epochs,
        "unfreeze_from": unfreeze_from, "image_size": image_size, "head": head, "head_hidden": head_hidden,
        "head_dropout": head_dropout, "batch_size": batch_size, "warmup_optimizer": warmup_optimizer,
        "warmup_lr": warmup_lr, "optimizer": optimizer, "lr": lr, "momentum": momentum, "augment": augment,
        "normalize": normalize, "resize": resize, "load_size": load_size, "patch": patch, "ten_crop": ten_crop,
        "train_fraction": train_fraction, "val_fraction": val_fraction, "early_stopping": early_stopping,
        "seed": seed, "precision": precision,
    }
    opts = FinetuneOptions(
        source=str(source), recipe=resolve_recipe(recipe, overrides), out=str(out), run_name=run_name, resume=resume,
        force=force, label_pattern=label_pattern, root=str(root) if root else None, workers=workers,
        dataset_name=dataset_name, checkpoint_every=checkpoint_every, keep_checkpoint=keep_checkpoint,
        command=_command_line(),
    )
    say = lambda message: console.print(message, soft_wrap=True, highlight=False)  # noqa: E731
    try:
        result = run_finetune(opts, on_epoch=lambda info: say(_epoch_line(info)), say=say)
    except KeyboardInterrupt:
        console.print("[yellow]Interrupted.[/] Run the same command with --resume to continue from the last "
                      "checkpoint.")
        raise typer.Exit(130) from None
    from featurebench.text import plural

    m = result.metrics
    rank5 = f", rank-5 {m['rank5']:.4f}" if m.get("rank5") is not None else ""
    # Results to stdout (`out` is the --out folder here, not the stdout console).
    typer.echo(f"{result.run_name}: accuracy {m['accuracy']:.4f}{rank5} on {m['n_test']} test images "
               f"after {plural(m['epochs_run'], 'epoch')} ({m['fit_seconds']:.0f} s)")
    typer.echo(f"Run folder: {result.run_dir} (metrics.json, model.keras, monitor.png)")
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {warning}", soft_wrap=True)


__all__ = ["build_images", "finetune", "inspect"]
