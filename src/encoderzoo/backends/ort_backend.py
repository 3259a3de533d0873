"""ONNX Runtime over the exported (fused) graph, on the CPU or, when a GPU is in use, through the
CUDA or TensorRT execution providers (see encoderzoo.devices). With IO binding on CUDA the
inputs are copied to the device once per batch and the outputs stay there until read."""

from __future__ import annotations

from typing import Any

import numpy as np

from encoderzoo.backends.base import BackendContext, flag
from encoderzoo.console import step
from encoderzoo.devices import choose_providers, fallen_back, provider_options
from encoderzoo.errors import ConfigError


class OrtBackend:
    name = "onnxruntime"

    def __init__(self, context: BackendContext, precision: str) -> None:
        import onnxruntime as ort

        assert context.graph is not None  # checked by create_backend
        providers, note = choose_providers(context.device, context.providers, ort.get_available_providers(),
                                           explicit_device=context.explicit_device)
        if note:
            step(f"onnxruntime: {note}")
        self._device = "cuda" if any(p != "CPUExecutionProvider" for p in providers) else "cpu"
        options = ort.SessionOptions()
        options.intra_op_num_threads = context.threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._spinning = flag(context.options, "spinning", True)
        if not self._spinning:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._io_binding = flag(context.options, "io_binding", self._device == "cuda")
        self.precision = precision
        self._path = context.graph
        self._threads = context.threads
        self._session = ort.InferenceSession(
            str(context.graph), sess_options=options, providers=providers,
            provider_options=[provider_options(
                p, precision=precision, input_names=context.input_names,
                batch_size=context.batch_size, seq_len=context.seq_len, buckets=context.buckets,
                cache_dir=context.cache_dir, graph_hash=context.graph_hash, row=context.row_shape)
                for p in providers],
        )
        lost = fallen_back(providers, self._session.get_providers())
        if lost:
            message = (f"ONNX Runtime could not start {', '.join(lost)} (CUDA, cuDNN or TensorRT libraries "
                       "missing or not matching this onnxruntime-gpu build)")
            if context.explicit_device or context.providers:
                raise ConfigError(f"{message}; fix the libraries, or run with --device cpu")
            step(f"onnxruntime: {message}; running on {', '.join(self._session.get_providers())}")
            self._device = "cpu"
            self._io_binding = flag(context.options, "io_binding", False)
        self._outputs = [o.name for o in self._session.get_outputs()]
        self._ort = ort
        self._version = ort.__version__

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if not self._io_binding:
            return dict(zip(self._outputs, self._session.run(self._outputs, feeds), strict=True))
        binding = self._session.io_binding()
        if self._device == "cuda":  # inputs to the GPU once; outputs allocated there
            for name, array in feeds.items():
                binding.bind_ortvalue_input(name, self._ort.OrtValue.ortvalue_from_numpy(array, "cuda", 0))
            for name in self._outputs:
                binding.bind_output(name, "cuda", 0)
        else:
            for name, array in feeds.items():
                binding.bind_cpu_input(name, array)
            for name in self._outputs:
                binding.bind_output(name)
        self._session.run_with_iobinding(binding)
        return dict(zip(self._outputs, binding.copy_outputs_to_cpu(), strict=True))

    def settings(self) -> dict[str, Any]:
        return {
            "threads": self._threads, "spinning": self._spinning, "io_binding": self._io_binding,
            "device": self._device, "providers": self._session.get_providers(),
            "graph": self._path.name,
            "onnxruntime": self._version,
        }


def create(context: BackendContext, precision: str) -> OrtBackend:
    return OrtBackend(context, precision)
