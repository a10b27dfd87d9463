"""Resize decoded images to a model's input size.

``stretch`` is what the classic scripts do (straight to 224x224, aspect ratio
ignored); ``center-crop`` keeps the aspect ratio: resize the short side to the
target, then cut the centre. Shrinking uses area interpolation (no aliasing),
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
        scale = max(height / src_h, width / src_w)
        new_h, new_w = max(height, round(src_h * scale)), max(width, round(src_w * scale))
        resized = cv2.resize(image, (new_w, new_h), interpolation=_interpolation((src_h, src_w), (new_h, new_w)))
        top, left = (new_h - height) // 2, (new_w - width) // 2
        return np.ascontiguousarray(resized[top:top + height, left:left + width])
    if mode != "stretch":
        raise ValueError(f"unknown resize mode {mode!r}; choose one of {RESIZE_MODES}")
    if (src_h, src_w) == (height, width):
        return image
    return cv2.resize(image, (width, height), interpolation=_interpolation((src_h, src_w), (height, width)))
