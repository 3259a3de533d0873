"""OpenVINO on the CPU. fp32 and bf16 run the unfused ONNX export with that inference
precision (OpenVINO's own default is bf16 on CPUs that have it, so fp32 is asked for
explicitly); int8 runs the NNCF-quantized IR, the layers NNCF leaves in float (attention's
softmax, layer norms, GELU, the smoothing multiplies) in fp32 unless bf16 is asked for
(--backend-option openvino.int8_float=bf16). bf16 there is OpenVINO's own default on CPUs with AMX,
and was ours where the CPU computes bf16; on a Xeon with AMX (OpenVINO 2026.4.1) it gave wrong
outputs for some rows run at their own width: the demo's sentence 441 alone read logits
(-0.12, 0.16) where fp32's are (0.95, -0.92), and 5 of its 872 labels changed with margins up to 5.3
(no gate over the batched run sees that); a tiny model's int8-token IR over two streams read
logits of 1,300 where fp32 read 0.02; all-MiniLM-L6-v2's int8 IR agreed with torch on 81 % of the
embed test's sentences (fp32 layers: its gate passed). In fp32 the same IR ran the demo
as fast there (1,526 and 1,451 rows/s against 1,432 and 1,628, alternating runs), and on a Zen 5
bf16 had been worth 2 % on bert-base 32 x 128 and 14 % on a MiniLM QA model at 256 tokens.

Two compiled forms: single batches (`run`, what the benchmark times) go through one request
with the latency hint, compiled on first use; a whole dataset (`run_all`) goes through an
asynchronous queue over the throughput hint's parallel streams, compiled at once (measured
here: about 20 % more sentences per second on 2 cores) — one stream when a request can hold
LARGE_REQUEST tokens or more: each stream keeps its own activations (base BERT, batches of 32
at 512 tokens: 3.7 GB with 2 streams, 2.8 GB with 1, equally fast, the GEMMs being large enough
for one stream to use every core)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from encoderzoo.backends.base import BackendContext, flag
from encoderzoo.errors import ConfigError

HINTS = {"fp32": "f32", "bf16": "bf16"}  # int8: the option int8_float's, see _int8_hint
# int8-token: channels of a token per activation scale (OpenVINO's dynamic quantization), measured
# on all-MiniLM-L6-v2 over the embeddings race's 2,872 texts, 2 cores of a Zen 5 (texts/s, least
# cosine with fp32): 32: 1,080, 0.9956; 128: 1,214, 0.9917; 384: 1,248, 0.9807; fp32 659
DYNAMIC_GROUP = 128
LARGE_REQUEST = 16384  # tokens per request (batch x sequence), e.g. 32 x 512


class OpenVinoBackend:
    name = "openvino"

    def __init__(self, context: BackendContext, precision: str) -> None:
        import openvino as ov

        self._core = ov.Core()
        capabilities = self._core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
        if precision == "bf16":
            _needs_bf16(capabilities, "openvino:bf16", "openvino:fp32 or openvino:int8")
        hint = context.options.get("hint", "latency").upper()  # checked by the backend's Option
        assert context.graph is not None  # checked by create_backend
        self.precision = precision
        self._ov = ov
        self._model = self._core.read_model(str(context.graph))
        inference = HINTS.get(precision) or _int8_hint(context.options, capabilities)
        self._config = {"INFERENCE_PRECISION_HINT": inference,
                        "INFERENCE_NUM_THREADS": context.threads, "PERFORMANCE_HINT": hint}
        if precision == "int8-token":
            self._config["DYNAMIC_QUANTIZATION_GROUP_SIZE"] = dynamic_group(self._model)
        if "streams" in context.options:
            self._config["NUM_STREAMS"] = int(context.options["streams"])
        self._async = flag(context.options, "async", True) and not context.batches_only
        self._graph = context.graph.name
        self._wanted = context.output_names
        self._request: Any = None
        self._queue: Any = None
        if self._async:  # compiled now, so that timing a dataset pass does not include it
            queue_config = self._config | {"PERFORMANCE_HINT": "THROUGHPUT"}
            if "NUM_STREAMS" not in queue_config and context.batch_size * context.seq_len >= LARGE_REQUEST:
                queue_config["NUM_STREAMS"] = 1
            compiled = self._compile(queue_config)
            self._streams = int(compiled.get_property("NUM_STREAMS"))
            self._queue = self._ov.AsyncInferQueue(compiled, self._streams)
            self._queue_outputs = [self._name(port) for port in compiled.outputs]

    def _name(self, port: Any) -> str:
        """The output's name as the graph declares it: a tensor carries every name it was given
        (OpenVINO can merge a graph output with the MatMul that makes it, and get_any_name()
        then returns "/model/classifier/MatMul_output_0" for "logits")."""
        names = port.get_names()
        return next((n for n in self._wanted if n in names), port.get_any_name())

    def _compile(self, config: dict[str, Any]) -> Any:
        return self._core.compile_model(self._model, "CPU", config)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._request is None:
            self._compiled = self._compile(self._config)
            self._request = self._compiled.create_infer_request()
            self._outputs = [(port, self._name(port)) for port in self._compiled.outputs]
        results = self._request.infer(feeds)
        return {name: np.asarray(results[port]) for port, name in self._outputs}

    def run_all(self, batches: Iterable[tuple[np.ndarray, dict[str, np.ndarray]]],
                sink: Callable[[np.ndarray, dict[str, np.ndarray]], None]) -> None:
        """Every batch, several at a time; `sink(rows, outputs)` receives each one's outputs."""
        if not self._async:
            for rows, feeds in batches:
                sink(rows, self.run(feeds))
            return

        def done(request: Any, rows: np.ndarray) -> None:
            sink(rows, {name: request.get_output_tensor(i).data.copy()
                        for i, name in enumerate(self._queue_outputs)})

        self._queue.set_callback(done)
        try:
            for rows, feeds in batches:
                self._queue.start_async(feeds, rows)
            self._queue.wait_all()
        finally:
            self._queue.set_callback(_ignore)  # `done` holds this backend: no cycle through C++

    @property
    def parallel(self) -> int:
        """Batches `run_all` runs at once (its throughput streams, each with a share of the
        threads): fewer than that run one at a time with every thread (`run`, the latency hint)."""
        return self._streams if self._async else 1

    def close(self) -> None:
        """Free the compiled models now, on this thread. (Left to the garbage collector, the
        queue could be destroyed on one of its own worker threads, which aborts the process.)"""
        self._queue = self._request = self._compiled = None
        self._model = None

    def settings(self) -> dict[str, Any]:
        settings = {"threads": self._config["INFERENCE_NUM_THREADS"], "graph": self._graph,
                    "inference_precision": self._config["INFERENCE_PRECISION_HINT"],
                    "performance_hint": self._config["PERFORMANCE_HINT"],
                    "async_dataset_streams": self._streams if self._async else None,
                    "openvino": self._ov.get_version()}
        if "DYNAMIC_QUANTIZATION_GROUP_SIZE" in self._config:  # int8-token
            settings["activation_group"] = self._config["DYNAMIC_QUANTIZATION_GROUP_SIZE"]
        if self._request is not None:
            settings["streams"] = self._compiled.get_property("NUM_STREAMS")
        return settings


