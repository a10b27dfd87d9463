"""Resize decoded images to a model's input size.

``stretch`` is what the classic scripts do (straight to 224x224, aspect ratio
ignored); ``center-crop`` keeps the aspect ratio: the centre region of the source with
the target's aspect ratio is cut first (in source coordinates, so memory stays flat
however extreme the aspect ratio: a 1x20000 image never becomes a 224x4480000 one),
then resized to the target. Shrinking uses area interpolation (no aliasing),
enlarging uses bilinear.
"""

from __future__ import annotations

import cv2
import numpy as np

RESIZE_MODES = ("stretch", "center-crop")


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
