"""The bad-input corpus: every kind of file a scraped image folder throws at ``extract``.

:func:`build_corpus` writes a class-per-folder dataset under a folder and returns
the :class:`Case` list: each file (or folder) with its expected outcome:

* ``row``      decoded and kept (``check`` verifies the decoded pixels where it matters),
* ``skip``     a candidate image that is refused, with the expected reason code
               (the text before the first ``:`` in the ``skipped/reason`` table),
* ``ignored``  not an image candidate at all (hidden, system, non-image extension,
               hidden folder, link to a folder), listed in ``ignored`` with the reason.

Everything is generated at test time (no binaries in the repository) and small,
except where size is the point. ``docs/reliability.md`` has the same table in prose.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

#: Class folders of the corpus. Hostile names on purpose: unicode, a space, a newline,
#: HTML that would run if a report did not escape it, rich console markup.
PLAIN = "plain"
UNICODE = "ünï cødé 猫"
SPACE = "with space"
NEWLINE = "new\nline"
HTML = "<img src=x onerror=alert(1)>"
MARKUP = "[red]markup"
EMPTY = "empty class"
CLASSES = (PLAIN, UNICODE, SPACE, NEWLINE, HTML, MARKUP)
HOSTILE_CLASS_NAMES = (UNICODE, NEWLINE, HTML, MARKUP)


@dataclass
class Case:
    """One corpus entry: where it is (relative to the root) and what must happen to it."""

    name: str
    path: str
    outcome: str  # "row", "skip" or "ignored"
    reason: str | None = None  # skip reason code, or the ignored reason
    what: str = ""  # one line for the docs table
    label: str | None = None
    check: Callable[[np.ndarray], None] | None = field(default=None, repr=False)
    duplicate_of: str | None = None  # a row whose file has the same bytes as this one's


@dataclass
class Corpus:
    root: Path
    cases: list[Case]
    permissions_ignored: bool  # root (or CAP_DAC_OVERRIDE): mode 000 is still readable

    def by_outcome(self, outcome: str) -> list[Case]:
        return [c for c in self.cases if c.outcome == outcome]

    @property
    def candidates(self) -> list[Case]:
        """Cases that are image candidates (each becomes a row or a skip)."""
        return [c for c in self.cases if c.outcome in ("row", "skip")]

    def __getitem__(self, name: str) -> Case:
        return next(c for c in self.cases if c.name == name)


# -- pixel helpers ---------------------------------------------------------------------------

def _encode(img: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def _solid(color, size=(20, 12), mode="RGB") -> Image.Image:
    return Image.new("RGB", size, color).convert(mode) if mode != "RGB" else Image.new("RGB", size, color)


def _noise(seed: int, shape=(64, 64, 3)) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8))


def color_check(color, shape=None, tol=14) -> Callable[[np.ndarray], None]:
    """The decoded image is RGB uint8, of ``shape`` (H, W) if given, with mean colour ``color``."""
    def check(array: np.ndarray) -> None:
        assert array.dtype == np.uint8 and array.ndim == 3 and array.shape[2] == 3, array.shape
        if shape is not None:
            assert array.shape[:2] == shape, (array.shape, shape)
        mean = array.reshape(-1, 3).mean(0)
        assert np.abs(mean - np.asarray(color)).max() <= tol, (mean, color)
    return check


def gray_of(color) -> tuple[int, int, int]:
    """What Pillow's ``convert("L")`` makes of an RGB colour, as RGB."""
    value = Image.new("RGB", (1, 1), tuple(color)).convert("L").getpixel((0, 0))
    return (value, value, value)


_EXIF_INVERSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
                 4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
                 6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_270}


