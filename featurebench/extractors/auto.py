"""``--precision auto``: per CPU class, the fastest settings measured to keep accuracy.

A class gets an entry in :data:`AUTO_CHOICES` only once a benchmark on such a CPU measured
its precision faster than fp32 with test accuracy within :data:`ACCURACY_GATE_POINTS` of
fp32 on both real datasets (Flowers-17, Dogs vs Cats; EfficientNet-Lite0 + logreg), and its
reduced-size JPEG decode within :data:`DECODE_GATE_POINTS`. Every other class runs fp32 with
a full decode. The numbers: docs/performance.md and ``results/bench_extract_<class>.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: Test accuracy (points) a precision may lose against fp32, on each real dataset, to be chosen.
ACCURACY_GATE_POINTS = 0.3
#: Test accuracy (points) the reduced-size decode may lose against a full decode to be chosen.
DECODE_GATE_POINTS = 0.2


@dataclass(frozen=True)
class AutoChoice:
    """What ``auto`` runs on one CPU class, and the results file that measured it."""

    precision: str
    fast_decode: bool
    evidence: str


#: CPU class (:func:`featurebench.extractors.cpu.cpu_class`) -> what ``auto`` runs there.
#: Zen 4 (AVX-512 VNNI + AVX512_BF16, no AMX): int8 the fastest (ResNet50 extract 3.4x fp32's
#: img/s, bf16 1.9x) and, with the reduced decode too, no test accuracy lost on either real set
#: (Lite0: Flowers-17 +0.59, Dogs vs Cats +0.00 points; results/bench_accuracy_avx512-vnni.md).
#: Not measured (fp32, full decode): amx, avx512, avx2, other.
AUTO_CHOICES = {
    "avx512-vnni": AutoChoice("int8", True, "results/bench_extract_avx512-vnni.md"),
}


@dataclass(frozen=True)
class AutoResolved:
    """``auto`` resolved for one run: the precision and decode to use, and why (one line, or empty)."""

    precision: str
    fast_decode: bool
    why: str


def _runs_int8(model: str, engine: str | None) -> bool:
    """int8 (NNCF) applies to Keras models (registry names, .keras/.h5 files) run by OpenVINO."""
    from featurebench.extractors.devices import DEFAULT_ENGINE, choose_engine
    from featurebench.extractors.model_file import looks_like_model_file

    keras_file = Path(model).suffix.lower() in (".keras", ".h5", ".hdf5")
    if looks_like_model_file(model) and not keras_file:
        return False
    return choose_engine(engine or DEFAULT_ENGINE).engine == "openvino"


def _nncf_installed() -> bool:
    """Whether NNCF (the ``[int8]`` extra) can be imported, without importing it."""
    from importlib.util import find_spec

    return find_spec("nncf") is not None


def resolve_auto(model: str, engine: str | None, cpu: str | None = None) -> AutoResolved:
    """``--precision auto`` for ``model`` on ``engine`` on this CPU (or the class ``cpu``)."""
    from featurebench.extractors import cpu as cpu_info
    from featurebench.extractors.model_file import looks_like_model_file

    cpu = cpu or cpu_info.cpu_class()
    choice = AUTO_CHOICES.get(cpu)
    if choice is None:
        return AutoResolved("fp32", False, f"--precision auto: fp32 (no precision has been measured faster within "
                                           f"the accuracy gate on this CPU class, {cpu}; see docs/performance.md)")
    if choice.precision == "int8" and not _runs_int8(model, engine):
        return AutoResolved("fp32", choice.fast_decode,
                            "--precision auto: fp32 (int8 applies to Keras models run by OpenVINO)")
    if choice.precision == "int8" and not _nncf_installed():
        return AutoResolved("fp32", choice.fast_decode,
                            "--precision auto: fp32 (int8 needs NNCF: pip install 'featurebench[int8]')")
    if choice.precision == "bf16" and looks_like_model_file(model):
        return AutoResolved("fp32", choice.fast_decode, "--precision auto: fp32 (bf16 applies to registry models)")
    return AutoResolved(choice.precision, choice.fast_decode, "")


__all__ = ["ACCURACY_GATE_POINTS", "AUTO_CHOICES", "AutoChoice", "AutoResolved", "DECODE_GATE_POINTS",
           "resolve_auto"]
