"""Runtimes behind one small interface, chosen by name. Adding a runtime: one module with a
`create(context, precision)` function, and one `register_backend(...)` below."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from encoderzoo.backends.base import Backend, BackendContext
from encoderzoo.errors import ConfigError
from encoderzoo.registry import Registry

__all__ = [
    "ARTIFACTS", "BACKENDS", "Backend", "BackendContext", "BackendSpec", "create_backend",
    "get_backend", "parse_backend_options", "parse_backends",
]

# What a backend runs, built by the pipeline on demand (see Pipeline.artifact):
ARTIFACTS = {
    "checkpoint": "the PyTorch module itself",
    "onnx": "the exported graph, unfused (other runtimes fuse it their own way)",
    "onnx-fused": "the graph fused by ONNX Runtime's transformer optimizer",
    "onnx-int8": "the fused graph, int8 by ONNX Runtime dynamic quantization",
    "onnx-int8-static": "the exported graph, int8 QDQ by ONNX Runtime static quantization",
    "onnx-fp16": "the fused graph with float16 weights and compute (float32 inputs and outputs), for GPUs",
    "openvino-int8": "an OpenVINO IR quantized by NNCF",
}


@dataclass(frozen=True)
class BackendSpec:
    name: str
    description: str
    artifacts: Mapping[str, str]  # precision -> the artifact it runs (a key of ARTIFACTS)
    defaults: tuple[str, ...]  # the precisions a bare `--backends NAME` runs
    module: str  # implementation module, imported only when used; has `create(context, precision)`
    options: Mapping[str, str] = field(default_factory=dict)  # --backend-option NAME.KEY=VALUE keys

    @property
    def precisions(self) -> tuple[str, ...]:
        return tuple(self.artifacts)


BACKENDS: Registry[BackendSpec] = Registry("backend")


def register_backend(spec: BackendSpec) -> BackendSpec:
    unknown = set(spec.artifacts.values()) - set(ARTIFACTS)
    if unknown or not set(spec.defaults) <= set(spec.artifacts):
        raise ValueError(f"backend {spec.name!r}: unknown artifacts {unknown} or default precisions")
    return BACKENDS.register(spec.name, spec)


def get_backend(name: str) -> BackendSpec:
    return BACKENDS[name]


def parse_backends(text: str) -> list[tuple[str, str]]:
    """'onnxruntime' (its default precisions) or 'onnxruntime:int8' -> [(name, precision)]."""
    name, _, precision = text.strip().partition(":")
    spec = get_backend(name)
    if not precision:
        return [(name, p) for p in spec.defaults]
    if precision not in spec.artifacts:
        raise ConfigError(
            f"backend {name!r} has no precision {precision!r}; it has {', '.join(spec.precisions)}"
        )
    return [(name, precision)]


def parse_backend_options(values: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """'onnxruntime.io_binding=true' -> {"onnxruntime": {"io_binding": "true"}}, checked against
    each backend's declared options."""
    options: dict[str, dict[str, str]] = {}
    for value in values:
        target, sep, setting = value.partition("=")
        name, dot, key = target.strip().partition(".")
        if not sep or not dot:
            raise ConfigError(f"--backend-option takes BACKEND.KEY=VALUE, e.g. onnxruntime.io_binding=true; "
                              f"got {value!r}")
        spec = get_backend(name)
        if key not in spec.options:
            known = ", ".join(f"{k} ({d})" for k, d in spec.options.items()) or "none"
            raise ConfigError(f"backend {name!r} has no option {key!r}; its options: {known}")
        options.setdefault(name, {})[key] = setting.strip()
    return options


def create_backend(name: str, precision: str, context: BackendContext) -> Backend:
    from encoderzoo.devices import check_precision

    spec = get_backend(name)
    check_precision(precision, context.device, name)
    if spec.artifacts[precision] != "checkpoint" and context.graph is None:
        raise ConfigError(f"backend {name!r} needs an exported graph; run `encoderzoo export` first")
    module = importlib.import_module(spec.module)
    backend: Backend = module.create(context, precision)
    return backend


register_backend(BackendSpec(
    name="torch", description="PyTorch eager: fp32 (the reference), bf16 autocast; fp16 on CUDA",
    artifacts={"fp32": "checkpoint", "bf16": "checkpoint", "fp16": "checkpoint"}, defaults=("fp32", "bf16"),
    module="encoderzoo.backends.torch_backend",
))
register_backend(BackendSpec(
    name="onnxruntime",
    description="ONNX Runtime (CPU, CUDA, TensorRT): fused fp32, int8 dynamic, int8 static QDQ, fp16 on GPU",
    artifacts={"fp32": "onnx-fused", "int8": "onnx-int8", "int8-static": "onnx-int8-static",
               "fp16": "onnx-fp16"},
    defaults=("fp32", "int8"), module="encoderzoo.backends.ort_backend",
    options={"io_binding": "true|false: bind inputs and outputs once per batch (default: true on "
                           "CUDA, outputs stay on the device until copied; false on CPU)",
             "spinning": "true|false: worker threads spin between runs (default true)"},
))
register_backend(BackendSpec(
    name="openvino", description="OpenVINO on the CPU: fp32, bf16 inference precision, NNCF int8",
    artifacts={"fp32": "onnx", "bf16": "onnx", "int8": "openvino-int8"},
    defaults=("fp32", "bf16", "int8"), module="encoderzoo.backends.openvino_backend",
    options={"hint": "latency|throughput: the performance hint for single batches (default latency)",
             "streams": "parallel inference streams (default: the hint's choice)",
             "async": "true|false: whole datasets through an async queue of throughput streams "
                      "(default true)"},
))
