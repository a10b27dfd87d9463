"""Robust image decoding to RGB uint8, with a specific reason for every image refused.

Pillow does the decoding (JPEG, PNG, BMP, GIF first frame, TIFF, WebP, PNM), with
OpenCV as a fallback for files Pillow cannot identify (e.g. some 16-bit TIFFs).
The format is taken from the file's bytes, not its extension. EXIF orientation
is applied; grayscale, palette, alpha, CMYK and 16-bit images become RGB uint8
(alpha is dropped, as Keras ``load_img`` and ``cv2.imread`` do). The pixel count is
checked from the header before any pixel is decoded, so decompression bombs are
refused without allocating them.
"""

from __future__ import annotations

import errno
import os
import threading
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

#: Default pixel limit: Pillow's own hard limit (2 x MAX_IMAGE_PIXELS).
DEFAULT_MAX_PIXELS = 178_956_970

# Our own check (DecodeOptions.max_pixels) replaces Pillow's global one so the
# limit is configurable per run; it runs on the header, before decoding.
Image.MAX_IMAGE_PIXELS = None

_TRUNCATED_LOCK = threading.Lock()


class SkipImage(Exception):
    """An image that cannot be used; ``reason`` is a short, stable code, ``detail`` says more."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail

    @property
    def message(self) -> str:
        """``reason: detail`` as stored in the skipped table."""
        return str(self)


def _read_bytes(path: Path) -> bytes:
    try:
        if path.is_dir():
            raise SkipImage("unreadable", "is a directory")
        data = path.read_bytes()
    except SkipImage:
        raise
    except FileNotFoundError:
        if path.is_symlink():
            raise SkipImage("unreadable", "broken symbolic link") from None
        raise SkipImage("missing", "file not found") from None
    except PermissionError:
        raise SkipImage("unreadable", "permission denied") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SkipImage("unreadable", "symbolic link loop") from None
        raise SkipImage("unreadable", exc.strerror or str(exc)) from None
    if not data:
        raise SkipImage("empty file", "0 bytes")
    return data


def _sixteen_bit_to_uint8(array: np.ndarray) -> np.ndarray:
    return (np.clip(array, 0, 65535).astype(np.uint32) >> 8).astype(np.uint8)


def _to_rgb_array(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode.startswith("I;16") or mode == "I":
        array = np.asarray(img)
        gray = _sixteen_bit_to_uint8(array) if mode != "I" or array.max(initial=0) > 255 else array.astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == "F":
        gray = np.clip(np.asarray(img), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.uint8)


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise SkipImage(
            "too large",
            f"{width}x{height} = {width * height:,} pixels exceeds the limit of {max_pixels:,} "
            "(possible decompression bomb; raise --max-pixels to allow)",
        )


def _load(img: Image.Image, allow_truncated: bool) -> None:
    try:
        img.load()
    except (OSError, SyntaxError, EOFError, ValueError) as exc:
        text = str(exc).lower()
        truncated = "truncated" in text or "broken" in text or isinstance(exc, EOFError) or "end of file" in text
        if not truncated:
            raise SkipImage("corrupt", str(exc)) from None
        if not allow_truncated:
            raise SkipImage("truncated", "file ends early (pass --allow-truncated to keep partial images)") from None
        with _TRUNCATED_LOCK:
            previous, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, True
            try:
                img.load()
            except Exception as retry:  # noqa: BLE001 - any decoder failure is a skip reason
                raise SkipImage("truncated", f"unrecoverable: {retry}") from None
            finally:
                ImageFile.LOAD_TRUNCATED_IMAGES = previous


def _decode_with_opencv(data: bytes, max_pixels: int) -> np.ndarray:
    import cv2

    buffer = np.frombuffer(data, dtype=np.uint8)
    array = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYDEPTH)
    if array is None:
        raise SkipImage("not an image", "no decoder recognises the file contents")
    _check_pixels(array.shape[1], array.shape[0], max_pixels)
    if array.dtype == np.uint16:
        array = _sixteen_bit_to_uint8(array)
    elif array.dtype != np.uint8:
        array = np.clip(array, 0, 255).astype(np.uint8)
    if array.ndim == 2:
        return cv2.cvtColor(array, cv2.COLOR_GRAY2RGB)
    code = cv2.COLOR_BGRA2RGB if array.shape[2] == 4 else cv2.COLOR_BGR2RGB
    return cv2.cvtColor(array, code)


def decode_image(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS,
                 allow_truncated: bool = False) -> np.ndarray:
    """Decode ``path`` to an (H, W, 3) RGB uint8 array, or raise :class:`SkipImage` saying why."""
    import io

    data = _read_bytes(Path(path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            img = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            return _decode_with_opencv(data, max_pixels)
        except (OSError, SyntaxError, ValueError) as exc:
            raise SkipImage("corrupt", str(exc)) from None
        _check_pixels(img.width, img.height, max_pixels)
        _load(img, allow_truncated)
        try:
            img = ImageOps.exif_transpose(img)
        except Exception:  # noqa: BLE001 - a broken EXIF block must not lose the image
            pass
        return _to_rgb_array(img)
