"""Run a Keras feature model through OpenVINO's CPU runtime: the default engine for Keras models.

On the reference 2-core AVX-512 CPU OpenVINO's fp32 forward pass is 1.5x (ResNet50) to 2x
(MobileNet, EfficientNet-Lite0) TensorFlow's for features equal to TensorFlow's within float32
rounding (cosine > 0.99999), and its bf16 path uses AMX where TensorFlow's barely gains
(ResNet50 5x fp32); numbers in docs/performance.md and results/bench_extract*.md.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

import numpy as np

from featurebench.errors import FeaturebenchError

#: ``--precision`` -> OpenVINO's inference precision. OpenVINO picks bf16 by itself on CPUs
#: with AVX512-BF16 or AMX, so fp32 is always asked for explicitly: features are then
#: TensorFlow's. On a CPU without native bf16 a bf16 request compiles to fp32; what was
#: compiled is read back (:attr:`OpenVINOForward.precision`), never assumed.
#: An int8 model (quantised by NNCF, featurebench/extractors/int8.py) keeps its remaining
#: float operations in fp32.
INFERENCE_PRECISIONS = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}


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

    def __init__(self, model: Any, precision: str = "fp32", converted: Any = None):
        """``model``: the Keras model (converted here) or its name; ``converted``: its OpenVINO
        graph when already converted (:func:`convert_keras`, or read from the model cache)."""
        import_openvino()

        if precision not in INFERENCE_PRECISIONS:
            raise FeaturebenchError(f"--precision {precision!r}: choose one of {', '.join(INFERENCE_PRECISIONS)}")
        self._name = model if isinstance(model, str) else model.name
        if converted is None:
            converted = convert_keras(model)
        #: The converted fp32 graph, kept until an int8 request is calibrated (then None).
        self.fp32_model = converted if precision == "int8" else None
        self._request = None
        self.precision = "int8"
        if precision != "int8":  # int8 runs once calibrated: featurebench/extractors/int8.py calls use()
            self.use(converted, precision)

    def compile(self, ov_model: Any, precision: str) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
        """Compile ``ov_model`` for the CPU: ``(call like this object's, precision it really runs in)``."""
        ov = import_openvino()
        try:
            compiled = compile_for_cpu(ov_model, precision)
        except Exception as exc:  # noqa: BLE001 - the compiler raises many types
            raise FeaturebenchError(
                f"OpenVINO could not compile {self._name} ({type(exc).__name__}: {str(exc)[:300]}); "
                "run it with --engine tensorflow instead."
            ) from None
        request = compiled.create_infer_request()
        running = "int8" if precision == "int8" else _compiled_precision(compiled, ov)
        return (lambda batch: request.infer({0: batch}, share_inputs=True, share_outputs=False)[0]), running

    def use(self, ov_model: Any, precision: str) -> None:
        """Run ``ov_model`` (this model's graph, or its int8 version) in ``precision`` from now on."""
        self._request, self.precision = self.compile(ov_model, precision)
        self.fp32_model = None

    @staticmethod
    def to_input(batch: np.ndarray) -> np.ndarray:
        """A preprocessed batch as the contiguous float32 array the request reads in place."""
        return np.ascontiguousarray(batch, dtype=np.float32)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Features of a preprocessed float32 batch (a fresh array, not the request's buffer)."""
        if self._request is None:
            raise FeaturebenchError(f"{self._name}: --precision int8 runs only once calibrated "
                                    "(featurebench.extractors.int8.calibrate).")
        return self._request(batch)


def convert_keras(model: Any) -> Any:
    """Convert a Keras model to an OpenVINO graph that takes any batch size."""
    ov = import_openvino()
    try:
        converted = ov.convert_model(model)
        converted.reshape([-1, *(int(d) for d in model.input_shape[1:])])  # any batch size, the last one too
    except Exception as exc:  # noqa: BLE001 - the converter raises many types
        raise FeaturebenchError(
            f"OpenVINO could not convert {model.name} ({type(exc).__name__}: {str(exc)[:300]}); "
            "run it with --engine tensorflow instead."
        ) from None
    return converted


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
