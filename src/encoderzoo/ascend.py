"""The Ascend hand-off: the ONNX graph ATC should get and the exact commands that convert it
(`atc`, one OM model per batch size), run it over the per-sample files of `prepare --format bin`
(`ais_bench` at every batch size, `msame` at batch 1) and score what they wrote
(`encoderzoo score --outputs`).

Every name, order, dtype and shape in the commands comes from the record `prepare --format bin`
wrote (bin.json), and the graph is rewritten to declare exactly those: each input fixed to the
prepared shape but for the batch, and typed as the files are (int32 files: the graph takes int32
and casts). ATC reads ONNX opsets 9 to 18 (CANN 7.0+: "ONNX 1.12.0, opset v9 to v18") and only
the standard domain: the plain export goes, never the fused graph (its com.microsoft operators
are ONNX Runtime's own)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from encoderzoo.cache import file_hash
from encoderzoo.errors import ArtifactError, ConfigError
from encoderzoo.fileio import atomic_dir, write_json

KIND = "ascend-handoff"  # the marker of the folder
ATC_OPSETS = range(9, 19)  # CANN 7.0+: ONNX 1.12, opset v9 to v18
# CANN 8.0's "Supported ONNX Operators" (AI framework operator list, Atlas inference series), as ONNX
# names them; a graph with another operator is still written, and the operator named.
_ATC_LISTED = """
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization BitShift
BitwiseAnd BitwiseNot BitwiseOr BitwiseXor Cast Ceil Celu Clip Compress Concat Constant ConstantOfShape Conv
ConvTranspose Cos Cosh CumSum DepthToSpace Det Div Dropout Einsum Elu Equal Erf Exp Expand EyeLike Flatten
Floor Gather GatherElements GatherND Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool Greater GreaterOrEqual
GridSample GRU Hardmax HardSigmoid HardSwish Identity If InstanceNormalization IsInf IsNaN LayerNormalization
LeakyRelu Less LessOrEqual Log LogSoftmax LpNormalization LpPool LRN LSTM MatMul Max MaxPool MaxRoiPool
MaxUnpool Mean MeanVarianceNormalization Min Mod Mul Multinomial Neg NonMaxSuppression NonZero Not OneHot Or
Pad Pow RandomNormal RandomNormalLike RandomUniform RandomUniformLike Range Reciprocal ReduceL1 ReduceL2
ReduceLogSum ReduceLogSumExp ReduceMean ReduceMin ReduceProd ReduceSumSquare ReduceSum ReduceMax Relu Reshape
Resize ReverseSequence RoiAlign Round PRelu Scatter ScatterElements ScatterND Selu Shape Shrink Sigmoid Sign
Sin Sinh Size Slice Softmax SoftmaxCrossEntropyLoss Softplus Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum
Tan Tanh TfIdfVectorizer ThresholdedRelu Tile TopK Transpose Trilu Unsqueeze Where Xor
"""
ATC_OPERATORS = frozenset(_ATC_LISTED.split())


def graph_inputs(model: Any) -> list[str]:
    initializers = {i.name for i in model.graph.initializer}
    return [i.name for i in model.graph.input if i.name not in initializers]


def check_operators(model: Any, path: Path) -> list[str]:
    """Refuse what ATC cannot read (another domain, an opset out of range; the opset is converted
    when it can be); return the operators missing from ATC's documented list."""
    domains = sorted({n.domain for n in model.graph.node if n.domain not in ("", "ai.onnx")})
    if domains:
        raise ArtifactError(f"{path}: operators of domain {domains[0]!r}, which ATC does not read; "
                            "hand ATC the plain export (model/model.onnx), not a fused graph")
    return sorted({n.op_type for n in model.graph.node} - ATC_OPERATORS)


