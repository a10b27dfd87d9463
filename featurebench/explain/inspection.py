"""``featurebench inspect``: every layer's index, name, class, output shape, params, trainable flag.

Learn a network's layer indices and names before cutting it (``--unfreeze-from``,
``extract --layer``). Works for registry names (built with ``--weights``; ``none``
needs no download and gives the same architecture), ``.keras``/``.h5`` files (layers
of a nested body are listed under it as ``2.15``), ``.tflite`` files (tensors:
index, name, shape, dtype, quantisation) and SavedModel folders (signature tensors).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from featurebench.errors import FeaturebenchError


@dataclass
class Row:
    """One layer (Keras) or tensor (TFLite/SavedModel)."""

    index: str
    name: str
    kind: str
    shape: str
    params: int | None = None
    trainable: str = ""
    depth: int = 0


@dataclass
class Inspection:
    title: str
    backend: str
    rows: list[Row]
    totals: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def _shape(layer: Any) -> str:
    try:
        output = layer.output
    except (AttributeError, ValueError, RuntimeError):
        return "?"
    if isinstance(output, (list, tuple)):
        return ", ".join(str(tuple(o.shape)) for o in output)
    return str(tuple(output.shape))


def _trainable(layer: Any) -> str:
    if not layer.trainable:
        return "no"
    children = getattr(layer, "layers", None)
    if children and any(not c.trainable for c in children if c.weights):
        return "partial"
    return "yes"


def _params(layer: Any) -> int:
    try:
        return int(layer.count_params())
    except ValueError:  # an unbuilt layer
        return 0


def keras_rows(model: Any, expand: bool = True, prefix: str = "", depth: int = 0) -> list[Row]:
    """Rows for ``model.layers``; nested models' layers follow their parent when ``expand``."""
    rows = []
    for i, layer in enumerate(model.layers):
        index = f"{prefix}{i}"
        rows.append(Row(index, layer.name, type(layer).__name__, _shape(layer), _params(layer), _trainable(layer), depth))
        if expand and getattr(layer, "layers", None):
            rows.extend(keras_rows(layer, expand, f"{index}.", depth + 1))
    return rows


def _keras_totals(model: Any) -> dict[str, Any]:
    count = lambda weights: int(sum(int(np.prod(w.shape)) for w in weights))  # noqa: E731
    return {"layers": len(model.layers), "params": count(model.weights),
            "trainable_params": count(model.trainable_weights),
            "non_trainable_params": count(model.non_trainable_weights),
            "input_shape": str(tuple(model.input_shape)) if hasattr(model, "input_shape") else "?"}


def inspect_keras(model: Any, title: str, expand: bool = True) -> Inspection:
    return Inspection(title, "keras", keras_rows(model, expand), _keras_totals(model))


def inspect_tflite(path: Path) -> Inspection:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    interp.allocate_tensors()
    inputs = {d["index"] for d in interp.get_input_details()}
    outputs = {d["index"] for d in interp.get_output_details()}
    rows = []
    for detail in sorted(interp.get_tensor_details(), key=lambda d: d["index"]):
        scale, zero_point = detail["quantization"]
        role = "input" if detail["index"] in inputs else "output" if detail["index"] in outputs else ""
        quant = f"scale={scale:g} zero_point={zero_point}" if scale else ""
        rows.append(Row(str(detail["index"]), detail["name"], np.dtype(detail["dtype"]).name,
                        str(tuple(int(v) for v in detail["shape"])), None, " ".join(x for x in (role, quant) if x)))
    return Inspection(f"{path.name} (TFLite tensors)", "tflite", rows,
                      {"tensors": len(rows), "inputs": sorted(inputs), "outputs": sorted(outputs)})


def inspect_savedmodel(path: Path) -> Inspection:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    rows = []
    for sig_name, fn in loaded.signatures.items():
        for name, spec in fn.structured_input_signature[1].items():
            rows.append(Row(f"{sig_name}:in", name, spec.dtype.name, str(tuple(spec.shape))))
        for name, spec in fn.structured_outputs.items():
            rows.append(Row(f"{sig_name}:out", name, spec.dtype.name, str(tuple(spec.shape))))
    return Inspection(f"{path.name} (SavedModel signatures)", "savedmodel", rows, {"signatures": len(loaded.signatures)})


def load_keras_model(model: str, include_top: bool = False, weights: str = "none", seed: int = 42,
                     image_size: int | None = None, unsafe: bool = False) -> tuple[Any, str, str]:
    """A registry model (built with ``weights``) or a ``.keras``/``.h5`` file: ``(model, title, preprocessing)``.

    The preprocessing is the registry model's own, or ``none`` for a file (its graph normalises,
    as a fine-tuned model's does).
    """
    from featurebench.extractors.model_file import looks_like_model_file

    if looks_like_model_file(model):
        path = Path(model).expanduser()
        if not path.exists():
            raise FeaturebenchError(f"Model file {path} does not exist.")
        import keras

        try:
            loaded = keras.models.load_model(path, compile=False, safe_mode=not unsafe)
        except ValueError as exc:
            if "Lambda" in str(exc) or "safe_mode" in str(exc):
                raise FeaturebenchError(f"{path} contains a Lambda layer; pass --unsafe-model only if you trust it.") from None
            raise FeaturebenchError(f"Could not load Keras model {path}: {exc}") from None
        return loaded, path.name, "none"
    from featurebench.extractors.keras_backend import build_base
    from featurebench.finetune.surgery import body_spec

    spec = body_spec(model, image_size)
    built, info = build_base(spec, weights, include_top, seed)
    top = "include_top=True" if include_top else "include_top=False"
    return built, f"{spec.name} ({top}, weights {info['weights']})", spec.preprocessing


def inspect_model(model: str, include_top: bool = False, weights: str = "none", seed: int = 42,
                  image_size: int | None = None, unsafe: bool = False, expand: bool = True) -> Inspection:
    """Describe a registry model (built with ``weights``) or a model file / SavedModel folder."""
    from featurebench.extractors.model_file import looks_like_model_file

    if looks_like_model_file(model):
        path = Path(model).expanduser()
        if not path.exists():
            raise FeaturebenchError(f"Model file {path} does not exist.")
        if path.suffix.lower() == ".tflite":
            return inspect_tflite(path)
        if path.is_dir():
            return inspect_savedmodel(path)
    built, title, _ = load_keras_model(model, include_top, weights, seed, image_size, unsafe)
    return inspect_keras(built, title, expand)


def format_table(inspection: Inspection) -> str:
    """A plain-text table (fixed columns, greppable)."""
    tflite_like = inspection.backend in ("tflite", "savedmodel")
    headers = ("index", "name", "dtype" if tflite_like else "class", "shape" if tflite_like else "output shape",
               *(() if tflite_like else ("params",)), "role / quantization" if tflite_like else "trainable")
    body = []
    for row in inspection.rows:
        name = "  " * row.depth + row.name
        cells = [row.index, name, row.kind, row.shape]
        if not tflite_like:
            cells.append(f"{row.params:,}" if row.params is not None else "")
        cells.append(row.trainable)
        body.append(cells)
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *body)]
    widths[1] = min(widths[1], 60)
    lines = [inspection.title, "  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip() for cells in body]
    totals = ", ".join(f"{k.replace('_', ' ')}: {v:,}" if isinstance(v, int) else f"{k.replace('_', ' ')}: {v}"
                       for k, v in inspection.totals.items())
    lines.append(totals)
    return "\n".join(lines)


__all__ = ["Inspection", "Row", "format_table", "inspect_keras", "inspect_model", "keras_rows", "load_keras_model"]
