from pathlib import Path

import numpy as np
import pytest

from encoderzoo.backends import BACKENDS, BackendContext, create_backend, parse_backends
from encoderzoo.checkpoints import load_model, resolve_checkpoint
from encoderzoo.devices import Machine
from encoderzoo.errors import ConfigError
from encoderzoo.export import export_onnx
from encoderzoo.families import get_family
from encoderzoo.features import Features
from encoderzoo.recipes import get_recipe
from encoderzoo.tasks import get_task
from tests.conftest import unpinned_python

SST2, BERT = get_task("sst2"), get_family("bert")


def test_parse_backends() -> None:
    assert parse_backends("torch") == [("torch", "fp32"), ("torch", "bf16")]  # its default precisions
    assert parse_backends(" onnxruntime:int8-static ") == [("onnxruntime", "int8-static")]
    assert [p for _, p in parse_backends("openvino")] == ["fp32", "bf16", "int8"]
    with pytest.raises(ConfigError, match="unknown backend 'tensorrt'; known backends: torch, onnxruntime"):
        parse_backends("tensorrt")
    with pytest.raises(ConfigError, match="has no precision 'int4'"):
        parse_backends("torch:int4")


@pytest.mark.parametrize(("option", "message"), [
    ("openvino.hint=fast", "openvino.hint='fast': use latency or throughput"),
    ("openvino.streams=two", "openvino.streams='two': use a whole number >= 1"),
    ("onnxruntime.spinning=maybe", "onnxruntime.spinning='maybe': use true or false"),
    ("onnxruntime.threads=2", "backend 'onnxruntime' has no option 'threads'"),
    ("openvino.int8_float=fp16", "openvino.int8_float='fp16': use fp32 or bf16"),
])
def test_backend_option_values_are_checked_when_read(option: str, message: str) -> None:
    from encoderzoo.backends import parse_backend_options

    with pytest.raises(ConfigError, match=message):
        parse_backend_options((option,))
    assert parse_backend_options(("openvino.hint=Throughput", "openvino.streams=2")) == {
        "openvino": {"hint": "throughput", "streams": "2"}}


