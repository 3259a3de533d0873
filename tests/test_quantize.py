"""Quantization methods on small graphs built with onnx.helper."""

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from encoderzoo import quantize


def matmul_graph(path: Path) -> Path:
    weight = numpy_helper.from_array(np.eye(4, dtype=np.float32), "W")
    graph = helper.make_graph([helper.make_node("MatMul", ["X", "W"], ["Y"], name="mm")], "mm",
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["n", 4])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["n", 4])], [weight])
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


def wide_matmul_graph(path: Path, k: int = 256) -> Path:
    weight = numpy_helper.from_array(np.random.default_rng(0).standard_normal((k, 8)).astype(np.float32), "W")
    graph = helper.make_graph([helper.make_node("MatMul", ["X", "W"], ["Y"], name="mm")], "mm",
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["n", k])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["n", 8])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_blocks_keep_small_rows_beside_an_outlier(tmp_path: Path) -> None:
    """int8-block quantizes activations per block of each row: a row of small values keeps its
    precision beside a row holding an outlier, which per-tensor dynamic quantization rounds to 0."""
    import onnxruntime as ort

    src = wide_matmul_graph(tmp_path / "mm.onnx")
    x = np.full((2, 256), 0.01, dtype=np.float32)
    x[0, 0] = 1000.0
    expected = x @ numpy_helper.to_array(onnx.load(str(src)).graph.initializer[0])

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