def static_graph(source: Path, target: Path, bin_info: dict[str, Any]) -> dict[str, Any]:
    """The graph of `source` declaring exactly the prepared inputs: names and order as bin.json
    has them, every dimension but the batch fixed to the prepared shape, typed as the files are.
    Checked with ONNX's checker and strict shape inference; returns what ATC should know."""
    import onnx
    from onnx import TensorProto, helper, shape_inference, version_converter

    model = onnx.load(str(source))
    names, shape, dtype = list(bin_info["inputs"]), list(bin_info["shape"]), bin_info["dtype"]
    if graph_inputs(model) != names:
        raise ArtifactError(f"{source}: the graph's inputs {graph_inputs(model)} are not the prepared ones "
                            f"{names} (in this order); run `encoderzoo prepare --format bin` for this model")
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset not in ATC_OPSETS:
        model = version_converter.convert_version(model, ATC_OPSETS[-1])
        opset = ATC_OPSETS[-1]
    unlisted = check_operators(model, source)
    elem = {"int64": TensorProto.INT64, "int32": TensorProto.INT32}[dtype]
    casts = []
    for value in model.graph.input:
        if value.name not in names:
            continue
        declared = value.type.tensor_type
        dims = declared.shape.dim
        if len(dims) != len(shape):
            raise ArtifactError(f"{source}: input '{value.name}' has {len(dims)} dimensions, the prepared "
                                f"files {len(shape)} ({shape})")
        dims[0].Clear()
        dims[0].dim_param = "batch"
        for dim, size in zip(list(dims)[1:], shape[1:], strict=True):
            dim.Clear()
            dim.dim_value = int(size)
        if declared.elem_type != elem:  # the files' type at the edge, the graph's inside
            inner = f"{value.name}_as_graph_type"
            for node in model.graph.node:
                for k, name in enumerate(node.input):
                    if name == value.name:
                        node.input[k] = inner
            casts.append(helper.make_node("Cast", [value.name], [inner], to=declared.elem_type,
                                          name=f"{value.name}_cast"))
            declared.elem_type = elem
    for position, cast in enumerate(casts):
        model.graph.node.insert(position, cast)
    for output in model.graph.output:  # re-inferred from the fixed inputs
        output.type.tensor_type.ClearField("shape")
    model = shape_inference.infer_shapes(model, strict_mode=True)
    onnx.checker.check_model(model)
    onnx.save(model, str(target))
    outputs = [(o.name, [d.dim_value if d.HasField("dim_value") else d.dim_param
                         for d in o.type.tensor_type.shape.dim]) for o in model.graph.output]
    return {"opset": opset, "inputs": names, "dtype": dtype, "outputs": outputs,
            "unlisted_operators": unlisted, "cast_inputs": bool(casts)}


def input_shape(names: list[str], shape: list[int], batch: int) -> str:
    """ATC's --input_shape: `name:B,dims;...` in the graph's input order."""
    dims = ",".join(str(d) for d in [batch, *shape[1:]])
    return ";".join(f"{name}:{dims}" for name in names)


