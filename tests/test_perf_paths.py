"""The extraction fast paths give the reference path's results (correctness only, no timings).

* JPEG decoding through OpenCV (default) is bit-identical to Pillow's decode + EXIF
  transpose, the reference, for baseline/progressive, 4:2:0/4:2:2/4:4:4, grayscale, odd
  sizes, every EXIF orientation and (with ``draft``) every DCT reduction; anything else
  goes the Pillow way.
* ``fast_decode`` (reduced-size JPEG decode, opt-in) stays close to a full decode and is
  recorded in the file and the resume fingerprint.
* ``precision="bf16"`` (opt-in) gives features close to fp32 on both engines and leaves the
  global Keras dtype policy alone; on a CPU without native bf16 the file records what ran.
* The OpenVINO engine (default for Keras models): tests/test_engines.py.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from featurebench.data import decode as decode_module
from featurebench.data.decode import SkipImage, decode_image, decode_image_bytes
from featurebench.data.pipeline import DecodeOptions, load_image


def reference_decode(data: bytes, draft: tuple[int, int] | None = None) -> np.ndarray:
    """Pillow only: the decoder featurebench had before the OpenCV JPEG path."""
    img = Image.open(io.BytesIO(data))
    if draft is not None:
        decode_module._request_draft(img, draft)
    img.load()
    return np.asarray(ImageOps.exif_transpose(img).convert("RGB"))


def photo_like(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth gradients, edges and noise: decodes like a photo, not like a flat colour."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    image = np.stack([xx * 200 / width, yy * 200 / height, (xx + yy) * 100 / (width + height)], axis=-1)
    image[height // 3: height // 2, width // 4: width // 2] = (250, 20, 90)
    return np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8)


def jpeg_bytes(array: np.ndarray, mode: str = "RGB", orientation: int | None = None, **save) -> bytes:
    img = Image.fromarray(array).convert(mode)
    if orientation is not None:
        exif = img.getexif()
        exif[0x0112] = orientation
        save["exif"] = exif.tobytes()
    buffer = io.BytesIO()
    img.save(buffer, "JPEG", **save)
    return buffer.getvalue()


def opencv_used(data: bytes, draft=None) -> bool:
    return decode_module._decode_jpeg_opencv(Image.open(io.BytesIO(data)), data, draft) is not None


@pytest.mark.parametrize("size", [(37, 53), (64, 64), (481, 333), (600, 1000)])
@pytest.mark.parametrize("save", [{"quality": 90}, {"quality": 95, "subsampling": 0}, {"subsampling": 1},
                                  {"progressive": True, "quality": 85}])
def test_opencv_jpeg_is_bit_identical_to_pillow(size, save):
    data = jpeg_bytes(photo_like(*size), **save)
    assert opencv_used(data)
    for draft in (None, (224, 224), (100, 100), (32, 32)):
        expected = reference_decode(data, draft)
        got = decode_image_bytes(data, draft=draft)
        assert got.dtype == np.uint8 and got.flags.c_contiguous
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_opencv_jpeg_applies_exif_orientation_like_pillow(orientation, mode):
    data = jpeg_bytes(photo_like(45, 70, seed=orientation), mode, orientation, quality=92)
    assert opencv_used(data)
    for draft in (None, (20, 20)):
        np.testing.assert_array_equal(decode_image_bytes(data, draft=draft), reference_decode(data, draft))


def test_real_photos_bit_identical(shared_dir: Path):
    photos = sorted((shared_dir / "datasets" / "flowers17").rglob("*.jpg"))[::170]
    photos += sorted((shared_dir / "datasets" / "dogs-vs-cats").rglob("*.jpg"))[::250]
    photos += sorted((shared_dir / "images" / "samples").glob("*.jpg"))
    if not photos:
        pytest.skip("no photos in ../shared/images/samples (a checkout beside the repository)")
    for path in photos:
        data = path.read_bytes()
        for draft in (None, (224, 224)):
            np.testing.assert_array_equal(decode_image_bytes(data, draft=draft), reference_decode(data, draft),
                                          err_msg=str(path))


def test_other_jpegs_take_the_pillow_path(tmp_path: Path):
    array = photo_like(40, 60)
    cmyk = jpeg_bytes(array, "CMYK")
    assert not opencv_used(cmyk)
    np.testing.assert_array_equal(decode_image_bytes(cmyk), reference_decode(cmyk))
    trailing = jpeg_bytes(array) + b"camera trailer"
    assert not opencv_used(trailing)
    np.testing.assert_array_equal(decode_image_bytes(trailing), reference_decode(trailing))
    truncated = jpeg_bytes(photo_like(200, 300))[:-2000]
    assert not opencv_used(truncated)
    path = tmp_path / "cut.jpg"
    path.write_bytes(truncated)
    with pytest.raises(SkipImage) as info:
        decode_image(path)
    assert info.value.reason == "truncated"
    assert decode_image(path, allow_truncated=True).shape == (200, 300, 3)


def test_draft_scale_keeps_both_sides_at_least_the_target():
    scale = decode_module._draft_scale
    assert scale((1200, 900), None) == 1
    assert scale((1200, 900), (224, 224)) == 4
    assert scale((1200, 447), (224, 224)) == 1
    assert scale((2000, 2000), (224, 224)) == 8
    assert scale((900, 1200), (224, 300)) == 2  # the larger target side, for either orientation


@pytest.mark.parametrize("target", [(224, 224), (224, 300)])
def test_reduced_decode_keeps_the_resize_a_downscale(target):
    # The recorded resize (stretch or center-crop, area interpolation when shrinking) stays what
    # it was: a reduced decode happens only for images at least 2x the input, and never leaves a
    # side below the input, so the resize after it still shrinks.
    side = max(target)
    for h, w in [(2 * side - 1, 3 * side), (2 * side, 2 * side), (4 * side + 3, 5 * side), (8 * side, 9 * side),
                 (3 * side, 2 * side - 1)]:
        data = jpeg_bytes(photo_like(h, w, seed=h), quality=85)
        reduced = decode_image_bytes(data, draft=target)
        full_shape = decode_image_bytes(data).shape
        assert min(reduced.shape[:2]) >= side, (h, w, reduced.shape)
        if min(h, w) >= 2 * side:
            assert reduced.shape[0] < full_shape[0] and reduced.shape[1] < full_shape[1]
        else:
            assert reduced.shape == full_shape


@pytest.mark.parametrize("resize", ["stretch", "center-crop"])
def test_fast_decode_stays_close_to_full_decode(tmp_path: Path, resize: str):
    sizes = [(300, 400), (700, 500), (1200, 900), (460, 1100)]
    for i, (h, w) in enumerate(sizes):
        path = tmp_path / f"p{i}.jpg"
        path.write_bytes(jpeg_bytes(photo_like(h, w, seed=i), orientation=6 if i == 2 else None, quality=90))
        full = load_image(path, DecodeOptions((224, 224), resize))
        fast = load_image(path, DecodeOptions((224, 224), resize, fast_decode=True))
        assert fast.shape == full.shape == (224, 224, 3) and fast.dtype == np.uint8
        diff = np.abs(fast.astype(int) - full.astype(int))
        assert diff.mean() < 3.0, (path, diff.mean())
        if min(h, w) < 448:  # too small to reduce: exactly the full decode
            np.testing.assert_array_equal(fast, full)


def test_fast_decode_is_recorded_and_splits_the_resume_fingerprint(tmp_path, class_folders, tiny_model_file):
    import h5py

    from featurebench.extract import ExtractOptions, _manifest, run_extract
    from featurebench.data.sources import list_source

    summary = run_extract(ExtractOptions(str(class_folders), str(tmp_path / "f.h5"), model=str(tiny_model_file),
                                         fast_decode=True))
    assert summary.n_rows == 12
    with h5py.File(tmp_path / "f.h5") as h5:
        assert bool(h5.attrs["fast_decode"]) and h5.attrs["precision"] == "fp32"
    listing = list_source(str(class_folders))
    provenance = {"model": "m", "weights": "w", "layer": "l", "pool": "p", "preprocessing": "none",
                  "input_size": [32, 32], "feature_dim": 8}
    default = ExtractOptions(str(class_folders), "x.h5")
    fast = ExtractOptions(str(class_folders), "x.h5", fast_decode=True)
    bf16 = ExtractOptions(str(class_folders), "x.h5", precision="bf16")
    prints = {_manifest(o, listing, provenance)["fingerprint"] for o in (default, fast, bf16)}
    assert len(prints) == 3
    assert "fast_decode" not in _manifest(default, listing, provenance)["settings"]


def test_precision_is_checked(tmp_path, class_folders, tiny_model_file):
    from featurebench.errors import FeaturebenchError
    from featurebench.extract import ExtractOptions, run_extract

    with pytest.raises(FeaturebenchError, match="precision"):
        run_extract(ExtractOptions(str(class_folders), str(tmp_path / "a.h5"), model=str(tiny_model_file),
                                   precision="fp8"))
    with pytest.raises(FeaturebenchError, match="registry models"):
        run_extract(ExtractOptions(str(class_folders), str(tmp_path / "b.h5"), model=str(tiny_model_file),
                                   precision="bf16"))


def openvino_cpu_has_bf16() -> bool:
    """OpenVINO's own word on whether this CPU computes bf16 (independent of featurebench's code)."""
    from featurebench.extractors.openvino_engine import import_openvino

    return "BF16" in import_openvino().Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.mark.parametrize("engine", ["openvino", "tensorflow"])
def test_bf16_features_close_to_fp32_and_policy_restored(engine):
    """On a CPU with native bf16 both engines run bf16; without it OpenVINO runs fp32 and
    says so (TensorFlow emulates bf16). Either way the file records what really ran."""
    import keras

    from featurebench.extractors import load_extractor
    from featurebench.extractors.cpu import has_native_bf16

    # ResNet50: random-init MobileNet features are ~1e-19, too degenerate to compare.
    fp32 = load_extractor("resnet50", weights="none", seed=3, engine="tensorflow")
    bf16 = load_extractor("resnet50", weights="none", seed=3, precision="bf16", engine=engine)
    assert keras.config.dtype_policy().name == "float32"
    assert fp32.provenance["precision"] == "fp32" and "precision_requested" not in fp32.provenance
    assert bf16.provenance["engine"] == engine
    runs_bf16 = engine == "tensorflow" or openvino_cpu_has_bf16()
    images = np.stack([photo_like(224, 224, seed=s) for s in range(4)])
    a, b = fp32.extract(images), bf16.extract(images)
    assert b.dtype == np.float32 and b.shape == a.shape == (4, 2048)
    if runs_bf16:
        assert bf16.provenance["precision"] == "bf16" and "precision_requested" not in bf16.provenance
        assert cosines(a, b).min() >= 0.999, cosines(a, b)
        # and bf16 really ran: fp32 engines agree to ~1e-6 of the largest feature (tests/test_engines.py)
        assert np.abs(a - b).max() > 1e-4 * np.abs(a).max()
        assert bool(bf16.notices) == (not has_native_bf16())  # emulated bf16 is said to be slow
    else:
        assert bf16.provenance["precision"] == "fp32" and bf16.provenance["precision_requested"] == "bf16"
        assert np.abs(a - b).max() <= 1e-4 * np.abs(a).max()  # fp32 ran: TensorFlow's features
        assert len(bf16.notices) == 1 and "runs fp32" in bf16.notices[0]


def test_bf16_request_on_a_cpu_without_bf16_is_recorded_as_fp32(tmp_path, class_folders, monkeypatch):
    """What an AVX2-only CPU does, on any CPU: OpenVINO compiles a bf16 request to fp32. The
    file says fp32 (and what was asked), the user is told once, resume sees the difference."""
    import h5py

    from featurebench.extract import ExtractOptions, run_extract
    from featurebench.extractors import openvino_engine

    monkeypatch.setattr(openvino_engine, "_compiled_precision", lambda compiled, ov: "fp32")
    notes: list[str] = []
    opts = ExtractOptions(str(class_folders), str(tmp_path / "f.h5"), model="mobilenet", weights="none",
                          precision="bf16", engine="openvino")
    summary = run_extract(opts, notify=notes.append)
    assert summary.n_rows == 12
    assert len(notes) == 1 and "no native bf16" in notes[0] and "runs fp32" in notes[0]
    with h5py.File(tmp_path / "f.h5") as h5:
        assert h5.attrs["precision"] == "fp32" and h5.attrs["precision_requested"] == "bf16"


def test_emulated_bf16_is_said_to_be_slow(monkeypatch):
    from featurebench.extractors import cpu, load_extractor

    monkeypatch.setattr(cpu, "has_native_bf16", lambda flags=None: False)
    bf16 = load_extractor("mobilenet", weights="none", precision="bf16", engine="tensorflow")
    assert bf16.provenance["precision"] == "bf16"
    assert len(bf16.notices) == 1 and "emulates" in bf16.notices[0]


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    import os

    from featurebench.extractors.cpu import cpu_flags, has_native_bf16, isa_summary, machine_summary

    avx2 = tmp_path / "avx2"
    avx2.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx2 fma\n\n")
    amx = tmp_path / "amx"
    amx.write_text("flags\t\t: avx2 avx512f avx512_bf16 amx_bf16 amx_int8\n")
    assert cpu_flags(str(avx2)) == {"fpu", "sse2", "avx2", "fma"}
    assert not has_native_bf16(cpu_flags(str(avx2)))
    assert has_native_bf16(cpu_flags(str(amx)))
    assert cpu_flags(str(tmp_path / "absent")) == frozenset()
    assert isa_summary(cpu_flags(str(avx2))).endswith(": avx2 fma")
    assert machine_summary() == f"{isa_summary()}, {os.cpu_count()} cores"


def test_litert_default_threads_give_the_single_thread_features(coral_extractor_path):
    from featurebench.extractors.tflite_backend import TFLiteExtractor, default_threads

    images = np.stack([photo_like(224, 224, seed=s) for s in range(3)])
    default = TFLiteExtractor(coral_extractor_path)
    assert default._threads == default_threads() >= 1
    single = TFLiteExtractor(coral_extractor_path, threads=1)
    np.testing.assert_array_equal(default.extract(images), single.extract(images))


def test_prefetch_keeps_order_and_raises_in_the_consumer():
    from featurebench.data.prefetch import prefetch

    assert list(prefetch(range(50), lambda x: x * x, depth=2)) == [x * x for x in range(50)]

    def broken(x):
        if x == 3:
            raise ValueError("bad item")
        return x

    seen = []
    with pytest.raises(ValueError, match="bad item"):
        for value in prefetch(range(10), broken):
            seen.append(value)
    assert seen == [0, 1, 2]


def test_prefetch_stops_and_closes_its_source_when_the_consumer_stops():
    import threading

    from featurebench.data.prefetch import prefetch

    closed = threading.Event()

    def source():
        try:
            for i in range(10_000):
                yield i
        finally:
            closed.set()

    stream = prefetch(source(), lambda x: x)
    assert [next(stream) for _ in range(5)] == [0, 1, 2, 3, 4]
    stream.close()
    assert closed.wait(5)
    assert not any(t.name == "prefetch" and t.is_alive() for t in threading.enumerate())


def test_extract_with_and_without_prefetch_gives_the_same_file(tmp_path, class_folders, tiny_model_file, monkeypatch):
    import h5py

    import featurebench.extract as extract_module
    from featurebench.extract import ExtractOptions, run_extract

    rows = {}
    for depth in (0, 1):
        monkeypatch.setattr(extract_module, "PREFETCH_BATCHES", depth)
        out = tmp_path / f"p{depth}.h5"
        run_extract(ExtractOptions(str(class_folders), str(out), model=str(tiny_model_file), batch_size=5))
        with h5py.File(out) as h5:
            rows[depth] = (h5["features"][()], list(h5["paths"][()]))
    np.testing.assert_array_equal(rows[0][0], rows[1][0])
    assert rows[0][1] == rows[1][1]


@pytest.mark.parametrize("dim", [8, 1024, 2048, 25088])
@pytest.mark.parametrize("n_rows", [1, 96, 97, 257, 304, 1361, 10007])
def test_feature_chunks_waste_at_most_a_few_rows(dim, n_rows):
    from featurebench.store.writer import CHUNK_BYTES, chunk_rows

    rows = chunk_rows(dim, 4, n_rows)
    assert 1 <= rows <= n_rows and rows * dim * 4 <= max(CHUNK_BYTES, dim * 4)
    assert -(-n_rows // rows) * rows - n_rows <= 3


def test_feature_file_holds_no_empty_chunk_space(tmp_path):
    import h5py

    from featurebench.store.writer import write_feature_arrays

    features = np.random.default_rng(0).random((304, 1024), dtype=np.float32)
    out = write_feature_arrays(tmp_path / "f.h5", features, [0] * 304, ["a"])
    with h5py.File(out) as h5:
        assert h5["features"].id.get_storage_size() == features.nbytes
        np.testing.assert_array_equal(h5["features"][()], features)


def test_simplejpeg_route_gives_opencv_pixels(shared_dir: Path, monkeypatch):
    """The [jpeg] extra's full-size decode (simplejpeg) is taken when installed, with OpenCV's pixels;
    a file it refuses (its strict mode: corrupt entropy data) goes the OpenCV way as before."""
    pytest.importorskip("simplejpeg", reason="the [jpeg] extra (simplejpeg) is not installed: pip install -e '.[jpeg]'")
    photos = sorted((shared_dir / "datasets" / "flowers17").rglob("*.jpg"))[::340]
    photos += sorted((shared_dir / "datasets" / "dogs-vs-cats").rglob("*.jpg"))[::500]
    files = [path.read_bytes() for path in photos]
    files += [jpeg_bytes(photo_like(81, 67), "L", 6), jpeg_bytes(photo_like(300, 200), subsampling=0),
              jpeg_bytes(photo_like(123, 457), progressive=True), jpeg_bytes(photo_like(64, 96), orientation=5)]
    taken = []
    simplejpeg_route = decode_module._decode_jpeg_simplejpeg
    monkeypatch.setattr(decode_module, "_decode_jpeg_simplejpeg",
                        lambda data, color: taken.append(color) or simplejpeg_route(data, color))
    fast = [decode_image_bytes(data) for data in files]
    assert len(taken) == len(files) and False in taken  # every file, the grayscale one too
    monkeypatch.setattr(decode_module, "_decode_jpeg_simplejpeg", lambda data, color: None)
    for data, got in zip(files, fast):
        np.testing.assert_array_equal(got, decode_image_bytes(data))
    corrupt = bytearray(jpeg_bytes(photo_like(200, 300)))
    corrupt[len(corrupt) // 2: len(corrupt) // 2 + 40] = bytes(range(40))
    assert simplejpeg_route(bytes(corrupt), True) is None
    opencv_only = decode_image_bytes(bytes(corrupt))
    monkeypatch.setattr(decode_module, "_decode_jpeg_simplejpeg", simplejpeg_route)
    np.testing.assert_array_equal(decode_image_bytes(bytes(corrupt)), opencv_only)
