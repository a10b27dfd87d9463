"""The classic image preprocessors, batch-wise in NumPy on RGB uint8 arrays.

- :class:`SimpleResize` — straight to the target size, aspect ratio ignored.
- :class:`AspectAwareResize` — resize the short side, then cut the centre.
- :class:`MeanSubtract` — subtract per-channel RGB means (computed on the training
  split only, see :mod:`featurebench.training.means`).
- :class:`PatchCrop` — a random crop ("patch") of the target size, for training.
- :class:`CenterCrop` and :func:`ten_crops` — the centre, or the centre + 4 corners and
  their horizontal mirrors (10-crop), for testing; predictions over the 10 crops are
  averaged (:func:`featurebench.training.evaluate.predict_proba`).

Every preprocessor maps a (B, H, W, 3) batch to a (B, h, w, 3) batch.
"""

from __future__ import annotations

import numpy as np

from featurebench.data.resize import resize_image


def _hw(size: int | tuple[int, int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


class SimpleResize:
    """Resize to ``size`` ignoring the aspect ratio (the classic SimplePreprocessor)."""

    def __init__(self, size: int | tuple[int, int]):
        self.size = _hw(size)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return np.stack([resize_image(img, self.size, "stretch") for img in images])


class AspectAwareResize:
    """Resize the short side to the target, then centre-crop (the classic AspectAwarePreprocessor)."""

    def __init__(self, size: int | tuple[int, int]):
        self.size = _hw(size)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return np.stack([resize_image(img, self.size, "center-crop") for img in images])


class MeanSubtract:
    """Subtract per-channel RGB means; returns float32."""

    def __init__(self, means: tuple[float, float, float] | np.ndarray):
        self.means = np.asarray(means, dtype=np.float32).reshape(3)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return images.astype(np.float32) - self.means


def _check_fits(images: np.ndarray, size: tuple[int, int]) -> None:
    if images.shape[1] < size[0] or images.shape[2] < size[1]:
        raise ValueError(f"cannot crop {size[0]}x{size[1]} from {images.shape[1]}x{images.shape[2]} images")


class CenterCrop:
    """The central ``size`` window."""

    def __init__(self, size: int | tuple[int, int]):
        self.size = _hw(size)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        _check_fits(images, self.size)
        h, w = self.size
        top, left = (images.shape[1] - h) // 2, (images.shape[2] - w) // 2
        return np.ascontiguousarray(images[:, top:top + h, left:left + w])


class PatchCrop:
    """A random ``size`` window per image (the classic PatchPreprocessor), from a seeded ``rng``."""

    def __init__(self, size: int | tuple[int, int], rng: np.random.Generator | int | None = None):
        self.size = _hw(size)
        self.rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        _check_fits(images, self.size)
        h, w = self.size
        tops = self.rng.integers(0, images.shape[1] - h + 1, len(images))
        lefts = self.rng.integers(0, images.shape[2] - w + 1, len(images))
        return np.stack([img[t:t + h, l:l + w] for img, t, l in zip(images, tops, lefts)])


def ten_crops(images: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """(B, H, W, C) -> (10, B, h, w, C): centre, top-left, top-right, bottom-left, bottom-right,
    then the same five mirrored horizontally (the classic CropPreprocessor)."""
    _check_fits(images, _hw(size))
    h, w = _hw(size)
    height, width = images.shape[1:3]
    top, left = (height - h) // 2, (width - w) // 2
    corners = [(top, left), (0, 0), (0, width - w), (height - h, 0), (height - h, width - w)]
    crops = [images[:, y:y + h, x:x + w] for y, x in corners]
    crops += [crop[:, :, ::-1] for crop in crops]
    return np.ascontiguousarray(np.stack(crops))


__all__ = ["AspectAwareResize", "CenterCrop", "MeanSubtract", "PatchCrop", "SimpleResize", "ten_crops"]
