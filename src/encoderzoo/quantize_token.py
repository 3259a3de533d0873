"""int8-token: every MatMul with a constant weight multiplied in int8, with its activations
quantized per row (token) at run time: each token's scale is its own largest magnitude / 127, so
that nothing is quantized across rows and a row's outputs never depend on the rows batched with
it (ONNX Runtime's dynamic int8 takes one scale over the whole batch, padding included).

Built from standard operators, which every ONNX Runtime build runs: per row Abs, ReduceMax, a
scale, Div, Round, +128 and a cast to uint8 (symmetric, so zero point 128 serves every row);
MatMulInteger with int8 weights (symmetric per output channel, 7 bits: see WEIGHT_LIMIT); the
int32 sums back to float, times the weight's and the row's scales. It is built from the
unfused export, where the attention's query, key and value projections are MatMuls too (the
fused Attention operator takes its weights as an input, which no per-token rewrite reaches).

Measured (all-MiniLM-L6-v2, 2,773 SST-2 and MNLI sentences, an AVX2 CPU without VNNI, 2 cores,
batches of 32, median of 3 interleaved rounds on a noisy machine):

| graph | sentences/s | cosine >= 0.98 with fp32 | mean | least | batch of 8 vs 32 |
|---|---:|---:|---:|---:|---:|
| fp32, fused | 227 | | | | 3e-8 |
| int8-token, from the unfused export | 297 | 99.60 % | 0.9950 | 0.973 | 4e-8 |
| int8-token, from the fused graph (Attention float) | 261 | 100 % | 0.9973 | 0.983 | 4e-8 |
| int8 per tensor (ONNX Runtime dynamic) | 308 | 98.23 % | 0.9906 | 0.959 | 6e-2 |

With 8-bit weights the unfused graph's embeddings fell to a mean cosine of 0.65 here (the
saturation WEIGHT_LIMIT avoids).

The attention's value projections stay float (found by structure: the constant-weight MatMul
behind the second input of the MatMul that multiplies the softmax's probabilities). A value's
error reaches the output unweighted, where a query's or key's is damped by the softmax: on the
texts above, all six of MiniLM's value projections in float took the least cosine from 0.973 to
0.984 and the mean from 0.9950 to 0.9972 (100 % of texts at 0.98), where the six query and key
pairs in float moved neither (0.970, 0.9951), nor did the feed-forward output projections (0.979,
0.9964) or layer 0 whole (0.971). Cost: 6 of 36 GEMMs, each 1/12 of a layer's weight FLOPs."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from encoderzoo.fileio import atomic_path

ZERO = 128  # uint8 zero point of every row: values in [-127, 127] land on [1, 255]
# Weights in 7 bits: where the CPU lacks VNNI, ONNX Runtime multiplies uint8 by int8 in pairs
# summed into int16, which saturates above 32,767 (255 x 127 x 2 = 64,770): measured, one
# 256-channel row lost 8 % of its output; with 63, 255 x 63 x 2 = 32,130 always fits. Kept for
# every CPU, so that an artifact built on one machine is right on any other.
WEIGHT_LIMIT = 63


def float_weights(graph: Any) -> dict[str, Any]:
    """The 2-D float initializers by name, left as stored (only MatMul weights get converted)."""
    from onnx import TensorProto

    return {i.name: i for i in graph.initializer if i.data_type == TensorProto.FLOAT and len(i.dims) == 2}


PASS_THROUGH = {"Add", "Reshape", "Transpose", "Cast", "Identity", "Dropout", "Where", "Mul", "Div"}


def value_projections(graph: Any, weights: dict[str, Any]) -> list[str]:
    """The constant-weight MatMuls that make the attention's values: walking back from the second
    input of each MatMul whose first input comes from a Softmax (through reshapes, transposes, a
    bias Add, casts and masks), the first MatMul with a weight in `weights`. A fused QKV projection
    (one MatMul, then Split or Slice) is not separated: the walk stops there and finds nothing."""
    made_by = {out: node for node in graph.node for out in node.output}

    def back(name: str, accept: Any, hops: int = 6) -> Any:
        node = made_by.get(name)
        if node is None or hops == 0:
            return None
        if accept(node):
            return node
        if node.op_type not in PASS_THROUGH:
            return None
        return next((n for n in (back(i, accept, hops - 1) for i in node.input) if n is not None), None)

    found = []
    for node in graph.node:
        if node.op_type != "MatMul" or len(node.input) < 2 or node.input[1] in weights:
            continue
        if back(node.input[0], lambda n: n.op_type == "Softmax") is None:
            continue
        value = back(node.input[1], lambda n: n.op_type == "MatMul" and n.input[1] in weights)
        if value is not None and value.name not in found:
            found.append(value.name)
    return found


def _rewrite(node: Any, weight: np.ndarray, opset: int, index: int) -> tuple[list[Any], list[Any]]:
    """The nodes and initializers that replace MatMul `node` (x @ weight)."""
    from onnx import TensorProto, helper, numpy_helper

    p = f"{node.name or node.output[0]}/int8_token"  # never "<name>_MatMul...": see triage.rank_nodes
    scales = np.maximum(np.abs(weight).max(axis=0), np.float32(1e-30)) / np.float32(WEIGHT_LIMIT)
    quantized = np.clip(np.round(weight / scales), -WEIGHT_LIMIT, WEIGHT_LIMIT).astype(np.int8)
    consts = {"w": quantized, "w_scale": scales.astype(np.float32), "floor": np.array(1e-30, np.float32),
              "inv127": np.array(1 / 127, np.float32), "zero": np.array(ZERO, np.uint8),
              "shift": np.array(float(ZERO), np.float32)}
    names = {k: f"{p}/{k}_{index}" for k in consts}
    inits = [numpy_helper.from_array(v, names[k]) for k, v in consts.items()]
    x, t = node.input[0], lambda s: f"{p}/{s}_{index}"
    if opset >= 18:
        axes = numpy_helper.from_array(np.array([-1], np.int64), t("axes"))
        inits.append(axes)
        reduce = helper.make_node("ReduceMax", [t("abs"), axes.name], [t("max")], t("ReduceMax"), keepdims=1)
    else:
        reduce = helper.make_node("ReduceMax", [t("abs")], [t("max")], t("ReduceMax"), axes=[-1], keepdims=1)
    nodes = [
        helper.make_node("Abs", [x], [t("abs")], t("Abs")), reduce,
        helper.make_node("Max", [t("max"), names["floor"]], [t("range")], t("Max")),
        helper.make_node("Mul", [t("range"), names["inv127"]], [t("scale")], t("RowScale")),
        helper.make_node("Div", [x, t("scale")], [t("scaled")], t("Div")),
        helper.make_node("Round", [t("scaled")], [t("rounded")], t("Round")),
        helper.make_node("Add", [t("rounded"), names["shift"]], [t("shifted")], t("Shift")),
        helper.make_node("Cast", [t("shifted")], [t("q")], t("ToUint8"), to=TensorProto.UINT8),
        helper.make_node("MatMulInteger", [t("q"), names["w"], names["zero"]], [t("sums")], t("Int8")),
        helper.make_node("Cast", [t("sums")], [t("float")], t("ToFloat"), to=TensorProto.FLOAT),
        helper.make_node("Mul", [t("float"), names["w_scale"]], [t("columns")], t("WeightScale")),
        helper.make_node("Mul", [t("columns"), t("scale")], [node.output[0]], t("Scale")),
    ]
    return nodes, inits


def ort_token(src: Path, dst: Path, *, calibration: Any = None, exclude: Sequence[str] = ()
              ) -> dict[str, Any]:
    """`src` with every MatMul of a constant 2-D float weight (but `exclude`) in per-token int8."""
    import onnx
    from onnx import numpy_helper

    start = time.perf_counter()
    model = onnx.load(str(src))
    graph = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 17)
    weights = float_weights(graph)
    values = value_projections(graph, weights)
    skip = set(exclude) | set(values)
    nodes: list[Any] = []
    added: list[Any] = []
    done = 0
    for node in graph.node:
        if node.op_type != "MatMul" or node.input[1] not in weights or node.name in skip:
            nodes.append(node)
            continue
        made, inits = _rewrite(node, numpy_helper.to_array(weights[node.input[1]]), opset, done)
        nodes += made
        added += inits
        done += 1
    used = {i for node in nodes for i in node.input}
    kept = [i for i in graph.initializer if i.name in used]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.initializer[:]
    graph.initializer.extend([*kept, *added])
    with atomic_path(dst) as tmp:
        onnx.save(model, str(tmp))
    return {"method": f"int8 per token: MatMulInteger with int8 weights per output channel (range "
                      f"±{WEIGHT_LIMIT}), each token's activations quantized at run time with its own scale",
            "source": Path(src).name, "matmuls_by_token": done, "excluded_nodes": list(exclude),
            "value_projections_in_float": values,
            "seconds": round(time.perf_counter() - start, 2)}
