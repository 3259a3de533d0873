"""Quantization methods on small graphs built with onnx.helper."""

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from encoderzoo import quantize


def matmul_graph(path: Path, weight: np.ndarray | None = None) -> Path:
    """Y = X @ W, the identity of 4 unless `weight` is given."""
    weight = np.eye(4, dtype=np.float32) if weight is None else weight
    graph = helper.make_graph([helper.make_node("MatMul", ["X", "W"], ["Y"], name="mm")], "mm",
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["n", weight.shape[0]])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["n", weight.shape[1]])],
                              [numpy_helper.from_array(weight, "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_static_ranges_cover_every_calibration_row(tmp_path: Path) -> None:
    """The largest activation is in the first of 20 items: the input's scale must cover it.
    (onnxruntime's CalibMaxIntermediateOutputs drops every full group of items unmerged, which
    left 8 synthetic rows with no data at all and the demo's 100 rows ranged on the last 4.)"""
    feeds = [{"X": np.full((1, 4), 0.1 * (i + 1), dtype=np.float32)} for i in range(20)]
    feeds[0]["X"][0, 0] = 100.0
    out = tmp_path / "mm.int8.onnx"
    record = quantize.ort_static(matmul_graph(tmp_path / "mm.onnx"), out, calibration=feeds)
    assert record["calibration_rows"] == 20
    model = onnx.load(str(out))
    scales = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    quantizer = next(n for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == "X")
    assert float(scales[quantizer.input[1]]) >= 100.0 / 255 * 0.99


def test_blocks_keep_small_rows_beside_an_outlier(tmp_path: Path) -> None:
    """int8-block quantizes activations per block of each row: a row of small values keeps its
    precision beside a row holding an outlier, which per-tensor dynamic quantization rounds to 0."""
    import onnxruntime as ort

    weight = np.random.default_rng(0).standard_normal((256, 8)).astype(np.float32)
    src = matmul_graph(tmp_path / "mm.onnx", weight)
    x = np.full((2, 256), 0.01, dtype=np.float32)
    x[0, 0] = 1000.0
    expected = x @ weight

    def relative_error_of_small_row(path: Path) -> float:
        y = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"X": x})[0]
        return float(np.abs(y[1] - expected[1]).max() / np.abs(expected[1]).max())

    record = quantize.ort_block(src, tmp_path / "mm.int8-block.onnx")
    assert record["matmuls_in_blocks"] == 1
    assert [n.op_type for n in onnx.load(str(tmp_path / "mm.int8-block.onnx")).graph.node] == ["MatMulNBits"]
    assert relative_error_of_small_row(tmp_path / "mm.int8-block.onnx") < 0.02
    quantize.ort_dynamic(src, tmp_path / "mm.int8.onnx")
    assert relative_error_of_small_row(tmp_path / "mm.int8.onnx") > 0.5
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # its scratch folder removed

    kept = quantize.ort_block(src, tmp_path / "kept.onnx", exclude=["mm"])
    assert kept["matmuls_in_blocks"] == 0 and kept["excluded_nodes"] == ["mm"]
    assert [n.op_type for n in onnx.load(str(tmp_path / "kept.onnx")).graph.node] == ["MatMul"]


def test_tokens_keep_small_rows_beside_an_outlier_and_each_row_is_its_own(tmp_path: Path) -> None:
    """int8-token quantizes each row with its own scale: a row of small values keeps its
    precision beside a row holding an outlier, and gives the same output alone as beside it."""
    import onnxruntime as ort

    from encoderzoo.quantize_token import ort_token

    weight = np.random.default_rng(0).standard_normal((256, 8)).astype(np.float32)
    src = matmul_graph(tmp_path / "mm.onnx", weight)
    x = np.random.default_rng(1).uniform(-0.01, 0.01, (2, 256)).astype(np.float32)
    x[0, 0] = 1000.0
    expected = x @ weight
    record = ort_token(src, tmp_path / "mm.int8-token.onnx")
    assert record["matmuls_by_token"] == 1
    model = onnx.load(str(tmp_path / "mm.int8-token.onnx"))
    assert "MatMulInteger" in [n.op_type for n in model.graph.node] and "MatMul" not in [
        n.op_type for n in model.graph.node]
    assert "W" not in {i.name for i in model.graph.initializer}  # the float weight is not carried along
    session = ort.InferenceSession(str(tmp_path / "mm.int8-token.onnx"), providers=["CPUExecutionProvider"])
    both = session.run(None, {"X": x})[0]
    errors = np.abs(both - expected).max(axis=1) / np.abs(expected).max(axis=1)
    assert errors.max() < 0.02, errors
    np.testing.assert_array_equal(session.run(None, {"X": x[1:]})[0][0], both[1])  # alone = beside

    kept = ort_token(src, tmp_path / "kept.onnx", exclude=["mm"])
    assert kept["matmuls_by_token"] == 0 and kept["excluded_nodes"] == ["mm"]
    assert [n.op_type for n in onnx.load(str(tmp_path / "kept.onnx")).graph.node] == ["MatMul"]


