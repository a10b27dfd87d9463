"""Run a Keras feature model through OpenVINO's CPU runtime: the default engine for Keras models.

On the reference 2-core AVX-512 CPU OpenVINO's fp32 forward pass is 1.5x (ResNet50) to 2x
(MobileNet, EfficientNet-Lite0) TensorFlow's for features equal to TensorFlow's within float32
rounding (cosine > 0.99999), and its bf16 path uses AMX where TensorFlow's barely gains
(ResNet50 5x fp32); numbers in docs/performance.md and results/bench_extract*.md.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from featurebench.errors import FeaturebenchError

#: ``--precision`` -> OpenVINO's inference precision. OpenVINO picks bf16 by itself on CPUs
#: with AVX512-BF16 or AMX, so fp32 is always asked for explicitly: features are then
#: TensorFlow's. On a CPU without native bf16 a bf16 request compiles to fp32; what was
#: compiled is read back (:attr:`OpenVINOForward.precision`), never assumed.
INFERENCE_PRECISIONS = {"fp32": "f32", "bf16": "bf16"}


def import_openvino() -> Any:
    """Import OpenVINO with its usage telemetry off; always import it through here.

    OpenVINO's model converter sends usage events to Google Analytics unless the user has
    opted out, forking a process per event from a background thread (openvino_telemetry's
    GA4 backend). Those forks inherit featurebench's open files: one held the lock of a
    just-written HDF5 file, so reading it failed. The converter has its own no-op stand-in
    for when the telemetry package is missing; marking the package as not importable before
    OpenVINO's first import selects it. A process that imported OpenVINO earlier keeps
    whatever it chose.
    """
    sys.modules.setdefault("openvino_telemetry", None)
    import openvino

    return openvino


def openvino_version() -> str:
    """The installed OpenVINO runtime version (for provenance)."""
    return import_openvino().get_version().split("-")[0]


class OpenVINOForward:
    """A Keras model converted and compiled for the CPU; call it on a float32 NHWC batch.

    ``precision`` is what was asked for; the attribute :attr:`precision` is what OpenVINO
    compiled (``fp32`` for a bf16 request on a CPU without AVX512-BF16/AMX).
    """

    def __init__(self, model: Any, precision: str = "fp32"):
        ov = import_openvino()

        if precision not in INFERENCE_PRECISIONS:
            raise FeaturebenchError(f"--precision {precision!r}: choose one of {', '.join(INFERENCE_PRECISIONS)}")
        try:
            converted = ov.convert_model(model)
            converted.reshape([-1, *(int(d) for d in model.input_shape[1:])])  # any batch size, the last one too
            compiled = compile_for_cpu(converted, precision)
        except Exception as exc:  # noqa: BLE001 - the converter raises many types
            raise FeaturebenchError(
                f"OpenVINO could not convert {model.name} ({type(exc).__name__}: {str(exc)[:300]}); "
                "run it with --engine tensorflow instead."
            ) from None
        self.precision = _compiled_precision(compiled, ov)
        self._request = compiled.create_infer_request()

    @staticmethod
    def to_input(batch: np.ndarray) -> np.ndarray:
        """A preprocessed batch as the contiguous float32 array the request reads in place."""
        return np.ascontiguousarray(batch, dtype=np.float32)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Features of a preprocessed float32 batch (a fresh array, not the request's buffer)."""
        return self._request.infer({0: batch}, share_inputs=True, share_outputs=False)[0]


def compile_for_cpu(model: Any, precision: str = "fp32") -> Any:
    """Compile an OpenVINO model (converted from Keras or read from ONNX) for extract's one
    synchronous request on the CPU, in ``precision`` (asked for explicitly, also fp32)."""
    # LATENCY: one stream over all cores for the single synchronous request extract makes;
    # THROUGHPUT's several streams halve a synchronous caller's speed.
    return import_openvino().Core().compile_model(model, "CPU", {
        "INFERENCE_PRECISION_HINT": INFERENCE_PRECISIONS[precision], "PERFORMANCE_HINT": "LATENCY"})


def _compiled_precision(compiled: Any, ov: Any) -> str:
    """The inference precision a compiled model really runs in, as a ``--precision`` name."""
    hint = compiled.get_property("INFERENCE_PRECISION_HINT")
    return "bf16" if hint == ov.Type.bf16 else "fp32"