def exif_jpeg(orientation: int) -> bytes:
    """A 90x60 picture with a red top-left marker, stored so that EXIF ``orientation`` restores it."""
    upright = np.full((60, 90, 3), 20, dtype=np.uint8)
    upright[:30, :30] = (250, 10, 10)
    upright[30:, 60:] = (10, 10, 250)
    stored = Image.fromarray(upright).transpose(_EXIF_INVERSE[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _encode(stored, "JPEG", exif=exif.tobytes(), quality=95)


def exif_check(array: np.ndarray) -> None:
    """Upright again: 60x90, red top-left, blue bottom-right."""
    assert array.shape == (60, 90, 3), array.shape
    assert array[5, 5, 0] > 200 and array[5, 5, 2] < 60, array[5, 5]
    assert array[55, 85, 2] > 200 and array[55, 85, 0] < 60, array[55, 85]


# -- crafted headers -------------------------------------------------------------------------

def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def png_header_bomb(width=100_000, height=100_000) -> bytes:
    """A 100-byte PNG whose header claims 10 gigapixels."""
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _png_chunk(b"IEND", b""))


def png_zlib_bomb(side=13_400) -> bytes:
    """A real, valid ~180-megapixel all-black grayscale PNG that compresses to ~180 kB."""
    compressor = zlib.compressobj(6)
    block = (b"\0" * (side + 1)) * 200
    parts = [compressor.compress(block) for _ in range(side // 200)]
    parts.append(compressor.compress((b"\0" * (side + 1)) * (side % 200)))
    parts.append(compressor.flush())
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
            + _png_chunk(b"IDAT", b"".join(parts)) + _png_chunk(b"IEND", b""))


def gif_header_bomb() -> bytes:
    """A tiny GIF declaring a 65535x65535 canvas."""
    return (b"GIF89a" + struct.pack("<HH", 65535, 65535) + b"\x00\x00\x00"
            + b"\x2c" + struct.pack("<HHHH", 0, 0, 65535, 65535) + b"\x00\x02\x02\x44\x01\x00\x3b")


def radiance_hdr(side: int, scanlines: int | None = None) -> bytes:
    """A Radiance HDR image (a format only the OpenCV fallback reads) of ``side`` x ``side``
    run-length-encoded black pixels; ``scanlines`` < side writes only that many rows of data.

    A full 14000-pixel one is a 12 MB file that decodes to 2.4 GB of float32.
    """
    runs = b"".join(bytes([128 + 127, 0]) for _ in range(side // 127))
    if side % 127:
        runs += bytes([128 + side % 127, 0])
    exponent = runs.replace(bytes([0]), bytes([128]))  # same runs, value 128
    line = bytes([2, 2, side >> 8, side & 255]) + runs * 3 + exponent
    header = b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y %d +X %d\n" % (side, side)
    return header + line * (side if scanlines is None else scanlines)


def raw_tiff(array: np.ndarray, photometric: int, sample_format: int = 1) -> bytes:
    """A minimal little-endian, uncompressed, one-strip TIFF of ``array`` (H, W[, C]) with the given
    PhotometricInterpretation (1 gray, 2 RGB, 8 CIELab) and SampleFormat (1 uint, 2 int, 3 float)."""
    array = np.ascontiguousarray(array)
    height, width = array.shape[:2]
    channels = 1 if array.ndim == 2 else array.shape[2]
    bits = array.dtype.itemsize * 8
    data = array.astype(array.dtype.newbyteorder("<")).tobytes()
    extra = b""

    def per_channel(value: int) -> int:  # more than 2 shorts do not fit in a tag: stored after the data
        nonlocal extra
        if channels <= 2:
            return value
        offset = 8 + len(data) + len(extra)
        extra += struct.pack(f"<{channels}H", *([value] * channels))
        return offset

    tags = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, channels, per_channel(bits)), (259, 3, 1, 1),
            (262, 3, 1, photometric), (273, 4, 1, 8), (277, 3, 1, channels), (278, 4, 1, height),
            (279, 4, 1, len(data)), (284, 3, 1, 1), (339, 3, channels, per_channel(sample_format))]
    ifd = struct.pack("<H", len(tags))
    for tag, kind, count, value in tags:
        packed = struct.pack("<HH", value, 0) if kind == 3 and count == 1 else struct.pack("<I", value)
        ifd += struct.pack("<HHI", tag, kind, count) + packed
    return b"II*\0" + struct.pack("<I", 8 + len(data) + len(extra)) + data + extra + ifd + struct.pack("<I", 0)


def two_level_check(low: int, high: int, tol: int = 1) -> Callable[[np.ndarray], None]:
    """Left half ``low``, right half ``high`` in every channel (a scaled two-level image)."""
    def check(array: np.ndarray) -> None:
        assert array.dtype == np.uint8 and array.shape[2] == 3, array.shape
        half = array.shape[1] // 2
        assert np.abs(array[:, :half].astype(int) - low).max() <= tol, array[0, 0]
        assert np.abs(array[:, half:].astype(int) - high).max() <= tol, array[0, -1]
    return check


def two_level(low, high, dtype, shape=(12, 20)) -> np.ndarray:
    array = np.full(shape, low, dtype=dtype)
    array[:, shape[1] // 2:] = high
    return array


#: Read at most this many MiB per file in the corpus run (``--max-file-mb``), so the
#: "too large" file can stay small.
CORPUS_MAX_FILE_MB = 1


# -- the corpus ------------------------------------------------------------------------------

def _can_read_when_mode_000(probe_dir: Path) -> bool:
    """True when permissions do not stop us (root, or CAP_DAC_OVERRIDE): chmod 000 is still readable."""
    probe = probe_dir / ".permission-probe"
    probe.write_bytes(b"x")
    probe.chmod(0)
    try:
        probe.read_bytes()
        return True
    except PermissionError:
        return False
    finally:
        probe.chmod(0o600)
        probe.unlink()


def build_corpus(root: Path) -> Corpus:
    """Write the corpus under ``root`` (created) and return its cases."""
    root.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []
    # A distinct colour per image: no accidental duplicates, and each decode is checkable.
    colors = iter(tuple(int(v) for v in rgb) for rgb in np.random.default_rng(0).integers(20, 236, (64, 3)))

    def put(name: str, rel: str, data: bytes | None, outcome: str, reason: str | None = None, what: str = "",
            check=None, label: str | None = None) -> Case:
        path = root / rel
        if data is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        if label is None and outcome in ("row", "skip"):
            label = rel.split("/", 1)[0]
        case = Case(name, rel, outcome, reason, what, label, check)
        cases.append(case)
        return case

    def row(name, rel, data, what, check=None):
        return put(name, rel, data, "row", None, what, check)

    def skip(name, rel, data, reason, what):
        return put(name, rel, data, "skip", reason, what)

    def ignored(name, rel, data, reason, what):
        return put(name, rel, data, "ignored", reason, what)

    # --- images that must decode, whatever their format, mode or name ---------------------
    baseline_color = next(colors)
    baseline = _encode(_solid(baseline_color, (40, 30)), "JPEG", quality=95)
    row("jpeg", f"{PLAIN}/baseline.jpg", baseline, "baseline RGB JPEG", color_check(baseline_color, (30, 40)))
    c = next(colors)
    data = _encode(_solid(c), "JPEG", quality=95) + b"\0garbage after the end marker\xff\xd9" * 50
    row("jpeg_garbage_appended", f"{PLAIN}/garbage_appended.jpg", data, "JPEG with garbage appended after its end",
        color_check(c))
    c = next(colors)
    row("png_named_jpg", f"{PLAIN}/png_inside.jpg", _encode(_solid(c), "PNG"), "PNG named .jpg (content wins)",
        color_check(c))
    c = next(colors)
    row("jpeg_named_png", f"{PLAIN}/jpeg_inside.png", _encode(_solid(c), "JPEG", quality=95),
        "JPEG named .png", color_check(c))
    c = next(colors)
    row("gif_static", f"{PLAIN}/static.gif", _encode(_solid(c), "GIF"), "GIF, one frame", color_check(c, tol=30))
    c, other = next(colors), next(colors)
    frames = [_solid(c), _solid(other)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    row("gif_animated", f"{PLAIN}/animated.gif", buffer.getvalue(), "animated GIF (first frame is used)",
        color_check(c, tol=30))
    c = next(colors)
    row("bmp", f"{PLAIN}/image.bmp", _encode(_solid(c), "BMP"), "BMP", color_check(c, tol=2))
    c = next(colors)
    row("tiff", f"{PLAIN}/image.tif", _encode(_solid(c), "TIFF"), "TIFF (8-bit RGB)", color_check(c, tol=2))
    import cv2

    c = next(colors)
    row("tiff_16bit", f"{PLAIN}/deep16.tiff", cv2.imencode(".tiff", _bgr16(c))[1].tobytes(), "TIFF, 16-bit RGB",
        color_check(c, tol=2))
    c = next(colors)
    row("png_16bit", f"{PLAIN}/deep16.png", cv2.imencode(".png", _bgr16(c))[1].tobytes(), "PNG, 16-bit RGB",
        color_check(c, tol=2))
    c = next(colors)
    gray16 = Image.fromarray(np.full((12, 20), gray_of(c)[0] * 257, dtype=np.uint16))
    row("png_16bit_gray", f"{PLAIN}/gray16.png", _encode(gray16, "PNG"), "PNG, 16-bit grayscale",
        color_check(gray_of(c), tol=2))
    c = next(colors)
    row("webp", f"{PLAIN}/image.webp", _encode(_solid(c), "WEBP", quality=95), "WebP (lossy)", color_check(c))
    c = next(colors)
    row("cmyk_jpeg", f"{PLAIN}/cmyk.jpg", _encode(_solid(c).convert("CMYK"), "JPEG", quality=95), "CMYK JPEG",
        color_check(c, tol=20))
    c = next(colors)
    row("grayscale", f"{PLAIN}/gray.png", _encode(_solid(c).convert("L"), "PNG"), "grayscale (L) PNG",
        color_check(gray_of(c), tol=2))
    c = next(colors)
    row("gray_alpha", f"{PLAIN}/gray_alpha.png", _encode(_solid(c).convert("LA"), "PNG"),
        "grayscale + alpha PNG (alpha dropped)", color_check(gray_of(c), tol=2))
    c = next(colors)
    rgba = _solid(c).convert("RGBA")
    rgba.putalpha(128)
    row("rgba", f"{PLAIN}/rgba.png", _encode(rgba, "PNG"), "RGBA PNG (alpha dropped)", color_check(c, tol=2))
    c = next(colors)
    palette = _solid(c).convert("P")
    row("palette_transparency", f"{PLAIN}/palette_transparent.png",
        _encode(palette, "PNG", transparency=palette.getpixel((0, 0))), "palette PNG with a transparent colour",
        color_check(c, tol=30))
    for orientation in range(2, 9):
        row(f"exif_orientation_{orientation}", f"{PLAIN}/exif_orientation_{orientation}.jpg", exif_jpeg(orientation),
            f"JPEG with EXIF orientation {orientation} (pixels come out upright)", exif_check)
    c = next(colors)
    row("one_pixel", f"{PLAIN}/1x1.png", _encode(_solid(c, (1, 1)), "PNG"), "1x1 pixel", color_check(c, (1, 1), 0))
    c = next(colors)
    row("extreme_aspect", f"{PLAIN}/wide_10000x10.png", _encode(_solid(c, (10_000, 10)), "PNG"),
        "10000x10 pixels (extreme aspect ratio)", color_check(c, (10, 10_000), 0))
    # --- high bit depth: scaled by what the values mean, never clipped to black or white ------
    row("tiff_float_unit", f"{PLAIN}/float01.tif", raw_tiff(two_level(0.25, 1.0, np.float32), 1, 3),
        "float32 grayscale TIFF with values in [0, 1] (x 255)", two_level_check(64, 255))
    row("tiff_float_rgb", f"{PLAIN}/float_rgb.tif", raw_tiff(np.dstack([two_level(0.0, 0.5, np.float32)] * 3), 2, 3),
        "float32 RGB TIFF in [0, 1] (OpenCV fallback; x 255)", two_level_check(0, 128))
    row("tiff_float_hdr", f"{PLAIN}/float_hdr.tif", raw_tiff(two_level(-10.0, 5000.0, np.float32), 1, 3),
        "float32 TIFF with values outside [0, 255] (scaled by its range)", two_level_check(0, 255))
    row("tiff_int32", f"{PLAIN}/int32.tif", raw_tiff(two_level(0, 1_000_000, np.int32), 1, 2),
        "int32 TIFF with values up to 10^6 (scaled by its range, not saturated)", two_level_check(0, 255))
    row("tiff_int32_small", f"{PLAIN}/int32_small.tif", raw_tiff(two_level(10, 200, np.int32), 1, 2),
        "int32 TIFF holding 8-bit values (kept as they are)", two_level_check(10, 200))
    c = next(colors)
    from PIL import ImageCms

    to_lab = ImageCms.buildTransformFromOpenProfiles(ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"),
                                                     "RGB", "LAB")
    row("tiff_lab_8bit", f"{PLAIN}/lab8.tif", _encode(ImageCms.applyTransform(_solid(c), to_lab), "TIFF"),
        "8-bit CIELab TIFF (converted to RGB colours)", color_check(c, tol=6))
    skip("tiff_lab_16bit", f"{PLAIN}/lab16.tif", raw_tiff(np.full((12, 20, 3), 30000, np.uint16), 8),
         "unsupported", "16-bit CIELab TIFF (Pillow cannot read it; OpenCV would misread the colours)")
    nan_image = two_level(0.5, 0.5, np.float32)
    nan_image[3, 3] = np.nan
    skip("tiff_float_nan", f"{PLAIN}/float_nan.tif", raw_tiff(nan_image, 1, 3), "corrupt",
         "float TIFF with NaN pixels (no right value for them)")
    c = next(colors)
    row("extreme_aspect_1x20000", f"{PLAIN}/tall_1x20000.png", _encode(_solid(c, (1, 20_000)), "PNG"),
        "1x20000 pixels (center-crop cuts in source coordinates: memory flat)", color_check(c, (20_000, 1), 0))
    c = next(colors)
    row("image_in_folder_named_like_image", f"{PLAIN}/album.jpg/inside.png", _encode(_solid(c), "PNG"),
        "a folder named album.jpg is a folder: the images inside it are used", color_check(c))

    # --- names: unicode, spaces, newlines, HTML, markup, not UTF-8 --------------------------
    c = next(colors)
    row("unicode_names", f"{UNICODE}/ファイル ü.jpg", _encode(_solid(c), "JPEG", quality=95),
        "unicode class and file name", color_check(c))
    c = next(colors)
    row("space_names", f"{SPACE}/a file name.jpg", _encode(_solid(c), "JPEG", quality=95),
        "spaces in class and file name", color_check(c))
    c = next(colors)
    row("newline_names", f"{NEWLINE}/new\nline.png", _encode(_solid(c), "PNG"), "newline in class and file name",
        color_check(c))
    c = next(colors)
    row("html_names", f"{HTML}/<script>alert(1)<.png", _encode(_solid(c), "PNG"),
        "HTML in class and file name (escaped in reports)", color_check(c))
    c = next(colors)
    row("markup_names", f"{MARKUP}/[bold]x.png", _encode(_solid(c), "PNG"),
        "console markup in class and file name (printed literally)", color_check(c))
    latin1 = os.fsdecode(b"caf\xe9-latin1.png")  # not valid UTF-8: Python holds it with a surrogate
    row("non_utf8_name", f"{PLAIN}/{latin1}", _encode(_noise(7, (8, 8, 3)), "PNG"),
        "file name that is not UTF-8 (kept; stored with \\xNN escapes, with a warning)")

    # --- duplicates: same bytes, other names (kept, reported) ------------------------------
    for name, rel, what in [("duplicate_same_class", f"{PLAIN}/copy of baseline.jpg", "same bytes as another image"),
                            ("duplicate_other_class", f"{SPACE}/baseline again.jpg",
                             "same bytes, in another class (a label conflict)")]:
        case = row(name, rel, baseline, what + " (kept as a row, reported as a duplicate)",
                   color_check(baseline_color, (30, 40)))
        case.duplicate_of = f"{PLAIN}/baseline.jpg"
    link = root / PLAIN / "link_to_baseline.jpg"
    link.symlink_to("baseline.jpg")
    case = row("symlink_to_image", f"{PLAIN}/link_to_baseline.jpg", None,
               "symbolic link to an image (followed; a duplicate of its target)",
               color_check(baseline_color, (30, 40)))
    case.duplicate_of = f"{PLAIN}/baseline.jpg"

    # --- permissions --------------------------------------------------------------------------
    readable_anyway = _can_read_when_mode_000(root)
    c = next(colors)
    locked = _encode(_solid(c), "PNG")
    if readable_anyway:
        row("unreadable_file", f"{PLAIN}/no_permission.png", locked,
            "file with mode 000 (running as root: still readable, so it is used)", color_check(c))
    else:
        skip("unreadable_file", f"{PLAIN}/no_permission.png", locked, "unreadable", "file with mode 000")
    (root / PLAIN / "no_permission.png").chmod(0)
    c = next(colors)
    (root / PLAIN / "locked_folder").mkdir()
    if readable_anyway:
        row("unreadable_folder", f"{PLAIN}/locked_folder/inside.png", _encode(_solid(c), "PNG"),
            "image in a folder with mode 000 (root: still readable)", color_check(c))
    else:
        (root / PLAIN / "locked_folder" / "inside.png").write_bytes(_encode(_solid(c), "PNG"))
        ignored("unreadable_folder", f"{PLAIN}/locked_folder", None, "folder not readable (Permission denied)",
                "folder with mode 000")
    (root / PLAIN / "locked_folder").chmod(0)

    # --- refused, each with its reason ---------------------------------------------------------
    skip("zero_bytes", f"{PLAIN}/empty.jpg", b"", "empty file", "zero-byte file")
    photo = _encode(_noise(1, (200, 200, 3)), "JPEG", quality=90)
    skip("truncated_jpeg", f"{PLAIN}/truncated_half.jpg", photo[: len(photo) // 2], "truncated",
         "JPEG cut in half (kept, partly grey, with --allow-truncated)")
    png = _encode(_noise(2), "PNG")
    skip("truncated_png", f"{PLAIN}/truncated.png", png[: len(png) // 2], "truncated", "PNG cut in half")
    skip("jpeg_header_only", f"{PLAIN}/header_only.jpg", photo[:300], "truncated",
         "JPEG that ends inside its header")
    damaged = bytearray(png)
    idat = damaged.find(b"IDAT")
    damaged[idat + 20: idat + 60] = bytes(40)
    skip("corrupt_png_stream", f"{PLAIN}/corrupt_stream.png", bytes(damaged), "corrupt",
         "PNG whose compressed data is damaged (not truncated: refused even with --allow-truncated)")
    skip("text_as_jpg", f"{PLAIN}/notes.jpg", b"These are my holiday notes, not a picture.\n" * 20, "not an image",
         "a text file with an image extension")
    skip("html_as_png", f"{PLAIN}/download.png", b"<!DOCTYPE html><html><body>404 Not Found</body></html>",
         "not an image", "an HTML error page saved as .png (typical of scraping)")
    skip("random_bytes", f"{PLAIN}/random.webp", np.random.default_rng(3).bytes(4096), "not an image",
         "random bytes")
    skip("bomb_png_header", f"{PLAIN}/bomb_header.png", png_header_bomb(), "too large",
         "decompression bomb: 100-byte PNG claiming 100000x100000 (refused from the header)")
    skip("bomb_gif_header", f"{PLAIN}/bomb_header.gif", gif_header_bomb(), "too large",
         "GIF claiming 65535x65535")
    skip("bomb_png_zlib", f"{PLAIN}/bomb_zlib.png", png_zlib_bomb(), "too large",
         "real 13400x13400 PNG in 180 kB (would be 540 MB decoded)")
    skip("bomb_hdr_opencv", f"{PLAIN}/bomb_radiance.jpg", radiance_hdr(14_000, scanlines=8), "too large",
         "Radiance HDR named .jpg claiming 14000x14000 (OpenCV fallback; refused before allocating)")
    skip("broken_symlink", f"{PLAIN}/broken_link.jpg", None, "unreadable", "symbolic link to a missing file")
    (root / PLAIN / "broken_link.jpg").symlink_to("does-not-exist.jpg")
    skip("symlink_loop", f"{PLAIN}/loop.jpg", None, "unreadable", "symbolic link loop (loop.jpg -> loop.jpg)")
    (root / PLAIN / "loop.jpg").symlink_to("loop.jpg")
    skip("fifo", f"{PLAIN}/fifo.jpg", None, "unreadable",
         "a FIFO named .jpg (never opened: reading it would block forever)")
    os.mkfifo(root / PLAIN / "fifo.jpg")
    skip("link_to_dev_zero", f"{PLAIN}/zeros.jpg", None, "unreadable",
         "symbolic link to /dev/zero (a device: never read, it has no end)")
    (root / PLAIN / "zeros.jpg").symlink_to("/dev/zero")
    skip("socket", f"{PLAIN}/s.png", None, "unreadable", "a Unix socket named .png")
    _make_socket(root / PLAIN / "s.png")
    skip("over_byte_cap", f"{PLAIN}/huge.jpg", baseline + bytes((CORPUS_MAX_FILE_MB << 20) + 1), "too large",
         "a file over --max-file-mb (here 1 MiB; default 1024)")

    # --- not candidates: listed as ignored ---------------------------------------------------
    ignored("hidden_file", f"{PLAIN}/.hidden.jpg", baseline, "hidden or system file", "hidden file (.name)")
    ignored("apple_double", f"{PLAIN}/._baseline.jpg", b"\0\5\26\7" + bytes(60), "hidden or system file",
            "macOS ._ resource fork")
    ignored("ds_store", f"{PLAIN}/.DS_Store", b"\0\0\0\1Bud1" + bytes(30), "hidden or system file", ".DS_Store")
    ignored("thumbs_db", f"{PLAIN}/Thumbs.db", b"\xd0\xcf\x11\xe0" + bytes(60), "hidden or system file",
            "Thumbs.db")
    ignored("not_image_extension", f"{PLAIN}/readme.txt", b"about these pictures", "not an image file extension",
            "non-image extension")
    ignored("hidden_folder", f"{PLAIN}/.thumbnails", None, "hidden folder (not searched)",
            "hidden folder (its images are not used)")
    (root / PLAIN / ".thumbnails").mkdir()
    (root / PLAIN / ".thumbnails" / "thumb.jpg").write_bytes(baseline)
    ignored("link_to_folder", f"{PLAIN}/linked folder", None, "link to a folder (not followed)",
            "symbolic link to a folder (not followed: no loops, no double counting)")
    (root / PLAIN / "linked folder").symlink_to(root / SPACE, target_is_directory=True)
    ignored("file_outside_class_folders", "stray.jpg", baseline, "not inside a class folder",
            "image at the top level, outside every class folder")
    ignored("class_link_to_root", "everything", None, "link to a folder (not followed); pass --follow-class-links "
            "to use it as a class", "a class folder that is a link to the root itself (would count every image twice)")
    (root / "everything").symlink_to(".", target_is_directory=True)
    outside = root.parent / f"{root.name}-outside"
    outside.mkdir(exist_ok=True)
    (outside / "elsewhere.png").write_bytes(_encode(_solid(next(colors)), "PNG"))
    ignored("class_link_outside", "outside", None, "link to a folder (not followed); pass --follow-class-links "
            "to use it as a class", "a class folder that is a link to a folder outside the root")
    (root / "outside").symlink_to(outside, target_is_directory=True)
    (root / EMPTY).mkdir()  # no images: left out with a warning
    return Corpus(root, cases, readable_anyway)


def _make_socket(path: Path) -> None:
    """A Unix socket file at ``path`` (bound relative to its folder: socket paths are short)."""
    import socket

    here = os.getcwd()
    os.chdir(path.parent)
    try:
        server = socket.socket(socket.AF_UNIX)
        server.bind(path.name)
        server.close()
    finally:
        os.chdir(here)


def _bgr16(color) -> np.ndarray:
    """A 12x20 16-bit BGR array of an RGB ``color`` (for OpenCV writers)."""
    array = np.zeros((12, 20, 3), dtype=np.uint16)
    array[...] = (color[2] * 257, color[1] * 257, color[0] * 257)
    return array


def restore_permissions(root: Path) -> None:
    """Make the corpus deletable again (pytest's tmp cleanup)."""
    for path in (root / PLAIN / "no_permission.png", root / PLAIN / "locked_folder"):
        if path.exists() or path.is_symlink():
            path.chmod(0o700)
