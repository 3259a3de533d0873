"""OpenVINO on the CPU. fp32 and bf16 run the unfused ONNX export with that inference
precision (OpenVINO's own default is bf16 on CPUs that have it, so fp32 is asked for
explicitly); int8 runs the NNCF-quantized IR."""

from __future__ import annotations

from typing import Any

import numpy as np

from encoderzoo.backends.base import BackendContext
from encoderzoo.errors import ConfigError

HINTS = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}  # int8 layers stay int8; the rest float32


class OpenVinoBackend:
    name = "openvino"

    def __init__(self, context: BackendContext, precision: str) -> None:
        import openvino as ov

        core = ov.Core()
        capabilities = core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
        if precision == "bf16" and "BF16" not in capabilities:
            raise ConfigError(f"openvino:bf16 needs a CPU with bfloat16 support (this one has "
                              f"{', '.join(capabilities)}); use openvino:fp32 or openvino:int8")
        assert context.graph is not None  # checked by create_backend
        self.precision = precision
        hint = context.options.get("hint", "latency").upper()
        if hint not in ("LATENCY", "THROUGHPUT"):
            raise ConfigError(f"openvino.hint={hint.lower()!r}: use latency or throughput")
        self._config = {"INFERENCE_PRECISION_HINT": HINTS[precision],
                        "INFERENCE_NUM_THREADS": context.threads, "PERFORMANCE_HINT": hint}
        if "streams" in context.options:
            self._config["NUM_STREAMS"] = int(context.options["streams"])
        self._compiled = core.compile_model(core.read_model(str(context.graph)), "CPU", self._config)
        self._request = self._compiled.create_infer_request()
        self._outputs = [(port, port.get_any_name()) for port in self._compiled.outputs]
        self._graph = context.graph.name
        self._version = ov.get_version()

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        results = self._request.infer(feeds)
        return {name: np.asarray(results[port]) for port, name in self._outputs}

    def settings(self) -> dict[str, Any]:
        return {"threads": self._config["INFERENCE_NUM_THREADS"], "graph": self._graph,
                "inference_precision": self._config["INFERENCE_PRECISION_HINT"],
                "performance_hint": self._config["PERFORMANCE_HINT"],
                "streams": self._compiled.get_property("NUM_STREAMS"), "openvino": self._version}


def create(context: BackendContext, precision: str) -> OpenVinoBackend:
    return OpenVinoBackend(context, precision)