@pytest.fixture(scope="module")
def context(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> BackendContext:
    checkpoint = resolve_checkpoint(str(tiny_bert), get_recipe("bert-base-cased-sst2"))
    ids = np.array([[101, 8667, 1362, 102, 0, 0], [101, 1109, 2523, 1110, 1363, 102]])
    arrays = {"input_ids": ids, "attention_mask": (ids > 0).astype(np.int64),
              "token_type_ids": np.zeros_like(ids)}
    features = Features(np.array(["a", "b"]), arrays, np.array([4, 6], np.int32))
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    export_onnx(load_model(checkpoint, SST2, attn_implementation="eager"), features, path,
                output_axes=SST2.output_axes)
    return BackendContext(checkpoint=checkpoint.source, auto_class=SST2.auto_class,
                          output_names=SST2.output_names, graph=path, threads=1)


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_every_backend_matches_torch(name: str, context: BackendContext) -> None:
    rng = np.random.default_rng(0)
    ids = rng.integers(1000, 28996, size=(5, 12))
    mask = np.ones_like(ids)
    mask[1, 7:] = 0
    feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    reference = create_backend("torch", "fp32", context).run(feeds)["logits"]
    backend = create_backend(name, BACKENDS[name].precisions[0], context)
    logits = backend.run(feeds)["logits"]
    assert logits.shape == (5, 2)
    np.testing.assert_allclose(logits, reference, atol=1e-4)
    assert backend.settings()["threads"] == 1


def test_onnxruntime_int8_block_stays_close_to_torch(context: BackendContext, tmp_path: Path) -> None:
    """Every constant-weight MatMul of the tiny model in blocks of int8, run by ONNX Runtime."""
    from dataclasses import replace

    import onnx

    from encoderzoo.quantize import ort_block

    rng = np.random.default_rng(3)
    ids = rng.integers(1000, 28996, size=(4, 12))
    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
    reference = create_backend("torch", "fp32", context).run(feeds)["logits"]
    assert context.graph is not None
    graph = onnx.load(str(context.graph)).graph
    weights = {i.name for i in graph.initializer}
    matmuls = sum(n.op_type == "MatMul" and n.input[1] in weights for n in graph.node)
    blocks = tmp_path / "model.int8-block.onnx"
    assert ort_block(context.graph, blocks)["matmuls_in_blocks"] == matmuls > 0
    backend = create_backend("onnxruntime", "int8-block", replace(context, graph=blocks))
    np.testing.assert_allclose(backend.run(feeds)["logits"], reference, atol=0.05)


def test_onnxruntime_providers_are_an_option(context: BackendContext) -> None:
    from dataclasses import replace

    backend = create_backend("onnxruntime", "fp32", replace(context, providers=("CPUExecutionProvider",)))
    assert backend.settings()["providers"] == ["CPUExecutionProvider"]
    with pytest.raises(ConfigError, match="CUDAExecutionProvider is not in this onnxruntime build"):
        create_backend("onnxruntime", "fp32", replace(context, providers=("CUDAExecutionProvider",)))


def test_onnx_backend_needs_an_export(context: BackendContext) -> None:
    from dataclasses import replace

    with pytest.raises(ConfigError, match="run `encoderzoo export` first"):
        create_backend("onnxruntime", "fp32", replace(context, graph=None))


@pytest.mark.parametrize("name", ["torch", "openvino"])
def test_bf16_stays_close_to_fp32(name: str, context: BackendContext) -> None:
    rng = np.random.default_rng(1)
    ids = rng.integers(1000, 28996, size=(4, 16))
    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
    reference = create_backend("torch", "fp32", context).run(feeds)["logits"]
    if name == "openvino" and not Machine.here("cpu").native_bf16:  # refused, in one line
        with pytest.raises(ConfigError, match=r"openvino:bf16: this CPU .* does not compute bfloat16"):
            create_backend(name, "bf16", context)
        return
    backend = create_backend(name, "bf16", context)  # torch emulates bf16 where the CPU lacks it
    np.testing.assert_allclose(backend.run(feeds)["logits"], reference, atol=0.05)
    assert backend.settings()["threads"] == 1


def test_openvino_int8_float_layers(context: BackendContext) -> None:
    """An int8 IR's float layers run in fp32 unless bf16 is asked for (bf16 gave wrong outputs on
    AMX CPUs); bf16 asked for on a CPU without it is refused."""
    from dataclasses import replace

    from encoderzoo.backends.openvino_backend import _int8_hint

    # any IR does for the setting: the float export is an int8 IR with every layer left in float
    assert create_backend("openvino", "int8", context).settings()["inference_precision"] == "f32"
    if Machine.here("cpu").native_bf16:
        asked = create_backend("openvino", "int8", replace(context, options={"int8_float": "bf16"}))
        assert asked.settings()["inference_precision"] == "bf16"
    assert _int8_hint({}, ["FP32", "BF16", "INT8"]) == "f32" and _int8_hint({}, ["FP32", "INT8"]) == "f32"
    assert _int8_hint({"int8_float": "bf16"}, ["FP32", "BF16", "INT8"]) == "bf16"
    with pytest.raises(ConfigError, match="int8_float=bf16 needs a CPU with bfloat16 support"):
        _int8_hint({"int8_float": "bf16"}, ["FP32", "INT8"])


def test_session_options_change_nothing_but_speed(context: BackendContext) -> None:
    from dataclasses import replace

    rng = np.random.default_rng(2)
    ids = rng.integers(1000, 28996, size=(3, 10))
    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
    plain = create_backend("onnxruntime", "fp32", context).run(feeds)["logits"]
    tuned = create_backend("onnxruntime", "fp32", replace(
        context, options={"io_binding": "true", "spinning": "false"}))
    np.testing.assert_array_equal(tuned.run(feeds)["logits"], plain)
    assert tuned.settings()["io_binding"] is True and tuned.settings()["spinning"] is False
    options = {"hint": "throughput", "streams": "1"}
    throughput = create_backend("openvino", "fp32", replace(context, options=options))
    np.testing.assert_allclose(throughput.run(feeds)["logits"], plain, atol=1e-4)
    assert throughput.settings()["performance_hint"] == "THROUGHPUT" and throughput.settings()["streams"] == 1


@pytest.mark.parametrize(("values", "message"), [
    (("onnxruntime.fast=1",), "backend 'onnxruntime' has no option 'fast'; its options: io_binding"),
    (("io_binding=true",), "--backend-option takes BACKEND.KEY=VALUE"),
    (("tensorrt.fp16=true",), "unknown backend 'tensorrt'"),
])
def test_backend_options_are_checked(values: tuple[str, ...], message: str) -> None:
    from encoderzoo.backends import parse_backend_options

    with pytest.raises(ConfigError, match=message):
        parse_backend_options(values)


def test_flag_values(context: BackendContext) -> None:
    from dataclasses import replace

    with pytest.raises(ConfigError, match="use true or false"):
        create_backend("onnxruntime", "fp32", replace(context, options={"io_binding": "maybe"}))


def test_openvino_async_dataset_path_matches_single_batches(context: BackendContext) -> None:
    from dataclasses import replace

    from encoderzoo.features import Batching, Features
    from encoderzoo.infer import run_inference

    rng = np.random.default_rng(3)
    lengths = rng.integers(3, 20, size=40)
    ids = np.zeros((40, 20), dtype=np.int64)
    for row, length in enumerate(lengths):
        ids[row, :length] = rng.integers(1000, 28996, size=length)
    mask = (ids > 0).astype(np.int64)
    arrays = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    features = Features(np.array([str(i) for i in range(40)]), arrays, lengths.astype(np.int32))
    queued = create_backend("openvino", "fp32", context)
    single = create_backend("openvino", "fp32", replace(context, options={"async": "false"}))
    got = run_inference(queued, features, Batching(8), progress=False)["logits"]
    want = run_inference(single, features, Batching(8), progress=False)["logits"]
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert queued.settings()["async_dataset_streams"] >= 1
    assert single.settings()["async_dataset_streams"] is None


def test_openvino_queues_long_requests_on_one_stream(context: BackendContext) -> None:
    """Each stream keeps its own activations: requests of 32 x 512 tokens go through one stream
    unless openvino.streams says otherwise (on two threads and every core: OpenVINO sizes its
    streams by the cores it may use)."""
    code = f"""
from dataclasses import replace
from pathlib import Path
from encoderzoo.backends import BackendContext, create_backend
from encoderzoo.backends.openvino_backend import LARGE_REQUEST
long = BackendContext(checkpoint={context.checkpoint!r}, auto_class={context.auto_class!r},
                      output_names={tuple(context.output_names)!r}, graph=Path({str(context.graph)!r}),
                      threads=2, batch_size=32, seq_len=LARGE_REQUEST // 32)
alone = create_backend("openvino", "fp32", long).settings()["async_dataset_streams"]
asked = create_backend("openvino", "fp32", replace(long, options={{"streams": "2"}}))
print("streams", alone, asked.settings()["async_dataset_streams"])
"""
    done = unpinned_python(code)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-3:] == ["streams", "1", "2"]
