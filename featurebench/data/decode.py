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
import functools
import hashlib
import io
import math
import os
import stat
import struct
import threading
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

#: Default pixel limit: Pillow's own hard limit (2 x MAX_IMAGE_PIXELS).
DEFAULT_MAX_PIXELS = 178_956_970
#: Default cap on the bytes read per file (``--max-file-mb``): a 178-megapixel uncompressed
#: RGB BMP fits; a link to /dev/zero or a multi-GB file does not.
DEFAULT_MAX_FILE_BYTES = 1024 * 1024 * 1024

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


def _file_kind(mode: int) -> str:
    """What a non-regular file is, for the skip reason."""
    for test, kind in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            return kind
    return "a special file"


def _check_regular(info: os.stat_result, max_bytes: int) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise SkipImage("unreadable", "is a directory")
    if not stat.S_ISREG(info.st_mode):
        # A FIFO, socket or device would block the read or never end (/dev/zero).
        raise SkipImage("unreadable", f"not a regular file ({_file_kind(info.st_mode)})")
    if info.st_size > max_bytes:
        _too_many_bytes(info.st_size, max_bytes)


def _too_many_bytes(size: int, max_bytes: int) -> None:
    raise SkipImage("too large", f"the file has {'more than ' if size > max_bytes + 1 else ''}{size:,} bytes, over "
                    f"the limit of {max_bytes:,} (raise --max-file-mb to allow)")


def read_image_bytes(path: Path, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> bytes:
    """The file's bytes, or :class:`SkipImage` (missing, unreadable, not a regular file, link
    problems, empty, more than ``max_bytes``).

    Only regular files are read: the type is checked before the file is opened (a FIFO,
    socket or device is never opened, so it can neither block nor stream without end),
    and again on the open descriptor (the name could be swapped in between). At most
    ``max_bytes`` + 1 bytes are read whatever the file claims.
    """
    try:
        _check_regular(os.stat(path), max_bytes)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        with open(fd, "rb", closefd=True) as handle:
            _check_regular(os.fstat(fd), max_bytes)
            os.set_blocking(fd, True)
            data = handle.read(max_bytes + 1)
    except SkipImage:
        raise
    except FileNotFoundError:
        if os.path.islink(path):
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
    if len(data) > max_bytes:  # it grew after the size check
        _too_many_bytes(len(data), max_bytes)
    return data


def to_uint8(array: np.ndarray) -> np.ndarray:
    """Pixel values of any numeric type as uint8, scaled by their meaning, never clipped blindly.

    uint8 as is; uint16 by its range (>> 8); float in [0, 1] (the usual convention) x 255,
    float already in [0, 255] as is; other integers in [0, 255] as is and in [0, 65535] as
    16-bit; anything else (int32 counts, negative values, HDR floats) by its actual
    min..max range. NaN or infinite pixels are refused (there is no right value for them).
    """
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if array.dtype == np.uint16:
        return (array >> 8).astype(np.uint8)
    if array.size == 0:
        return array.astype(np.uint8)
    if array.dtype.kind == "f":
        if not np.isfinite(array).all():
            raise SkipImage("corrupt", "floating-point pixels include NaN or infinity")
        low, high = float(array.min()), float(array.max())
        if low >= 0.0 and high <= 1.0:
            return np.rint(array.astype(np.float32) * 255).astype(np.uint8)
        if low >= 0.0 and high <= 255.0:
            return np.rint(array).astype(np.uint8)
    elif array.dtype.kind in "iu":
        low, high = int(array.min()), int(array.max())
        if low >= 0 and high <= 255:
            return array.astype(np.uint8)
        if low >= 0 and high <= 65535:
            return (array.astype(np.uint32) >> 8).astype(np.uint8)
    else:
        raise SkipImage("unsupported", f"pixel type {array.dtype}")
    if high == low:
        return np.zeros(array.shape, np.uint8)
    scaled = (array.astype(np.float32) - np.float32(low)) * np.float32(255.0 / (high - low))
    return np.rint(scaled).astype(np.uint8)


def _gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[..., None], 3, axis=2)


