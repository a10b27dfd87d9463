"""Typer command function for ``finetune`` (register with ``app.command()(finetune)``).

TensorFlow and the training code are imported inside the body, so ``featurebench --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from featurebench.terminal import diagnostics as console
from featurebench.text import command_line
from featurebench.training.options import CHECKPOINT_EVERY, checkpoint_every_option, resume_option, say_interrupted


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
    resume: Optional[Path] = resume_option(),
    force: bool = typer.Option(False, "--force", help="Delete an existing run folder and start over."),
    label_pattern: Optional[str] = typer.Option(None, help="Regex on file names giving the label."),
    root: Optional[Path] = typer.Option(None, help="Root for relative paths in a CSV."),
    workers: int = typer.Option(2, help="Decoding threads for folder sources."),
    dataset_name: Optional[str] = typer.Option(None, "--name", help="Dataset name for the run record."),
    checkpoint_every: Optional[int] = checkpoint_every_option(),
    keep_checkpoint: bool = typer.Option(True, "--keep-checkpoint/--no-keep-checkpoint",
                                         help="Keep the last checkpoint (needed to extend the run with --resume)."),
) -> None:
    """Fine-tune a pretrained backbone: new head, warm-up on a frozen body, unfreeze, lower LR.

    Writes RESULTS_DIR/<run-name>/: metrics.json (for `featurebench report`), model.keras, history.json,
    monitor.png, checkpoints.

    Interrupted? Continue with --resume RUN_DIR|CHECKPOINT (optionally --epochs N to train longer).
    The model is an extractor too: `featurebench extract SOURCE -o F.h5 --model RUN/model.keras --layer head_fc`.
    """
    from featurebench.finetune.recipes import resolve_recipe
    from featurebench.finetune.run import FinetuneOptions, run_finetune, saved_recipe
    from featurebench.training.session import TrainingInterrupted

    overrides = {
        "model": model, "weights": weights, "warmup_epochs": warmup_epochs, "epochs": epochs,
        "unfreeze_from": unfreeze_from, "image_size": image_size, "head": head, "head_hidden": head_hidden,
        "head_dropout": head_dropout, "batch_size": batch_size, "warmup_optimizer": warmup_optimizer,
        "warmup_lr": warmup_lr, "optimizer": optimizer, "lr": lr, "momentum": momentum, "augment": augment,
        "normalize": normalize, "resize": resize, "load_size": load_size, "patch": patch, "ten_crop": ten_crop,
        "train_fraction": train_fraction, "val_fraction": val_fraction, "early_stopping": early_stopping,
        "seed": seed, "precision": precision,
    }
    # On --resume without --recipe, the run's own recipe is the base the flags given change.
    base = saved_recipe(str(resume)) if resume and recipe is None else None
    opts = FinetuneOptions(
        source=str(source), recipe=resolve_recipe(recipe, overrides, base), out=str(out), run_name=run_name,
        resume=str(resume) if resume else None, force=force, label_pattern=label_pattern,
        root=str(root) if root else None, workers=workers, dataset_name=dataset_name,
        checkpoint_every=checkpoint_every or CHECKPOINT_EVERY, keep_checkpoint=keep_checkpoint, command=command_line(),
    )
    say = lambda message: console.print(message, soft_wrap=True, highlight=False)  # noqa: E731
    try:
        result = run_finetune(opts, on_epoch=lambda info: say(_epoch_line(info)), say=say)
    except TrainingInterrupted as stop:
        say_interrupted(console, "finetune", source, stop)
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


__all__ = ["finetune"]
