"""``featurebench inspect MODEL --activations IMAGE --layer NAME`` and ``--filters LAYER``: the PNGs."""

from __future__ import annotations

import re
from pathlib import Path

from featurebench.errors import FeaturebenchError


def look_at_layers(model: str, out: str | Path, image: str | Path | None = None, layer: str | None = None,
                   filters: str | None = None, weights: str = "imagenet", n_filters: int = 16, steps: int = 30,
                   include_top: bool = False, image_size: int | None = None, unsafe: bool = False) -> list[str]:
    """Write the activation grid and/or filter patterns of ``model``; return lines saying what was written."""
    from featurebench.data.decode import SkipImage
    from featurebench.data.pipeline import DecodeOptions, load_image
    from featurebench.explain.activations import activation_grid, filter_patterns
    from featurebench.explain.inspection import load_keras_model
    from featurebench.explain.overlay import save_png
    from featurebench.extractors.preprocessing import get_preprocessor

    if str(model).lower().endswith(".tflite"):
        raise FeaturebenchError(f"{model} is a TFLite model: activations and filter patterns need a Keras model")
    if image is not None and not layer:
        raise FeaturebenchError("--activations IMAGE needs --layer NAME (see `featurebench inspect MODEL`)")
    net, title, preprocessing = load_keras_model(model, include_top, weights, image_size=image_size, unsafe=unsafe)
    out = Path(out)
    lines = []
    stem = re.sub(r"[^A-Za-z0-9._+-]+", "-", Path(str(model)).stem)
    if image is not None:
        size = tuple(int(d) for d in net.input_shape[1:3])
        try:
            picture = load_image(image, DecodeOptions(size, "stretch"))
        except SkipImage as exc:
            raise FeaturebenchError(f"--activations {image}: cannot use this image ({exc.message})") from None
        picture_grid, channels = activation_grid(net, picture, get_preprocessor(preprocessing), layer)
        path = save_png(picture_grid, out / f"{stem}__{layer}__activations__{Path(image).stem}.png")
        lines.append(f"{title}: {min(channels, 64)} of {channels} feature maps of {layer} for {image} -> {path}")
    if filters is not None:
        path = save_png(filter_patterns(net, filters, n_filters, steps), out / f"{stem}__{filters}__filters.png")
        lines.append(f"{title}: patterns of {min(n_filters, int(net.get_layer(filters).output.shape[-1]))} "
                     f"filters of {filters} ({steps} gradient-ascent steps) -> {path}")
    if weights == "none":
        lines.append("note: random-init weights (--weights none): these show an untrained network")
    return lines
