"""Typer command functions for ``inspect`` and ``explain`` (registered in cli.py; TensorFlow loads inside
the bodies)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from featurebench.terminal import diagnostics as console


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
    from featurebench.explain.inspection import format_table, inspect_model

    result = inspect_model(model, include_top, weights or "none", image_size=image_size, unsafe=unsafe_model,
                           expand=expand)
    typer.echo(result.to_json() if as_json else format_table(result))


def explain(
    target: Path = typer.Argument(..., help="A fit bundle (RUN/model.skops), a fine-tuned or other Keras "
                                  "classifier (.keras/.h5), or a run folder holding one."),
    inputs: List[Path] = typer.Argument(..., help="Image files and/or folders (searched recursively)."),
    out: Path = typer.Option(Path("explain"), "--out", help="Folder for the overlay PNGs and explain.json."),
    top: int = typer.Option(3, "--top", help="Classes (and heatmaps) per image."),
    layer: Optional[str] = typer.Option(None, "--layer", help="Conv layer for Grad-CAM (default: the last spatial "
                                        "layer; naming one switches a CAM bundle to Grad-CAM)."),
    model: Optional[str] = typer.Option(None, "--model", help="The bundle's model file, if it has moved."),
    weights: Optional[str] = typer.Option(None, "--weights", help="Weights file of a registry model trained "
                                          "with --weights PATH."),
    preprocess: str = typer.Option("none", "--preprocess", help="Keras classifier files: caffe, tf, torch, lite or "
                                   "none (fine-tuned models normalise inside; bundles use their own)."),
    trust: bool = typer.Option(False, "--trust", help="Load bundle types outside the allow-list."),
    unsafe_model: bool = typer.Option(False, help="Allow Keras model files with Lambda layers (runs their code)."),
) -> None:
    """Top-k classes and a heatmap overlay PNG per class: exact CAM for linear bundles, else Grad-CAM."""
    from featurebench.explain.run import explain_images

    result = explain_images(target, inputs, out, top, layer, trust, model, weights, preprocess, unsafe_model,
                            progress=lambda done, total: console.print(f"explained {done}/{total}", end="\r"))
    typer.echo(result.describe())
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {warning}", soft_wrap=True)


__all__ = ["explain", "inspect"]
