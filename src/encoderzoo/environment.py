"""The machine and software a result was measured on, recorded with every result."""

from __future__ import annotations

import functools
import os
import platform
from importlib import metadata
from typing import Any

PACKAGES = ("encoderzoo", "torch", "transformers", "tokenizers", "onnx", "onnxruntime",
            "openvino", "numpy")
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@functools.cache
def cpu_identity(cpuinfo: str = "/proc/cpuinfo") -> tuple[str, frozenset[str]]:
    """(the CPU's model name, its feature flags) from /proc/cpuinfo; flags are empty where it
    cannot be read. A virtual machine's model name can be as bare as "AMD EPYC" for every
    generation (Zen 4 runs AVX-512 on 256-bit units, Zen 5 on 512-bit: twice the bf16 and int8
    GEMM rate with the same flags), so x86's family, model and stepping are added to it."""
    model, flags = platform.processor() or platform.machine(), frozenset[str]()
    numbers: dict[str, str] = {}
    try:
        with open(cpuinfo, encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if key == "model name" and value:
                    model = value
                elif key in ("cpu family", "model", "stepping") and value:
                    numbers[key.removeprefix("cpu ")] = value
                elif key == "flags":
                    flags = frozenset(value.split())
                    break
    except OSError:
        pass
    if numbers:
        model += " (" + ", ".join(f"{k} {v}" for k, v in numbers.items()) + ")"
    return model, flags


def _cpu() -> dict[str, Any]:
    model, flags = cpu_identity()
    return {"model": model, "flags": [f for f in CPU_FLAGS if f in flags],
            "logical_cores": os.cpu_count(), "available_cores": available_cores()}


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def free_memory() -> None:
    """Collect garbage and give the freed heap back to the system (glibc keeps it otherwise:
    940 -> 430 MiB after an ONNX Runtime session of base BERT was closed)."""
    import contextlib
    import ctypes
    import gc

    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def peak_memory() -> dict[str, float | None]:
    """Peak resident memory so far, MiB: this process (VmHWM) and its largest finished child
    (the graph optimizer runs in one)."""
    import resource

    own = None
    try:
        with open("/proc/self/status", encoding="utf-8") as f:
            own = next((int(line.split()[1]) / 1024 for line in f if line.startswith("VmHWM:")), None)
    except OSError:
        pass
    if own is None:
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"process_mib": round(own, 1), "largest_child_mib": round(child, 1) if child else None}


def environment(threads: int) -> dict[str, Any]:
    import psutil

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "threads": threads,
        "packages": _versions(),
    }
    try:
        import onnxruntime

        info["onnxruntime_providers"] = onnxruntime.get_available_providers()
    except ImportError:
        info["onnxruntime_providers"] = []
    return info
