"""Runtimes behind one small interface, chosen by name. Adding a runtime: one module with a
`create(context, precision)` function, and one `register_backend(...)` line here."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from encoderzoo.backends.base import Backend, BackendContext
from encoderzoo.errors import ConfigError
from encoderzoo.registry import Registry

__all__ = [
    "BACKENDS", "Backend", "BackendContext", "BackendSpec", "create_backend", "get_backend",
    "parse_backend",
]


@dataclass(frozen=True)
class BackendSpec:
    name: str
    description: str
    precisions: tuple[str, ...]  # the first is the default
    needs_onnx: bool  # runs the exported graph (else the PyTorch module)
    module: str  # implementation module, imported only when used; has `create(context, precision)`


BACKENDS: Registry[BackendSpec] = Registry("backend")


def register_backend(spec: BackendSpec) -> BackendSpec:
    return BACKENDS.register(spec.name, spec)


def get_backend(name: str) -> BackendSpec:
    return BACKENDS[name]


def parse_backend(text: str) -> tuple[str, str]:
    """'onnxruntime' or 'onnxruntime:fp32' -> (name, precision), checked against the registry."""
    name, _, precision = text.strip().partition(":")
    spec = get_backend(name)
    precision = precision or spec.precisions[0]
    if precision not in spec.precisions:
        raise ConfigError(
            f"backend {name!r} has no precision {precision!r}; it has {', '.join(spec.precisions)}"
        )
    return name, precision


def create_backend(name: str, precision: str, context: BackendContext) -> Backend:
    spec = get_backend(name)
    if spec.needs_onnx and context.onnx_path is None:
        raise ConfigError(f"backend {name!r} needs an exported ONNX model; run `encoderzoo export` first")
    module = importlib.import_module(spec.module)
    backend: Backend = module.create(context, precision)
    return backend


register_backend(BackendSpec(
    name="torch", description="PyTorch eager, the fp32 reference",
    precisions=("fp32",), needs_onnx=False, module="encoderzoo.backends.torch_backend",
))
register_backend(BackendSpec(
    name="onnxruntime", description="ONNX Runtime on the fused graph (providers configurable)",
    precisions=("fp32",), needs_onnx=True, module="encoderzoo.backends.ort_backend",
))