def script_text(bin_info: dict[str, Any], *, batch_sizes: tuple[int, ...], soc_version: str,
                recipe: str) -> str:
    """run.sh: convert, run, score; `bash run.sh [ais_bench|msame|perf|convert]`."""
    names, shape = list(bin_info["inputs"]), list(bin_info["shape"])
    folders = ",".join(f"$BIN/{name}" for name in names)
    q = shlex.quote
    lines = [
        "#!/usr/bin/env bash",
        f"# The Ascend leg of this encoderzoo run ({recipe}), written by `encoderzoo export --ascend`.",
        f"# Inputs as ../bin/bin.json records them: {bin_info['samples']} samples of "
        f"{', '.join(names)} ({bin_info['dtype']}, shape {shape} each).",
        "#   bash run.sh            convert, run every batch size with ais_bench, score each",
        "#   bash run.sh msame      convert, run batch size 1 with msame, score",
        "#   bash run.sh perf       convert, time every batch size with ais_bench (no files: zeros)",
        "#   bash run.sh convert    convert only",
        "# Replace a tool by setting ATC, AIS_BENCH, MSAME or ENCODERZOO; ATC_FLAGS adds atc options",
        "# (e.g. --precision_mode=allow_fp32_to_fp16); SOC_VERSION overrides the chip.",
        "set -euo pipefail",
        'HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"',
        'RUN="$(dirname "$HERE")"',
        'BIN="$RUN/bin"',
        'ATC="${ATC:-atc}"',
        'AIS_BENCH="${AIS_BENCH:-python3 -m ais_bench}"',
        'MSAME="${MSAME:-msame}"',
        'ENCODERZOO="${ENCODERZOO:-encoderzoo}"',
        f'SOC_VERSION="${{SOC_VERSION:-{soc_version}}}"',
        'ATC_FLAGS="${ATC_FLAGS:-}"',
        'MODE="${1:-ais_bench}"',
        'mkdir -p "$HERE/om" "$HERE/outputs"',
        "",
        "om() {  # the OM model ATC wrote for batch size $1",
        '  ls "$HERE/om/model_bs$1.om" "$HERE"/om/model_bs"$1"_*.om 2>/dev/null | head -n 1',
        "}",
        "",
        "convert() {  # one OM model per batch size, static shapes",
    ]
    for batch in batch_sizes:
        lines.append(
            f'  [ -n "$(om {batch})" ] || $ATC --framework=5 --model="$HERE/model.onnx" '
            f'--output="$HERE/om/model_bs{batch}" --input_format=ND '
            f"--input_shape={q(input_shape(names, shape, batch))} "
            '--soc_version="$SOC_VERSION" --log=error $ATC_FLAGS')
    lines += [
        "}",
        "",
        "score() {  # scores the outputs as a row of the run (report.md shows it, gated)",
        f'  $ENCODERZOO score {q(recipe)} --out "$RUN" --outputs "$1"',
        "}",
        "",
        'case "$MODE" in',
        "  ais_bench)",
        "    convert",
    ]
    for batch in batch_sizes:  # ais_bench joins the files into batches and splits the outputs back
        lines += [f'    $AIS_BENCH --model "$(om {batch})" --input "{folders}" --output "$HERE/outputs" '
                  f"--output_dirname ais_bench_bs{batch} --outfmt BIN --batchsize {batch}",
                  f'    score "$HERE/outputs/ais_bench_bs{batch}"']
    lines += [
        "    ;;",
        "  msame)",
        "    convert",
        f'    $MSAME --model "$(om 1)" --input "{folders}" --output "$HERE/outputs/msame_bs1" --outfmt BIN',
        '    score "$HERE/outputs/msame_bs1"',
        "    ;;",
        "  convert)",
        "    convert",
        "    ;;",
        "  perf)",
        "    convert",
    ]
    for batch in batch_sizes:
        lines.append(f'    $AIS_BENCH --model "$(om {batch})" --loop 100 --batchsize {batch}')
    lines += [
        "    ;;",
        '  *) echo "usage: bash run.sh [ais_bench|msame|perf|convert]" >&2; exit 2 ;;',
        "esac",
    ]
    return "\n".join(lines) + "\n"


def write_handoff(graph: Path, folder: Path, bin_info: dict[str, Any], *, batch_sizes: tuple[int, ...],
                  soc_version: str, recipe: str, overwrite: bool = False) -> dict[str, Any]:
    """FOLDER (all at once): model.onnx, run.sh and handoff.json (what was checked and written)."""
    if not batch_sizes or min(batch_sizes) < 1:
        raise ConfigError(f"--batch-sizes must be positive for --ascend, got {list(batch_sizes)}")
    if 1 not in batch_sizes:
        batch_sizes = (1, *batch_sizes)  # msame runs the per-sample files at batch 1
    batch_sizes = tuple(sorted(set(batch_sizes)))
    with atomic_dir(folder, KIND, overwrite=overwrite, option="--ascend") as tmp:
        info = static_graph(graph, tmp / "model.onnx", bin_info)
        text = script_text(bin_info, batch_sizes=batch_sizes, soc_version=soc_version, recipe=recipe)
        (tmp / "run.sh").write_text(text, encoding="utf-8")
        (tmp / "run.sh").chmod(0o755)
        info |= {"soc_version": soc_version, "batch_sizes": list(batch_sizes), "samples": bin_info["samples"],
                 "shape": bin_info["shape"], "prepare_key": bin_info.get("prepare_key"),
                 "graph_sha256": file_hash(tmp / "model.onnx"), "made_from": str(graph),
                 "atc_input_shapes": {b: input_shape(info["inputs"], bin_info["shape"], b)
                                      for b in batch_sizes}}
        write_json(tmp / "handoff.json", info)
    return info