def _to_rgb_array(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode.startswith("I") or mode == "F":  # 16/32-bit integer or float grayscale
        return _gray_to_rgb(to_uint8(np.asarray(img)))
    if img.mode != "RGB":
        img = img.convert("RGB")  # also LAB, CMYK, YCbCr, palettes: Pillow converts colours properly
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


#: TIFF PhotometricInterpretation values OpenCV decodes as what they are (gray, RGB, palette,
#: CMYK, YCbCr); others (CIELab 8, ICCLab 9, ITULab 10, LogL/LogLuv...) it would misread as RGB.
_TIFF_PHOTOMETRIC_OK = {0: "WhiteIsZero", 1: "BlackIsZero", 2: "RGB", 3: "palette", 5: "CMYK", 6: "YCbCr"}
_TIFF_PHOTOMETRIC_NAMES = {8: "CIELab", 9: "ICCLab", 10: "ITULab", 32844: "LogL", 32845: "LogLuv"}


def tiff_photometric(data: bytes) -> int | None:
    """The PhotometricInterpretation of a TIFF's first image (None: not a TIFF or no such tag)."""
    if data[:4] not in (b"II*\0", b"MM\0*") or len(data) < 8:
        return None
    order = "<" if data[:2] == b"II" else ">"
    try:
        (ifd,) = struct.unpack_from(order + "I", data, 4)
        (count,) = struct.unpack_from(order + "H", data, ifd)
        for entry in range(min(count, 4096)):
            tag, kind = struct.unpack_from(order + "HH", data, ifd + 2 + 12 * entry)
            if tag == 262:
                fmt = order + ("H" if kind == 3 else "I")
                return struct.unpack_from(fmt, data, ifd + 2 + 12 * entry + 8)[0]
    except struct.error:
        return None
    return None


def _check_tiff_colour_space(data: bytes) -> None:
    photometric = tiff_photometric(data)
    if photometric is not None and photometric not in _TIFF_PHOTOMETRIC_OK:
        name = _TIFF_PHOTOMETRIC_NAMES.get(photometric, f"photometric {photometric}")
        raise SkipImage("unsupported", f"{name} TIFF in a form Pillow cannot read (OpenCV would misread its "
                        "colours); convert it to RGB first")


def _decode_with_opencv(data: bytes, max_pixels: int) -> np.ndarray:
    import cv2

    if not _opencv_limit_active(cv2):
        # OpenCV checks sizes only against its own limit, read once at import; without
        # ours, a small file could make it allocate gigabytes before we see the size.
        raise SkipImage("not an image", "Pillow does not recognise the contents, and the OpenCV fallback is off "
                        "because cv2 was imported before featurebench without OPENCV_IO_MAX_IMAGE_PIXELS "
                        "(set OPENCV_IO_MAX_IMAGE_PIXELS=178956970 to enable it)")
    _check_tiff_colour_space(data)
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
    array = to_uint8(array)
    if array.ndim == 2:
        return cv2.cvtColor(array, cv2.COLOR_GRAY2RGB)
    code = cv2.COLOR_BGRA2RGB if array.shape[2] == 4 else cv2.COLOR_BGR2RGB
    return cv2.cvtColor(array, code)


def content_digest(data: bytes) -> bytes:
    """A 16-byte BLAKE2b digest of a file's bytes (duplicate detection; not a security hash)."""
    return hashlib.blake2b(data, digest_size=16).digest()


def decode_image(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS,
                 allow_truncated: bool = False, draft: tuple[int, int] | None = None,
                 max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> np.ndarray:
    """Decode ``path`` to an (H, W, 3) RGB uint8 array, or raise :class:`SkipImage` saying why.

    ``draft`` = (height, width): a JPEG may be decoded at 1/2, 1/4 or 1/8 scale (libjpeg
    DCT scaling, Pillow ``draft``) as long as both sides stay at least that large, in
    either orientation. Other formats ignore it. See docs/performance.md for its speed
    and how close the features stay to a full decode.
    """
    return decode_image_bytes(read_image_bytes(Path(path), max_bytes), max_pixels, allow_truncated, draft)


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
    array = _decode_jpeg_simplejpeg(data, color) if scale == 1 else None
    if array is None:
        flags = (cv2.IMREAD_COLOR if color else cv2.IMREAD_GRAYSCALE) | cv2.IMREAD_IGNORE_ORIENTATION
        try:
            array = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags | _REDUCED_FLAGS[scale])
        except cv2.error:
            return None
        if array is not None:
            array = cv2.cvtColor(array, cv2.COLOR_BGR2RGB, dst=array) if color else array
    width, height = img.size
    if array is None or array.shape[:2] != (-(-height // scale), -(-width // scale)):
        return None
    array = array if color else cv2.cvtColor(array, cv2.COLOR_GRAY2RGB)
    try:
        orientation = img.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 - a broken EXIF block must not lose the image (as exif_transpose)
        orientation = 1
    transpose = _ORIENTATIONS.get(orientation)
    return np.ascontiguousarray(transpose(array)) if transpose else array


@functools.lru_cache(maxsize=None)
def _simplejpeg():
    try:
        import simplejpeg
    except ImportError:
        return None
    return simplejpeg


def _decode_jpeg_simplejpeg(data: bytes, color: bool) -> np.ndarray | None:
    """A full-size JPEG decode through simplejpeg (the ``[jpeg]`` extra; libjpeg-turbo's TurboJPEG
    API, islow DCT, fancy upsampling), RGB or (H, W, 1) grayscale; None when it is not installed
    or refuses the file (its strict mode rejects corrupt data: OpenCV and Pillow then decide).

    The same pixels as OpenCV's decode (tests/test_perf_paths.py; 593 real and generated
    photos, docs/performance.md) for about 10% less decode CPU: no BGR buffer to convert.
    """
    simplejpeg = _simplejpeg()
    if simplejpeg is None:
        return None
    try:
        return simplejpeg.decode_jpeg(data, colorspace="RGB" if color else "GRAY")
    except (ValueError, RuntimeError):
        return None


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
