"""``featurebench explain``: top-k classes and a heatmap overlay PNG per class for each image."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from featurebench.explain.explainer import METHODS, load_explainer
from featurebench.explain.overlay import overlay, save_png
from featurebench.outputs import check_writable_folder


@dataclass
class ExplainedImage:
    """One image: its top classes with scores and the overlay PNG of each."""

    path: str
    labels: list[str]
    scores: list[float]
    pngs: list[str]


@dataclass
class ExplainResult:
    """Everything ``explain`` wrote (``explain.json`` lists it too)."""

    out: Path
    method: str
    layer: str
    score_kind: str
    images: list[ExplainedImage]
    unreadable: list[tuple[str, str]]
    warnings: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """Lines for the terminal: one per image, then where the files are."""
        lines = [f"{METHODS[self.method]} on layer {self.layer}; scores are {self.score_kind}"]
        for item in self.images:
            best = ", ".join(f"{label} {score:.3f}" for label, score in zip(item.labels, item.scores))
            lines.append(f"{item.path}\t{best}")
        lines += [f"{path}\tUNREADABLE: {reason}" for path, reason in self.unreadable]
        lines.append(f"wrote {sum(len(i.pngs) for i in self.images)} overlay PNG(s) and explain.json to {self.out}")
        return "\n".join(lines)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", text).strip("-.")[:40] or "class"


def explain_images(target: str | Path, inputs: Sequence[str | Path], out: str | Path, top: int = 3,
                   layer: str | None = None, trust: bool = False, model: str | None = None,
                   weights: str | None = None, preprocess: str = "none", unsafe_model: bool = False,
                   progress: Callable[[int, int], Any] | None = None) -> ExplainResult:
    """Explain every image of ``inputs`` (files and folders) with ``target``; write PNGs into ``out``."""
    from featurebench.data.decode import SkipImage
    from featurebench.data.pipeline import DecodeOptions, load_image
    from featurebench.fit.predict import collect_images

    out = Path(out)
    check_writable_folder(out, "--out")
    explainer = load_explainer(target, layer, trust, model, weights, preprocess, unsafe_model)
    files, unreadable = collect_images(inputs)
    options = DecodeOptions(tuple(explainer.input_size), explainer.resize)
    images: list[ExplainedImage] = []
    for i, file in enumerate(files):
        try:
            image = load_image(file, options)
        except SkipImage as exc:
            unreadable.append((file, exc.message))
            continue
        result = explainer.explain(image, top)
        pngs = []
        for rank, (label, heat) in enumerate(zip(result.labels, result.maps), 1):
            name = f"{i:04d}_{_slug(Path(file).stem)}__top{rank}_{_slug(label)}.png"
            pngs.append(str(save_png(overlay(image, heat), out / name)))
        images.append(ExplainedImage(file, result.labels, result.scores, pngs))
        if progress:
            progress(i + 1, len(files))
    summary = ExplainResult(out, explainer.method, explainer.layer, explainer.score_kind, images, unreadable,
                            list(explainer.warnings))
    (out / "explain.json").write_text(json.dumps({
        "target": str(target), "method": summary.method, "method_description": METHODS[summary.method],
        "layer": summary.layer, "score_kind": summary.score_kind,
        "images": [vars(item) for item in images], "unreadable": [list(u) for u in unreadable]}, indent=2) + "\n")
    return summary
