"""inspect --activations / --filters: a grid of feature maps and gradient-ascent filter patterns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import write_image
from featurebench.errors import FeaturebenchError
from featurebench.explain.look import look_at_layers


def test_activation_grid_and_filter_patterns_of_a_tiny_model(tiny_model_file: Path, tmp_path: Path) -> None:
    from PIL import Image

    image = np.zeros((40, 40, 3), np.uint8)
    image[:, 20:] = 255  # a vertical edge
    photo = write_image(tmp_path / "edge.png", image)
    lines = look_at_layers(str(tiny_model_file), tmp_path / "out", photo, "conv", filters="conv", n_filters=4, steps=3)
    assert "8 of 8 feature maps of conv" in lines[0] and "patterns of 4 filters of conv" in lines[1]
    grid = np.asarray(Image.open(tmp_path / "out" / "tiny__conv__activations__edge.png"))
    assert grid.shape == (3 * 66 + 2, 3 * 66 + 2)  # 8 maps -> 3x3 tiles of 64 px, 2 px gaps
    patterns = np.asarray(Image.open(tmp_path / "out" / "tiny__conv__filters.png"))
    assert patterns.shape == (2 * 98 + 2, 2 * 98 + 2, 3) and patterns.std() > 0
    with pytest.raises(FeaturebenchError, match="not a layer of.*spatial"):
        look_at_layers(str(tiny_model_file), tmp_path / "out", photo, "no_such_layer")
    with pytest.raises(FeaturebenchError, match="not a spatial"):
        look_at_layers(str(tiny_model_file), tmp_path / "out", filters="embedding")
    with pytest.raises(FeaturebenchError, match="needs --layer"):
        look_at_layers(str(tiny_model_file), tmp_path / "out", photo)
