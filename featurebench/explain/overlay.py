"""Images for people: heatmap overlays, grids of feature maps, and small inlined JPEG thumbnails.

No TensorFlow here: the report's gallery uses :func:`thumbnail_uri` without loading a network.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np

#: Thumbnails for the report: longest side in pixels and the most bytes one may take.
THUMB_SIDE = 96
THUMB_MAX_BYTES = 6000


def normalise_map(cam: np.ndarray, positive_only: bool = False) -> np.ndarray:
    """Scale a 2-D map to [0, 1]: min-max (CAM), or its positive part over its max (Grad-CAM's ReLU).

    A constant map (no evidence anywhere) becomes all zeros.
    """
    cam = np.asarray(cam, dtype=np.float64)
    if positive_only:
        cam = np.maximum(cam, 0.0)
        top = cam.max()
        return cam / top if top > 0 else np.zeros_like(cam)
    low, high = cam.min(), cam.max()
    return (cam - low) / (high - low) if high > low else np.zeros_like(cam)


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.45, colormap: str = "jet") -> np.ndarray:
    """Blend a [0, 1] heatmap (any size, upsampled bilinearly) onto an RGB uint8 image."""
    import matplotlib
    from PIL import Image

    height, width = image.shape[:2]
    heat_img = Image.fromarray(np.uint8(np.clip(heat, 0, 1) * 255)).resize((width, height), Image.BILINEAR)
    colours = matplotlib.colormaps[colormap](np.asarray(heat_img) / 255.0)[..., :3]
    blended = (1 - alpha) * image.astype(np.float64) / 255.0 + alpha * colours
    return np.uint8(np.clip(blended, 0, 1) * 255 + 0.5)


def save_png(array: np.ndarray, path: str | Path) -> Path:
    """Write an RGB or gray uint8 array as PNG."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format="PNG")
    return path


def grid(tiles: np.ndarray, columns: int | None = None, pad: int = 2) -> np.ndarray:
    """Tile (N, H, W) or (N, H, W, 3) uint8 images into one image, ``columns`` wide (default ~sqrt N)."""
    tiles = np.asarray(tiles)
    n, h, w = tiles.shape[:3]
    columns = columns or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / columns))
    shape = (rows * (h + pad) + pad, columns * (w + pad) + pad) + tiles.shape[3:]
    canvas = np.full(shape, 255, dtype=np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        canvas[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = tile
    return canvas


def to_uint8(channel: np.ndarray) -> np.ndarray:
    """A float map scaled min-max to 0..255 (constant maps become 0)."""
    return np.uint8(normalise_map(channel) * 255 + 0.5)


def thumbnail_uri(image: np.ndarray, side: int = THUMB_SIDE, max_bytes: int = THUMB_MAX_BYTES) -> str:
    """A ``data:image/jpeg;base64,...`` URI of ``image`` shrunk to ``side`` pixels (longest side),
    re-encoded at falling quality / size until the JPEG fits in ``max_bytes``."""
    from PIL import Image

    img = Image.fromarray(np.asarray(image, dtype=np.uint8))
    img.thumbnail((side, side), Image.LANCZOS)
    data = b""
    for quality in (75, 60, 45, 30):
        buffer = io.BytesIO()
        img.save(buffer, format="JPEG", quality=quality, optimize=True)
        data = buffer.getvalue()
        if len(data) <= max_bytes:
            break
    while len(data) > max_bytes and min(img.size) > 8:
        img = img.resize((max(1, img.size[0] * 3 // 4), max(1, img.size[1] * 3 // 4)), Image.LANCZOS)
        buffer = io.BytesIO()
        img.save(buffer, format="JPEG", quality=30, optimize=True)
        data = buffer.getvalue()
    return "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")


def image_thumbnail(path: str | Path, side: int = THUMB_SIDE, max_bytes: int = THUMB_MAX_BYTES) -> str | None:
    """:func:`thumbnail_uri` of an image file (decoded robustly), or None when it cannot be read."""
    from featurebench.data.decode import SkipImage, decode_image

    try:
        image = decode_image(path, draft=(side, side))
    except (SkipImage, OSError):
        return None
    return thumbnail_uri(image, side, max_bytes)
