"""ONNX Runtime over the exported (fused) graph; the execution providers are an option, so
CUDA, TensorRT or CANN users pass theirs."""

from __future__ import annotations

from typing import Any

import numpy as np

from encoderzoo.backends.base import BackendContext, flag
from encoderzoo.errors import ConfigError


class OrtBackend:
    name = "onnxruntime"

    def __init__(self, context: BackendContext, precision: str) -> None:
        import onnxruntime as ort

        available = ort.get_available_providers()
        unknown = [p for p in context.providers if p not in available]
        if unknown:
            raise ConfigError(
                f"ONNX Runtime provider {', '.join(unknown)} is not in this onnxruntime build "
                f"(available: {', '.join(available)}); install the matching onnxruntime package"
            )
        assert context.graph is not None  # checked by create_backend
        options = ort.SessionOptions()
        options.intra_op_num_threads = context.threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._spinning = flag(context.options, "spinning", True)
        if not self._spinning:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._io_binding = flag(context.options, "io_binding", False)
        self.precision = precision
        self._path = context.graph
        self._threads = context.threads
        self._session = ort.InferenceSession(
            str(context.graph), sess_options=options, providers=list(context.providers)
        )
        self._outputs = [o.name for o in self._session.get_outputs()]
        self._version = ort.__version__

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._io_binding:
            binding = self._session.io_binding()
            for name, array in feeds.items():
                binding.bind_cpu_input(name, array)
            for name in self._outputs:
                binding.bind_output(name)
            self._session.run_with_iobinding(binding)
            results = binding.copy_outputs_to_cpu()
        else:
            results = self._session.run(self._outputs, feeds)
        return dict(zip(self._outputs, results, strict=True))

    def settings(self) -> dict[str, Any]:
        return {
            "threads": self._threads, "spinning": self._spinning, "io_binding": self._io_binding,
            "providers": self._session.get_providers(),
            "graph": self._path.name,
            "onnxruntime": self._version,
        }


def create(context: BackendContext, precision: str) -> OrtBackend:
    return OrtBackend(context, precision)
