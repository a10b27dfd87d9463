"""What this CPU can do: the ISA flags that decide which fast paths really run.

The machines featurebench runs on differ: some x86 CPUs have AVX512-BF16 and AMX (native
bf16 matrix units), others only AVX2. A bf16 request on a CPU without native bf16 is
either run in fp32 (OpenVINO) or emulated (TensorFlow); callers use these helpers to say
which, and benchmarks record the flags so numbers from different machines can be compared.
"""

from __future__ import annotations

import functools
import os
import platform
from pathlib import Path

#: The flags that matter for featurebench's speed paths, in the order benchmarks print them.
INTERESTING_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
#: Any of these means the CPU computes bf16 natively.
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.lru_cache(maxsize=None)
def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags as the kernel lists them (empty where /proc/cpuinfo is absent)."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def has_native_bf16(flags: frozenset[str] | None = None) -> bool:
    """True when the CPU computes bf16 in hardware (AVX512-BF16 or AMX)."""
    flags = cpu_flags() if flags is None else flags
    return any(flag in flags for flag in NATIVE_BF16_FLAGS)


def isa_summary(flags: frozenset[str] | None = None) -> str:
    """One line naming the CPU and the speed-relevant flags it has, e.g. for benchmark headers."""
    flags = cpu_flags() if flags is None else flags
    present = [flag for flag in INTERESTING_FLAGS if flag in flags]
    return f"{cpu_model()} ({platform.machine()}): {' '.join(present) or 'no AVX2/AVX-512 flags'}"


def machine_summary() -> str:
    """:func:`isa_summary` plus the core count: the machine line of a benchmark's results file."""
    return f"{isa_summary()}, {os.cpu_count()} cores"


@functools.lru_cache(maxsize=None)
def cpu_model(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The CPU's model name, or the platform's processor string where /proc/cpuinfo is absent."""
    try:
        for line in Path(cpuinfo).read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                return value.strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def cpu_class(flags: frozenset[str] | None = None) -> str:
    """The CPU's class for the int8 and bf16 paths: ``amx``, ``avx512-vnni``, ``avx512``, ``avx2`` or ``other``.

    Measurements (docs/performance.md) are reported per class, and ``--precision auto``
    picks int8 only on the classes where it was measured faster within the accuracy gate.
    """
    flags = cpu_flags() if flags is None else flags
    if "amx_int8" in flags or "amx_bf16" in flags:
        return "amx"
    if "avx512_vnni" in flags:
        return "avx512-vnni"
    if "avx512f" in flags:
        return "avx512"
    return "avx2" if "avx2" in flags else "other"


#: Set to a process's CPU share (a Ray worker's ``--cpus-per-worker``, featurebench.scale.worker):
#: the threads OpenVINO and LiteRT use then, instead of every core of the machine.
THREADS_VARIABLE = "FEATUREBENCH_THREADS"


def thread_limit() -> int | None:
    """The thread count :data:`THREADS_VARIABLE` asks for (None: unset or not a positive number)."""
    try:
        value = int(os.environ.get(THREADS_VARIABLE, ""))
    except ValueError:
        return None
    return value if value > 0 else None

