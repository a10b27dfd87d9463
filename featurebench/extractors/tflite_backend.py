"""Run a ``.tflite`` model through LiteRT, with correct (de)quantisation.

Quantised uint8 image models take raw RGB bytes (their input quantisation is
the normalisation); int8 or float inputs get the chosen preprocessing, then
quantised with the input tensor's scale and zero point. Outputs (or the
``--layer`` tensor) are dequantised to float32. Any intermediate tensor can be
picked by index, full name, or one of the ``;``-separated names TFLite fuses.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from featurebench.data.resize import check_input_size
from featurebench.errors import FeaturebenchError
from featurebench.extractors.base import Extractor
from featurebench.extractors.hashing import file_sha256
from featurebench.extractors.preprocessing import DESCRIPTIONS, get_preprocessor


def default_threads() -> int:
    """LiteRT threads when none are asked for: every core this process may use.

    LiteRT's own default is one thread; two threads double the Coral MobileNet's
    forward pass on a 2-core CPU (109 -> 213 img/s) and ``extract`` gains 1.5x
    (docs/performance.md, results/bench_extract_levers_amx.md).
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _interpreter(path: Path, preserve_all: bool, threads: int | None):
    from ai_edge_litert.interpreter import Interpreter

    try:
        return Interpreter(model_path=str(path), num_threads=threads,
                           experimental_preserve_all_tensors=preserve_all)
    except (ValueError, RuntimeError) as exc:  # LiteRT verifies the flatbuffer before using it
        raise FeaturebenchError(f"{path} is not a usable TFLite model ({exc}); the file is damaged or "
                                "incomplete: copy or download it again.") from None


def find_tensor(details: list[dict[str, Any]], layer: str) -> dict[str, Any]:
    """The activation tensor named ``layer`` (index, full name, or a fused name part)."""
    if layer.isdigit():
        for detail in details:
            if detail["index"] == int(layer):
                return detail
    exact = [d for d in details if d["name"] == layer]
    part = [d for d in details if layer in d["name"].split(";")]
    matches = exact or part or [d for d in details if layer in d["name"]]
    # Activations carry the batch dimension; constants (shapes, weights) do not.
    activations = [d for d in matches if len(d["shape"]) >= 2 and d["shape"][0] == 1]
    if len(activations) == 1:
        return activations[0]
    if not activations:
        tail = ", ".join(f"{d['index']}:{d['name'].split(';')[0]}" for d in details[-8:])
        raise FeaturebenchError(f"No tensor named {layer!r} in the TFLite model; last tensors are {tail}. "
                                "Pass --layer with a tensor index or name (`featurebench inspect MODEL` lists all).")
    listed = "; ".join(f"{d['index']}:{d['name'][:80]}" for d in activations)
    raise FeaturebenchError(f"--layer {layer!r} matches several tensors ({listed}); pass the tensor index.")


def _dequantize(values: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    scale, zero_point = detail["quantization"]
    if scale:
        return (values.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)
    return values.astype(np.float32)


class TFLiteExtractor(Extractor):
    """A LiteRT interpreter resized to the batch size, reading one tensor per batch."""

    def __init__(self, path: Path, layer: str | None = None, preprocess: str | None = None,
                 batch_size: int = 32, threads: int | None = None):
        self.path = path
        self._threads = threads or default_threads()
        self._interp = _interpreter(path, preserve_all=layer is not None, threads=self._threads)
        self._input = self._interp.get_input_details()[0]
        if layer is None:
            self._output = self._interp.get_output_details()[0]
        else:
            self._interp.allocate_tensors()
            self._output = find_tensor(self._interp.get_tensor_details(), layer)
        in_dtype = np.dtype(self._input["dtype"])
        raw_bytes = in_dtype == np.uint8 and preprocess is None
        self.preprocessing = "uint8" if raw_bytes else (preprocess or "tf")
        self.preprocess_fn = get_preprocessor(self.preprocessing)
        self._quantize = not raw_bytes and in_dtype != np.float32
        self.input_size = (int(self._input["shape"][1]), int(self._input["shape"][2]))
        check_input_size(*self.input_size, str(path))
        self.feature_dim = int(np.prod(self._output["shape"][1:]))
        self.batch_size = batch_size
        self._allocated_batch = 0
        #: Largest batch the graph accepts; some graphs hard-code batch 1 in a reshape.
        self._max_batch = batch_size
        self._layer = self._output["name"]
        self._preserve_all = layer is not None

    def _try_allocate(self, batch: int) -> bool:
        """Size the graph for ``batch``; False (and batch 1 from now on) if it cannot be resized."""
        if batch == self._allocated_batch:
            return True
        try:
            self._interp.resize_tensor_input(self._input["index"], [batch, *self._input["shape"][1:]], strict=False)
            self._interp.allocate_tensors()
        except RuntimeError:
            if batch == 1:
                raise
            # Some graphs hard-code batch 1 in a reshape: fresh interpreter, one image per invoke.
            self._interp = _interpreter(self.path, self._preserve_all, self._threads)
            self._allocated_batch, self._max_batch = 0, 1
            return False
        self._allocated_batch = batch
        return True

    def _run(self, part: np.ndarray) -> np.ndarray:
        self._try_allocate(len(part))
        self._interp.set_tensor(self._input["index"], self._to_input(part))
        self._interp.invoke()
        return self._interp.get_tensor(self._output["index"])

    def _to_input(self, batch: np.ndarray) -> np.ndarray:
        if not self._quantize:
            return batch.astype(self._input["dtype"], copy=False)
        scale, zero_point = self._input["quantization"]
        info = np.iinfo(self._input["dtype"])
        quantized = np.round(batch / np.float32(scale) + zero_point)
        return np.clip(quantized, info.min, info.max).astype(self._input["dtype"])

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        step = len(batch) if self._max_batch > 1 and self._try_allocate(len(batch)) else 1
        values = np.concatenate([self._run(batch[i:i + step]) for i in range(0, len(batch), step)])
        return _dequantize(values, self._output).reshape(len(batch), -1)

    @property
    def provenance(self) -> dict[str, Any]:
        scale, zero_point = self._input["quantization"]
        return {
            "model": self.path.name, "model_source": "tflite", "model_path": str(self.path.resolve()),
            "layer": self._layer, "pool": "none", "weights": f"file:{self.path.name}",
            "weights_sha256": file_sha256(self.path), "random_init": False,
            "input_size": list(self.input_size), "feature_dim": self.feature_dim,
            "preprocessing": self.preprocessing,
            "preprocessing_description": DESCRIPTIONS.get(self.preprocessing, self.preprocessing)
            + f"; input {np.dtype(self._input['dtype']).name} scale={scale:g} zero_point={zero_point}",
            "backend": "litert",
        }