def attention_graph(path: Path, dim: int = 16) -> Path:
    """One attention head: softmax(X Wq (X Wk)^T) (X Wv + b) Wo, every weight a constant."""
    rng = np.random.default_rng(2)
    weights = {k: rng.standard_normal((dim, dim)).astype(np.float32) / 4 for k in ("Wq", "Wk", "Wv", "Wo")}
    weights["Wq"] /= 4  # scores of a few units, as in a trained model (not a one-hot softmax)
    node = helper.make_node
    nodes = [node("MatMul", ["X", "Wq"], ["q"], name="query"), node("MatMul", ["X", "Wk"], ["k"], name="key"),
             node("MatMul", ["X", "Wv"], ["v0"], name="value"), node("Add", ["b", "v0"], ["v"], name="bias"),
             node("Transpose", ["k"], ["kt"], name="kt", perm=[1, 0]),
             node("MatMul", ["q", "kt"], ["scores"], name="scores"),
             node("Softmax", ["scores"], ["probs"], name="softmax", axis=-1),
             node("MatMul", ["probs", "v"], ["context"], name="context"),
             node("MatMul", ["context", "Wo"], ["Y"], name="output")]
    inits = [numpy_helper.from_array(w, k) for k, w in weights.items()]
    inits.append(numpy_helper.from_array(np.full(dim, 0.1, np.float32), "b"))
    graph = helper.make_graph(nodes, "attention",
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["n", dim])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["n", dim])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_tokens_leave_the_attentions_value_projection_in_float(tmp_path: Path) -> None:
    """The value projection (behind the MatMul that multiplies the softmax's probabilities) stays a
    float MatMul; the query, key and output projections become per-token int8."""
    import onnxruntime as ort

    from encoderzoo.quantize_token import ort_token

    src = attention_graph(tmp_path / "attention.onnx")
    record = ort_token(src, tmp_path / "attention.int8-token.onnx")
    assert record["value_projections_in_float"] == ["value"] and record["matmuls_by_token"] == 3
    model = onnx.load(str(tmp_path / "attention.int8-token.onnx"))
    float_matmuls = {n.name: list(n.input) for n in model.graph.node if n.op_type == "MatMul"}
    assert float_matmuls.keys() == {"value", "scores", "context"} and float_matmuls["value"][1] == "Wv"
    assert sum(n.op_type == "MatMulInteger" for n in model.graph.node) == 3
    x = np.random.default_rng(3).standard_normal((5, 16)).astype(np.float32)
    expected, got = (ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"X": x})[0]
                     for p in (src, tmp_path / "attention.int8-token.onnx"))
    assert np.abs(got - expected).max() < 0.05 * np.abs(expected).max()


def test_openvino_int8_token_quantizes_each_token_on_its_own(tmp_path: Path) -> None:
    """openvino:int8-token: int8 weights in the IR, and the backend turns on the CPU plugin's
    dynamic quantization, each token's activations with their own scales: a row of small values
    keeps its precision beside a row holding an outlier, and gives the same output alone; without
    the plugin's quantization (group 0) the outputs differ, so the activations really are int8."""
    import openvino as ov

    from encoderzoo.backends.base import BackendContext
    from encoderzoo.backends.openvino_backend import OpenVinoBackend, dynamic_group

    weight = np.random.default_rng(0).standard_normal((256, 8)).astype(np.float32)
    x = np.random.default_rng(1).uniform(-0.01, 0.01, (2, 256)).astype(np.float32)
    x[0, 0] = 1000.0
    expected = x @ weight
    ir = tmp_path / "mm.xml"
    record = quantize.openvino_int8_token(matmul_graph(tmp_path / "mm.onnx", weight), ir)
    assert record["excluded_nodes"] == [] and ir.with_suffix(".bin").is_file()
    model = ov.Core().read_model(str(ir))
    assert any(op.get_type_name() == "Constant" and op.get_element_type() == ov.Type.i8
               for op in model.get_ops())
    assert dynamic_group(model) == 128
    context = BackendContext(checkpoint="", auto_class="", output_names=("Y",), graph=ir, threads=1,
                             options={"async": "false", "int8_float": "fp32"})
    backend = OpenVinoBackend(context, "int8-token")
    assert backend.settings()["activation_group"] == 128  # what the run records
    both = backend.run({"X": x})["Y"]
    errors = np.abs(both - expected).max(axis=1) / np.abs(expected).max(axis=1)
    assert errors.max() < 0.02, errors
    np.testing.assert_allclose(backend.run({"X": x[1:]})["Y"][0], both[1], rtol=1e-6)  # alone = beside
    backend.close()
    unquantized = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32",
                                                        "DYNAMIC_QUANTIZATION_GROUP_SIZE": 0})({"X": x})[0]
    cpu = Path("/proc/cpuinfo")
    if cpu.is_file() and {"avx512_vnni", "avx_vnni"} & set(cpu.read_text().split()):
        # measured on a Zen 5 (AVX-512 VNNI); a CPU without VNNI may keep the activations float
        assert np.abs(both - unquantized).max() > 1e-6 * np.abs(unquantized).max()

    narrow = quantize.openvino_int8_token(matmul_graph(tmp_path / "narrow.onnx", weight[:48]),
                                          tmp_path / "n.xml")
    assert narrow and dynamic_group(ov.Core().read_model(str(tmp_path / "n.xml"))) == 32  # 48 wide: 32
    float_ir = ov.Core().read_model(str(tmp_path / "mm.onnx"))
    assert dynamic_group(float_ir) == 128  # no int8 weight: nothing narrows it
