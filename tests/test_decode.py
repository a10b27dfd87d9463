"""Robust decoding: every format and pixel mode comes out as RGB uint8, bad files get a reason."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from featurebench.data.decode import SkipImage, decode_image

RED = (200, 30, 40)


def solid(size=(12, 20), color=RED) -> Image.Image:
    """A solid RGB image (width, height)."""
    return Image.new("RGB", size, color)


def save(path: Path, img: Image.Image, fmt: str | None = None, **kwargs) -> Path:
    img.save(path, format=fmt, **kwargs)
    return path


def assert_rgb(array: np.ndarray, shape=(20, 12), color=RED, tol=12):
    assert array.dtype == np.uint8 and array.shape == (*shape, 3)
    assert np.abs(array.reshape(-1, 3).mean(0) - np.array(color)).max() <= tol


@pytest.mark.parametrize("fmt,suffix", [("JPEG", ".jpg"), ("PNG", ".png"), ("BMP", ".bmp"), ("GIF", ".gif"),
                                        ("TIFF", ".tif"), ("WEBP", ".webp"), ("PPM", ".ppm")])
def test_formats_decode_to_rgb(tmp_path: Path, fmt: str, suffix: str):
    path = save(tmp_path / f"x{suffix}", solid(), fmt)
    assert_rgb(decode_image(path), tol=25 if fmt == "GIF" else 12)


def test_content_wins_over_extension(tmp_path: Path):
    assert_rgb(decode_image(save(tmp_path / "png-named.jpg", solid(), "PNG")))
    assert_rgb(decode_image(save(tmp_path / "jpeg-named.png", solid(), "JPEG")))


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "CMYK", "P", "1", "I;16", "I"])
def test_pixel_modes_become_rgb(tmp_path: Path, mode: str):
    gray = mode in ("L", "LA", "1", "I;16", "I")
    if mode == "I;16":
        img = Image.fromarray(np.full((20, 12), 200 * 257, dtype=np.uint16))
    elif mode == "I":
        img = Image.fromarray(np.full((20, 12), 200 * 257, dtype=np.int32))
    else:
        img = solid((12, 20), (200, 200, 200) if gray else RED).convert(mode)
    fmt = "JPEG" if mode == "CMYK" else ("TIFF" if mode == "I" else "PNG")
    path = save(tmp_path / f"img.{fmt.lower()}", img, fmt)
    expected = (200, 200, 200) if gray else RED  # mode "1" dithers, keeping the mean
    assert_rgb(decode_image(path), color=expected, tol=15)


def test_palette_with_transparency_and_animated_gif_first_frame(tmp_path: Path):
    pal = solid().convert("P")
    pal.info["transparency"] = 0
    assert_rgb(decode_image(save(tmp_path / "t.png", pal, "PNG", transparency=0)), tol=25)
    frames = [solid(color=RED), solid(color=(10, 200, 10))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert_rgb(decode_image(path), tol=25)


def test_sixteen_bit_rgb_png_keeps_its_colours(tmp_path: Path):
    import cv2

    array = np.zeros((20, 12, 3), dtype=np.uint16)
    array[...] = (40 * 257, 30 * 257, 200 * 257)  # BGR for OpenCV -> RGB (200, 30, 40)
    path = tmp_path / "deep.png"
    cv2.imwrite(str(path), array)
    assert_rgb(decode_image(path))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(tmp_path: Path, orientation: int):
    # A 2x3 grid of distinct colours; after the EXIF transform the top-left marker must be red.
    upright = np.zeros((60, 90, 3), dtype=np.uint8)
    upright[:30, :30] = (255, 0, 0)
    stored = Image.fromarray(upright)
    inverse = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
               4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
               6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_270}
    if orientation in inverse:
        stored = stored.transpose(inverse[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.jpg"
    stored.save(path, exif=exif.tobytes(), quality=95)
    decoded = decode_image(path)
    assert decoded.shape == (60, 90, 3)
    assert decoded[5, 5, 0] > 200 and decoded[5, 5, 1] < 60
    assert decoded[50, 80].max() < 60


def test_truncated_jpeg_skipped_unless_allowed(tmp_path: Path):
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(buffer, "JPEG")
    data = buffer.getvalue()
    path = tmp_path / "half.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(SkipImage) as info:
        decode_image(path)
    assert info.value.reason == "truncated"
    assert decode_image(path, allow_truncated=True).shape == (200, 200, 3)


def test_garbage_after_jpeg_end_still_decodes(tmp_path: Path):
    path = save(tmp_path / "x.jpg", solid(), "JPEG")
    path.write_bytes(path.read_bytes() + b"garbage" * 100)
    assert_rgb(decode_image(path))


@pytest.mark.parametrize("content,reason", [(b"", "empty file"), (b"hello, I am text", "not an image")])
def test_unusable_files_have_reasons(tmp_path: Path, content: bytes, reason: str):
    path = tmp_path / "x.jpg"
    path.write_bytes(content)
    with pytest.raises(SkipImage) as info:
        decode_image(path)
    assert info.value.reason == reason


def test_missing_directory_and_broken_link(tmp_path: Path):
    with pytest.raises(SkipImage, match="missing"):
        decode_image(tmp_path / "nope.jpg")
    (tmp_path / "dir.jpg").mkdir()
    with pytest.raises(SkipImage, match="directory"):
        decode_image(tmp_path / "dir.jpg")
    (tmp_path / "link.jpg").symlink_to(tmp_path / "gone.jpg")
    with pytest.raises(SkipImage, match="broken symbolic link"):
        decode_image(tmp_path / "link.jpg")


def test_decompression_bomb_refused_from_header(tmp_path: Path):
    path = save(tmp_path / "big.png", Image.new("L", (4000, 3000)), "PNG")
    with pytest.raises(SkipImage) as info:
        decode_image(path, max_pixels=1_000_000)
    assert info.value.reason == "too large" and "12,000,000" in info.value.detail
    assert decode_image(path, max_pixels=20_000_000).shape == (3000, 4000, 3)
