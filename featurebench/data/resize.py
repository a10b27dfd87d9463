"""Resize decoded images to a model's input size.

``stretch`` is what the classic scripts do (straight to 224x224, aspect ratio
ignored); ``center-crop`` keeps the aspect ratio: the centre region of the source with
the target's aspect ratio is cut first (in source coordinates, so memory stays flat
however extreme the aspect ratio: a 1x20000 image never becomes a 224x4480000 one),
then resized to the target. Shrinking uses area interpolation (no aliasing),
enlarging uses bilinear.

Network inputs are capped like decoded images are (``--max-pixels``), from the declared
size, before any image is resized: a model file declaring a 12000x12000 input (1.7 GB of
float32 per image) is refused when it is loaded, and ``train``/``finetune`` take image
sizes up to :data:`MAX_TRAIN_SIZE`.
"""

from __future__ import annotations

import cv2
import numpy as np

RESIZE_MODES = ("stretch", "center-crop")
#: The most pixels a model's input may have (4096x4096: 201 MB of float32 per image).
MAX_INPUT_PIXELS = 4096 * 4096
#: The largest ``--image-size``/``--load-size`` of ``train`` and ``finetune`` (their nets are
#: published at 32 to 600 pixels; a batch of 32 at 1024x1024 is already 400 MB of input).
MAX_TRAIN_SIZE = 1024


def check_input_size(height: int, width: int, what: str) -> None:
    """Refuse a network input of more than :data:`MAX_INPUT_PIXELS` pixels (``what`` names the
    model), before any image is resized to it."""
    from featurebench.errors import FeaturebenchError

    if height * width > MAX_INPUT_PIXELS:
        raise FeaturebenchError(
            f"{what} declares a {height}x{width} input ({height * width * 12 / 1e9:.1f} GB of float32 per "
            f"image): over the limit of {MAX_INPUT_PIXELS:,} pixels (4096x4096); re-export the model at the "
            "size it was trained at.")


def check_train_size(size: int | None, flag: str) -> None:
    """Refuse a training image size below 8 or above :data:`MAX_TRAIN_SIZE` (``None``: not given)."""
    from featurebench.errors import FeaturebenchError

    if size is not None and not 8 <= size <= MAX_TRAIN_SIZE:
        raise FeaturebenchError(f"{flag} {size}: must be between 8 and {MAX_TRAIN_SIZE} pixels (the input of every "
                                f"image of a batch is held in memory at that size)")


def _interpolation(src_hw: tuple[int, int], dst_hw: tuple[int, int]) -> int:
    shrinking = dst_hw[0] * dst_hw[1] < src_hw[0] * src_hw[1]
    return cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR


def resize_image(image: np.ndarray, size: tuple[int, int], mode: str = "stretch") -> np.ndarray:
    """Return ``image`` (H, W, 3) resized to ``size`` = (height, width) using ``mode``."""
    height, width = size
    src_h, src_w = image.shape[:2]
    if mode == "center-crop":
        # The largest centred box of the target's aspect ratio, in source pixels (>= 1 each way).
        scale = max(height / src_h, width / src_w)
        box_h, box_w = min(src_h, max(1, round(height / scale))), min(src_w, max(1, round(width / scale)))
        top, left = (src_h - box_h) // 2, (src_w - box_w) // 2
        image = image[top:top + box_h, left:left + box_w]
        src_h, src_w = box_h, box_w
        if (src_h, src_w) == (height, width):
            return np.ascontiguousarray(image)
        return cv2.resize(np.ascontiguousarray(image), (width, height),
                          interpolation=_interpolation((src_h, src_w), (height, width)))
    if mode != "stretch":
        raise ValueError(f"unknown resize mode {mode!r}; choose one of {RESIZE_MODES}")
    if (src_h, src_w) == (height, width):
        return image
    return cv2.resize(image, (width, height), interpolation=_interpolation((src_h, src_w), (height, width)))
