"""Where models run: the CPU or a CUDA GPU, chosen automatically (`--device auto`) and never
required. ONNX Runtime's execution providers follow the device unless `--providers` names them;
TensorRT gets fp16, an engine cache and optimization profiles that match the sequence buckets.
Everything here is plain logic, testable without a GPU; the backends call it."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from encoderzoo.environment import cpu_identity
from encoderzoo.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")
BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # CPU instructions that compute bfloat16 natively
REQUIREMENTS = {  # what a precision may need of the machine (see backends.BackendSpec.needs)
    "cuda": "a CUDA GPU in use (--device)",
    "native-bf16": f"a CPU that computes bfloat16 natively ({' or '.join(BF16_FLAGS)})",
}
CPU, CUDA, TENSORRT = "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"
ALIASES = {"cpu": CPU, "cuda": CUDA, "tensorrt": TENSORRT, "trt": TENSORRT}
GPU_PROVIDERS = (TENSORRT, CUDA)


def gpu_present() -> bool:
    """An NVIDIA GPU with a working driver, asked of PyTorch (imported anyway by the backends)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    if not Path("/proc/driver/nvidia/version").exists() and Path("/proc").is_dir():
        return False  # no NVIDIA driver on this Linux machine: torch (~170 MiB) need not load to say so
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return Path("/proc/driver/nvidia/version").exists()
    return bool(torch.cuda.is_available())


def resolve_device(requested: str, *, gpu: bool | None = None) -> str:
    """"cpu" or "cuda" for `--device auto|cpu|cuda` (`gpu`: whether one is present, probed
    when None)."""
    if requested not in DEVICES:
        raise ConfigError(f"--device is {', '.join(DEVICES)}, not {requested!r}")
    if requested == "cpu":
        return "cpu"
    present = gpu_present() if gpu is None else gpu
    if requested == "cuda" and not present:
        raise ConfigError("--device cuda: no CUDA GPU is visible (torch.cuda.is_available() is false); "
                          "use --device auto to fall back to the CPU")
    return "cuda" if present else "cpu"


def provider_names(names: Sequence[str]) -> tuple[str, ...]:
    """Full provider names; `cpu`, `cuda`, `tensorrt` are accepted as short names."""
    return tuple(ALIASES.get(n.strip().lower(), n.strip()) for n in names if n.strip())


def choose_providers(device: str, requested: Sequence[str], available: Sequence[str], *,
                     explicit_device: bool = False) -> tuple[list[str], str | None]:
    """(providers in order, a note when a GPU provider was wanted but is not in this build).

    `requested` (from --providers) wins when given and must all be available. Otherwise the
    device decides: cuda → CUDA then CPU (TensorRT only when named, its engine builds take
    minutes); cpu → CPU. When the onnxruntime build has no CUDA provider, `--device cuda` is an
    error and `--device auto` falls back to the CPU with a note."""
    if requested:
        wanted = list(provider_names(requested))
        missing = [p for p in wanted if p not in available]
        if missing:
            raise ConfigError(
                f"ONNX Runtime provider {', '.join(missing)} is not in this onnxruntime build (available: "
                f"{', '.join(available)}); install onnxruntime-gpu for CUDA and TensorRT")
        if CPU not in wanted:
            wanted.append(CPU)  # for the operators a GPU provider does not take
        return wanted, None
    if device == "cuda":
        if CUDA in available:
            return [CUDA, CPU], None
        if explicit_device:
            raise ConfigError("--device cuda: this onnxruntime build has no CUDAExecutionProvider; "
                              "`pip uninstall onnxruntime && pip install onnxruntime-gpu`")
        return [CPU], "a GPU is present but onnxruntime has no CUDA provider (install onnxruntime-gpu): CPU"
    return [CPU], None


def trt_profiles(input_names: Sequence[str], batch_size: int, seq_len: int,
                 buckets: Sequence[int] = (), row: Sequence[int] = ()) -> dict[str, str]:
    """TensorRT optimization profiles as ONNX Runtime's provider options take them: one profile
    per sequence bucket (each from the previous bucket + 1 up to the bucket, optimized for a
    full batch at the bucket's length), or one from 1 to `seq_len`. Several profiles list each
    input once per profile; `row` (multiple choice: the choices) sits between batch and tokens."""
    edges = sorted(b for b in set(buckets) if b <= seq_len) or [seq_len]
    if edges[-1] != seq_len:
        edges.append(seq_len)  # rows longer than the last bucket pad to seq_len
    mins, opts, maxs = [], [], []
    low, middle = 1, "".join(f"x{n}" for n in row)
    for high in edges:
        for name in input_names:
            mins.append(f"{name}:1{middle}x{low}")
            opts.append(f"{name}:{batch_size}{middle}x{high}")
            maxs.append(f"{name}:{batch_size}{middle}x{high}")
        low = high + 1
    return {"trt_profile_min_shapes": ",".join(mins), "trt_profile_opt_shapes": ",".join(opts),
            "trt_profile_max_shapes": ",".join(maxs)}


def provider_options(provider: str, *, precision: str, input_names: Sequence[str], batch_size: int,
                     seq_len: int, buckets: Sequence[int], cache_dir: Path, device_id: int = 0,
                     graph_hash: str | None = None, row: Sequence[int] = ()) -> dict[str, Any]:
    """The options ONNX Runtime gets with each provider. TensorRT's engines and timing cache are
    kept per graph (its SHA-256): engines of another model are never picked up."""
    if provider == CUDA:
        return {"device_id": device_id, "arena_extend_strategy": "kSameAsRequested",
                "cudnn_conv_algo_search": "HEURISTIC"}
    if provider == TENSORRT:
        engines = cache_dir / "tensorrt" / (graph_hash[:24] if graph_hash else "unhashed")
        return {"device_id": device_id, "trt_fp16_enable": precision == "fp16",
                "trt_engine_cache_enable": True, "trt_engine_cache_path": str(engines),
                "trt_timing_cache_enable": True, "trt_timing_cache_path": str(engines),
                "trt_max_workspace_size": 4 << 30,
                **trt_profiles(input_names, batch_size, seq_len, buckets, row)}
    return {}


def fallen_back(wanted: Sequence[str], active: Sequence[str]) -> list[str]:
    """GPU providers asked for that the session did not take (ONNX Runtime drops a provider
    whose libraries fail to load, with only a warning)."""
    return [p for p in wanted if p in GPU_PROVIDERS and p not in active]


@dataclass(frozen=True)
class Machine:
    """What the precisions of a run may need: the device in use and the CPU's bfloat16."""

    device: str  # "cpu" or "cuda", resolved
    native_bf16: bool
    cpu: str = ""  # the CPU's model name, for messages

    @classmethod
    def here(cls, device: str) -> Machine:
        model, flags = cpu_identity()
        return cls(device=device, native_bf16=any(f in flags for f in BF16_FLAGS), cpu=model)

    def has(self, requirement: str) -> bool:
        return self.device == "cuda" if requirement == "cuda" else self.native_bf16

    def lacks(self, requirement: str) -> str:
        if requirement == "cuda":
            return f"it runs on a CUDA GPU and none is in use here (--device {self.device})"
        return f"this CPU ({self.cpu}) does not compute bfloat16 natively ({' or '.join(BF16_FLAGS)})"

    def refusal(self, backend: str, precision: str, requirement: str) -> str:
        """The one-line error for `backend:precision` asked for on a machine without `requirement`."""
        others = "fp32, bf16 or int8" if self.native_bf16 else "fp32 or int8"
        return f"{backend}:{precision}: {self.lacks(requirement)}; use {others}"
