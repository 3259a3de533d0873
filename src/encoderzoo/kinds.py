"""The built-in artifact kinds, declared once each (see encoderzoo.artifacts): the model source
itself, the graph, the fused graph, and the reduced-precision kinds. Which backend opens which
kind at which precision is the backend's own declaration (encoderzoo.backends)."""

from __future__ import annotations

from encoderzoo import quantize, quantize_token
from encoderzoo.artifacts import MODEL, ArtifactKind, register_artifact
from encoderzoo.builders import (
    export_graph,
    fuse_graph,
    fused_key,
    graph_files,
    graph_key,
    quantized,
    quantized_key,
)

BLOCKS_INSTEAD = ("onnxruntime:int8-block, whose activations are quantized per block of 128 channels of each "
                  "token instead of with one scale per tensor")

register_artifact(ArtifactKind(MODEL, "the PyTorch module itself", made_from=None))
register_artifact(ArtifactKind(
    "onnx", "the exported graph, unfused (other runtimes fuse it their own way)", graph_files,
    build=export_graph, key_inputs=graph_key, record="export",
    revision=2))  # 2: the last layer for the first token only, where the head reads no other
register_artifact(ArtifactKind(
    "onnx-fused", "the graph fused by ONNX Runtime's transformer optimizer (the export where it cannot "
    "fuse)", ("model.optimized.onnx",), made_from="onnx", build=fuse_graph, key_inputs=fused_key,
    record="optimize", options=("optimize_timeout",)))
register_artifact(ArtifactKind(
    "onnx-int8", "the fused graph, int8 by ONNX Runtime dynamic quantization", ("model.int8.onnx",),
    made_from="onnx-fused", precision="int8", build=quantized(quantize.ort_dynamic),
    key_inputs=quantized_key(False), record="quantize", triageable=True, otherwise=BLOCKS_INSTEAD,
    batch_invariant=False))  # DynamicQuantizeLinear: one activation scale over the whole batch
register_artifact(ArtifactKind(
    "onnx-int8-static", "the exported graph, int8 QDQ by ONNX Runtime static quantization",
    ("model.int8-static.onnx",), made_from="onnx", precision="int8-static",
    build=quantized(quantize.ort_static), key_inputs=quantized_key(True), record="quantize",
    calibrated=True, triageable=True, quantized_ops=("MatMul", "Gemm"), otherwise=BLOCKS_INSTEAD,
    revision=2))  # 2: ranges from every calibration row (1 kept only the rows after the last group of 8)
register_artifact(ArtifactKind(
    "onnx-int8-block", "the fused graph, int8 with weights and activations quantized per block of 128 "
    "input channels (ONNX Runtime MatMulNBits 8-bit)", ("model.int8-block.onnx",), made_from="onnx-fused",
    precision="int8-block", build=quantized(quantize.ort_block), key_inputs=quantized_key(False),
    record="quantize", triageable=True, quantized_ops=("MatMul",),
    revision=2))  # 2: the fused Attention stays float (1 quantized its input over the whole batch)
register_artifact(ArtifactKind(
    "onnx-int8-token", "the exported graph, every MatMul int8 with each token's activations quantized at run "
    "time with its own scale (nothing quantized across rows)", ("model.int8-token.onnx",), made_from="onnx",
    precision="int8-token", build=quantized(quantize_token.ort_token), key_inputs=quantized_key(False),
    record="quantize", triageable=True, quantized_ops=("MatMul",), otherwise=BLOCKS_INSTEAD,
    revision=2))  # 2: the attention's value projections stay float
register_artifact(ArtifactKind(
    "onnx-fp16", "the fused graph with float16 weights and compute (float32 inputs and outputs), for GPUs",
    ("model.fp16.onnx",), made_from="onnx-fused", precision="fp16", build=quantized(quantize.ort_fp16),
    key_inputs=quantized_key(False), record="quantize"))
register_artifact(ArtifactKind(
    "openvino-int8", "an OpenVINO IR quantized by NNCF", ("openvino-int8.xml", "openvino-int8.bin"),
    made_from="onnx", precision="int8", build=quantized(quantize.openvino_int8),
    key_inputs=quantized_key(True), record="quantize", calibrated=True, triageable=True,
    quantized_ops=("MatMul", "Gemm"), ranked_on="onnx-int8-static",  # static, per-tensor activations too
    otherwise="openvino:bf16 where the CPU computes bf16 natively, or " + BLOCKS_INSTEAD,
    revision=2))  # 2: SmoothQuant alpha 0.8 for MatMuls (quantize.SMOOTH_QUANT_ALPHA; 1: NNCF's 0.95)
register_artifact(ArtifactKind(
    "openvino-int8-token", "an OpenVINO IR with int8 weights; each token's activations quantized at run time "
    "(per group of its channels; nothing quantized across rows)", ("openvino-int8-token.xml",
                                                                   "openvino-int8-token.bin"),
    made_from="onnx", precision="int8-token", build=quantized(quantize.openvino_int8_token),
    key_inputs=quantized_key(False), record="quantize", quantized_ops=("MatMul",),
    otherwise="openvino:int8 (static), or openvino:bf16 where the CPU computes bf16 natively"))
