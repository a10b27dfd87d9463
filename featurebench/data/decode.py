"""Robust image decoding to RGB uint8, with a specific reason for every image refused.

Pillow does the decoding (JPEG, PNG, BMP, GIF first frame, TIFF, WebP, PNM), with
OpenCV as a fallback for files Pillow cannot identify (e.g. some 16-bit TIFFs).
The format is taken from the file's bytes, not its extension. EXIF orientation
is applied; grayscale, palette, alpha, CMYK and 16-bit images become RGB uint8
(alpha is dropped, as Keras ``load_img`` and ``cv2.imread`` do). The pixel count is
checked from the header before any pixel is decoded, so decompression bombs are
refused without allocating them; for the OpenCV fallback (e.g. Radiance HDR) OpenCV
itself checks the header against ``OPENCV_IO_MAX_IMAGE_PIXELS``, which
``featurebench.data`` sets to the same limit before cv2 is imported (if cv2 was
imported earlier without it, the fallback is switched off rather than left unsafe).
"""

from __future__ import annotations

import errno
import hashlib
import io
import math
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


def read_image_bytes(path: Path) -> bytes:
    """The file's bytes, or :class:`SkipImage` (missing, unreadable, directory, link problems, empty)."""
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
        # Pillow says "truncated" when the data ends early; a damaged stream ("broken data
        # stream", bad CRC) is corruption, not truncation, and --allow-truncated must not keep it.
        truncated = "truncated" in text or isinstance(exc, EOFError) or "end of file" in text
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


_OPENCV_LIMIT_ACTIVE: bool | None = None


def _opencv_limit_active(cv2) -> bool:
    """Whether OpenCV refuses an image over :data:`DEFAULT_MAX_PIXELS` from its header.

    True when ``featurebench.data`` set ``OPENCV_IO_MAX_IMAGE_PIXELS`` before cv2 was first
    imported (checked once, with a header-only Radiance HDR one pixel row too large).
    """
    global _OPENCV_LIMIT_ACTIVE
    if _OPENCV_LIMIT_ACTIVE is None:
        side = math.isqrt(DEFAULT_MAX_PIXELS) + 1
        probe = b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y %d +X %d\n" % (side, side)
        try:
            cv2.imdecode(np.frombuffer(probe, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
            _OPENCV_LIMIT_ACTIVE = False
        except cv2.error as exc:
            _OPENCV_LIMIT_ACTIVE = "CV_IO_MAX_IMAGE" in str(exc)
    return _OPENCV_LIMIT_ACTIVE


def _decode_with_opencv(data: bytes, max_pixels: int) -> np.ndarray:
    import cv2

    if not _opencv_limit_active(cv2):
        # OpenCV checks sizes only against its own limit, read once at import; without
        # ours, a small file could make it allocate gigabytes before we see the size.
        raise SkipImage("not an image", "Pillow does not recognise the contents, and the OpenCV fallback is off "
                        "because cv2 was imported before featurebench without OPENCV_IO_MAX_IMAGE_PIXELS "
                        "(set OPENCV_IO_MAX_IMAGE_PIXELS=178956970 to enable it)")
    buffer = np.frombuffer(data, dtype=np.uint8)
    try:
        array = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYDEPTH)
    except cv2.error as exc:
        if "CV_IO_MAX_IMAGE" in str(exc):  # OpenCV's own size check, made before allocating
            raise SkipImage("too large", "the header declares more pixels than OpenCV's limit "
                            "(OPENCV_IO_MAX_IMAGE_PIXELS; possible decompression bomb)") from None
        raise SkipImage("corrupt", str(exc).strip().splitlines()[-1]) from None
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


def content_digest(data: bytes) -> bytes:
    """A 16-byte BLAKE2b digest of a file's bytes (duplicate detection; not a security hash)."""
    return hashlib.blake2b(data, digest_size=16).digest()


def decode_image(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS,
                 allow_truncated: bool = False, draft: tuple[int, int] | None = None) -> np.ndarray:
    """Decode ``path`` to an (H, W, 3) RGB uint8 array, or raise :class:`SkipImage` saying why.

    ``draft`` = (height, width): a JPEG may be decoded at 1/2, 1/4 or 1/8 scale (libjpeg
    DCT scaling, Pillow ``draft``) as long as both sides stay at least that large, in
    either orientation. Other formats ignore it. See docs/performance.md for its speed
    and how close the features stay to a full decode.
    """
    return decode_image_bytes(read_image_bytes(Path(path)), max_pixels, allow_truncated, draft)


def _draft_scale(size: tuple[int, int], draft: tuple[int, int] | None) -> int:
    """1, 2, 4 or 8: the largest JPEG reduction that keeps both sides >= max(draft).

    The larger target side on both axes, so an EXIF rotation by 90 degrees after
    decoding still leaves both sides large enough; the same rule as Pillow's ``draft``.
    """
    if draft is None:
        return 1
    ratio = min(size) // max(draft)
    return next((scale for scale in (8, 4, 2) if ratio >= scale), 1)


def _request_draft(img: Image.Image, draft: tuple[int, int]) -> None:
    side = max(draft)
    if img.format in ("JPEG", "MPO") and _draft_scale(img.size, draft) > 1:
        img.draft(None, (side, side))


#: EXIF orientation -> the transposition :func:`PIL.ImageOps.exif_transpose` applies, on an array.
_ORIENTATIONS = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: a.swapaxes(0, 1)[:, ::-1],
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
    8: lambda a: a.swapaxes(0, 1)[::-1],
}
_REDUCED_FLAGS = {1: 0, 2: 16, 4: 32, 8: 64}  # cv2.IMREAD_REDUCED_{COLOR,GRAYSCALE}_N minus the colour bit