def dynamic_group(model: Any) -> int:
    """Channels per activation scale for an int8-token IR: DYNAMIC_GROUP, or less where a weight
    MatMul reads fewer input channels (the plugin quantizes no MatMul narrower than the group)."""
    widths = []
    for op in model.get_ops():
        if op.get_type_name() == "MatMul" and _int8_weight(op.input_value(1).get_node()):
            shape = op.input(1).get_partial_shape()  # the weight: (in, out), or (out, in) transposed
            width = shape[len(shape) - 1 if op.get_transpose_b() else len(shape) - 2]
            widths += [width.get_length()] if width.is_static else []
    narrowest = min(widths, default=DYNAMIC_GROUP)
    return min(DYNAMIC_GROUP, 1 << max(narrowest.bit_length() - 1, 4))


def _int8_weight(node: Any) -> bool:
    """Whether a MatMul input comes from an int8 constant (through its decompression: Convert,
    Subtract, Multiply, Reshape, Transpose)."""
    import openvino as ov

    for _ in range(8):
        if node.get_type_name() == "Constant":
            return bool(node.get_element_type() == ov.Type.i8)
        if node.get_type_name() not in ("Convert", "Subtract", "Multiply", "Reshape", "Transpose"):
            return False
        node = node.input_value(0).get_node()
    return False


def _int8_hint(options: dict[str, str], capabilities: list[str]) -> str:
    """The inference precision of an int8 IR's float layers: int8_float's, fp32 unless asked."""
    if options.get("int8_float", "fp32") == "bf16":
        _needs_bf16(capabilities, "openvino.int8_float=bf16", "openvino.int8_float=fp32")
        return "bf16"
    return "f32"


def _needs_bf16(capabilities: list[str], asked: str, instead: str) -> None:
    if "BF16" not in capabilities:
        raise ConfigError(f"{asked} needs a CPU with bfloat16 support (this one has "
                          f"{', '.join(capabilities)}); use {instead}")


def _ignore(request: Any, userdata: Any) -> None:
    """The callback a finished queue keeps: it holds nothing."""


def create(context: BackendContext, precision: str) -> OpenVinoBackend:
    return OpenVinoBackend(context, precision)
