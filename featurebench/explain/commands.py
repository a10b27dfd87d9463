"""Typer command function for ``explain`` (registered in cli.py; TensorFlow loads inside the body)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from featurebench.terminal import diagnostics as console


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