def _decode_jpeg_opencv(img: Image.Image, data: bytes, draft: tuple[int, int] | None) -> np.ndarray | None:
    """Decode a complete YCbCr/RGB or grayscale JPEG with OpenCV; None: let Pillow do it.

    OpenCV and Pillow both decode with libjpeg-turbo at the same settings (islow DCT,
    fancy upsampling), so the pixels are bit-identical (tests/test_perf_paths.py); OpenCV
    skips Pillow's 4-bytes-per-pixel buffer and copies: about a third less CPU for the
    decode, 18% less with the resize (docs/performance.md). Fatal libjpeg errors, CMYK,
    and files not ending in the EOI marker (truncated, or with trailing bytes) go the
    Pillow way, with its skip reasons.
    """
    if img.format != "JPEG" or img.mode not in ("RGB", "L") or not data.endswith(b"\xff\xd9"):
        return None
    import cv2

    scale = _draft_scale(img.size, draft)
    color = img.mode == "RGB"
    flags = (cv2.IMREAD_COLOR if color else cv2.IMREAD_GRAYSCALE) | cv2.IMREAD_IGNORE_ORIENTATION
    try:
        array = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags | _REDUCED_FLAGS[scale])
    except cv2.error:
        return None
    width, height = img.size
    if array is None or array.shape[:2] != (-(-height // scale), -(-width // scale)):
        return None
    array = cv2.cvtColor(array, cv2.COLOR_BGR2RGB, dst=array) if color else cv2.cvtColor(array, cv2.COLOR_GRAY2RGB)
    try:
        orientation = img.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 - a broken EXIF block must not lose the image (as exif_transpose)
        orientation = 1
    transpose = _ORIENTATIONS.get(orientation)
    return np.ascontiguousarray(transpose(array)) if transpose else array


def decode_image_bytes(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS,
                       allow_truncated: bool = False, draft: tuple[int, int] | None = None) -> np.ndarray:
    """Decode a file's bytes (see :func:`decode_image`)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            img = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            return _decode_with_opencv(data, max_pixels)
        except (OSError, SyntaxError, ValueError) as exc:
            if "truncated" in str(exc).lower():
                raise SkipImage("truncated", "file ends inside the image header") from None
            raise SkipImage("corrupt", str(exc)) from None
        _check_pixels(img.width, img.height, max_pixels)
        fast = _decode_jpeg_opencv(img, data, draft)
        if fast is not None:
            return fast
        if draft is not None:
            _request_draft(img, draft)
        _load(img, allow_truncated)
        try:
            img = ImageOps.exif_transpose(img)
        except Exception:  # noqa: BLE001 - a broken EXIF block must not lose the image
            pass
        return _to_rgb_array(img)
