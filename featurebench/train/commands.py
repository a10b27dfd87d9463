"""Typer command function for ``train`` (register with ``app.command()(train)``).

TensorFlow and the training code are imported inside the body, so ``featurebench --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from featurebench.terminal import diagnostics as console
from featurebench.terminal import print_result
from featurebench.text import command_line
from featurebench.training.options import checkpoint_every_option, resume_option, say_interrupted


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def _epoch_line(info: dict) -> str:
    logs = info["logs"]
    parts = [f"epoch {info['epoch'] + 1:>4}/{info['epochs']}"]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        if key in logs:
            parts.append(f"{key} {logs[key]:.4f}")
    if info.get("lr") is not None:
        parts.append(f"lr {info['lr']:.3g}")
    parts.append(f"{info['seconds']:.1f}s  ETA {_duration(info['eta_seconds'])}")
    return "  ".join(parts)


def train(
    source: Path = typer.Argument(..., help="A `build-images` HDF5 file, a class-per-folder directory, a CSV/TSV "
                                  "of path,label, or a directory plus --label-pattern (streamed from disk)."),
    net: Optional[str] = typer.Option(None, "--net", help="minivggnet (64px), alexnet (227px), minigooglenet (32px) "
                                      "or resnet (32px cifar / 64px tiny-imagenet stem). Each brings its published "
                                      "recipe; the flags below override it."),
    image_size: Optional[int] = typer.Option(None, help="Network input size (default: the net's)."),
    filters: Optional[str] = typer.Option(None, help="Filters, comma-separated: minivggnet per block (32,64), "
                                          "alexnet per conv (96,256,384,384,256), resnet stem + per stage "
                                          "(64,64,128,256)."),
    hidden: Optional[int] = typer.Option(None, help="Fully connected units (minivggnet 512, alexnet 4096)."),
    stages: Optional[str] = typer.Option(None, help="resnet: residual modules per stage (9,9,9)."),
    stem: Optional[str] = typer.Option(None, help="resnet: cifar or tiny-imagenet."),
    width: Optional[float] = typer.Option(None, help="minigooglenet: multiplier of every filter count (1.0)."),
    l2: Optional[float] = typer.Option(None, help="L2 weight decay on kernels (alexnet 2e-4, resnet 5e-4)."),
    epochs: Optional[int] = typer.Option(None, help="Total epochs (on --resume: train up to this many)."),
    batch_size: Optional[int] = typer.Option(None, help="Images per step."),
    optimizer: Optional[str] = typer.Option(None, help="sgd, rmsprop, adam or adamw."),
    lr: Optional[float] = typer.Option(None, help="(Base) learning rate; with --resume, the new rate from there on."),
    momentum: Optional[float] = typer.Option(None, help="SGD momentum."),
    schedule: Optional[str] = typer.Option(None, help="constant, poly (lr × (1 − epoch/epochs)^power; power 1 = "
                                           "linear) or step (× --step-factor every --step-every epochs)."),
    power: Optional[float] = typer.Option(None, help="poly schedule power."),
    step_factor: Optional[float] = typer.Option(None, help="step schedule factor (0.25)."),
    step_every: Optional[int] = typer.Option(None, help="step schedule period in epochs (5)."),
    augment: Optional[str] = typer.Option(None, help="none, flip, or classic (rotation 30, shifts 0.1, shear 0.2, "
                                          "zoom 0.2, flip)."),
    normalize: Optional[str] = typer.Option(None, help="scale (x/255) or dataset-mean (training-split RGB means)."),
    resize: Optional[str] = typer.Option(None, help="Folder sources: center-crop (aspect-aware) or stretch."),
    load_size: Optional[int] = typer.Option(None, help="Folder sources: decode to this size before cropping."),
    patch: Optional[bool] = typer.Option(None, "--patch/--no-patch", help="Train on random crops of the loaded image."),
    ten_crop: Optional[bool] = typer.Option(None, "--ten-crop/--no-ten-crop", help="Test on 10 crops, averaged."),
    train_fraction: Optional[float] = typer.Option(None, help="Folder sources: train+val share (default 0.75)."),
    val_fraction: Optional[float] = typer.Option(None, help="Folder sources: validation share of it (default 0.1)."),
    seed: Optional[int] = typer.Option(None, help="Seed for order, init and augmentation (default 42)."),
    precision: Optional[str] = typer.Option(None, help="fp32 (default), bf16 or fp16 (mixed precision)."),
    checkpoint_every: Optional[int] = checkpoint_every_option(),
    keep_every: Optional[int] = typer.Option(None, "--keep-every", min=0, metavar="N",
                                             help="Of the checkpoints written, also keep those of epochs that are "
                                             "multiples of N (default 5; 0: only the latest), to resume from an "
                                             "earlier epoch at a new --lr."),
    resume: Optional[Path] = resume_option(),
    out: Path = typer.Option(Path("results"), "--out", help="RESULTS_DIR; the run goes to RESULTS_DIR/<run-name>/."),
    run_name: Optional[str] = typer.Option(None, help="Run folder name or template ({dataset}, {net}, {augment}, "
                                           "{seed}, {size}); default {dataset}__{net}__scratch-{augment}."),
    force: bool = typer.Option(False, "--force", help="Delete an existing run folder and start over."),
    label_pattern: Optional[str] = typer.Option(None, help="Regex on file names giving the label."),
    root: Optional[Path] = typer.Option(None, help="Root for relative paths in a CSV."),
    workers: int = typer.Option(2, help="Decoding threads for folder sources."),
    dataset_name: Optional[str] = typer.Option(None, "--name", help="Dataset name for the run record."),
) -> None:
    """Train a classic network from scratch (the other half of the transfer-learning comparison).

    Writes RESULTS_DIR/<run-name>/: metrics.json (kind scratch, for `featurebench report`), model.keras,
    history.json + monitor.png (every epoch), probabilities.npz, checkpoints.

    Ctrl+C stops; continue with --resume RUN_DIR|CHECKPOINT, optionally at a new --lr.
    """
    from featurebench.train.run import TrainOptions, run_train
    from featurebench.training.session import TrainingInterrupted

    overrides = {
        "net": net, "image_size": image_size, "filters": filters, "hidden": hidden, "stages": stages, "stem": stem,
        "width": width, "l2": l2, "epochs": epochs, "batch_size": batch_size, "optimizer": optimizer, "lr": lr,
        "momentum": momentum, "schedule": schedule, "power": power, "step_factor": step_factor,
        "step_every": step_every, "augment": augment, "normalize": normalize, "resize": resize,
        "load_size": load_size, "patch": patch, "ten_crop": ten_crop, "train_fraction": train_fraction,
        "val_fraction": val_fraction, "seed": seed, "precision": precision, "checkpoint_every": checkpoint_every,
        "keep_every": keep_every,
    }
    opts = TrainOptions(source=str(source), out=str(out), run_name=run_name, resume=str(resume) if resume else None,
                        force=force, label_pattern=label_pattern, root=str(root) if root else None, workers=workers,
                        dataset_name=dataset_name, command=command_line())
    say = lambda message: console.print(message, soft_wrap=True, highlight=False, markup=False)  # noqa: E731
    try:
        result = run_train(opts, overrides, on_epoch=lambda info: say(_epoch_line(info)), say=say)
    except TrainingInterrupted as stop:
        say_interrupted(console, "train", source, stop, " [--lr NEW]")
        raise typer.Exit(130) from None
    m = result.metrics
    rank5 = f", rank-5 {m['rank5']:.4f}" if m.get("rank5") is not None else ""
    train_acc = m.get("final_train_accuracy")
    train_note = f"; last epoch's train accuracy {train_acc:.4f}" if train_acc is not None else ""
    print_result(f"{result.run_name}: test accuracy {m['accuracy']:.4f}{rank5} on {m['n_test']} images "
                 f"after {m['epochs_run']} epochs ({m['fit_seconds']:.0f} s){train_note}")
    print_result(f"Run folder: {result.run_dir} (metrics.json, model.keras, monitor.png)")
    # (its warnings were said before the first epoch and are in metrics.json: not repeated here)


__all__ = ["train"]
