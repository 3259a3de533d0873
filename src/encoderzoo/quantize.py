"""Reduced-precision artifacts: ONNX Runtime dynamic, blockwise and static (QDQ) int8 quantization, OpenVINO
int8 through NNCF post-training quantization, and float16 graphs for GPUs. Calibration data are
model inputs taken from the task's examples. Heavy libraries are imported inside the functions.

Every method has one signature, `method(src, dst, *, calibration, exclude) -> record`, so that an
artifact kind (encoderzoo.artifacts) names its method and nothing else changes."""

from __future__ import annotations

import contextlib
import logging
import shutil
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from encoderzoo.features import Features
from encoderzoo.fileio import atomic_path, temporary_folder

# Quantizing the fused graph needs every tensor typed; the transformer optimizer's fused
# operators (Attention, SkipLayerNormalization...) leave some untyped, and onnxruntime 1.31's
# quantizer then stops with "Unable to find data type for weight_name". Float is right for all.
FLOAT_DEFAULT = {"DefaultTensorType": 1}  # onnx.TensorProto.FLOAT
# Static quantization covers the matrix products only: quantizing every activation (the
# attention scores with their mask of very negative values, LayerNorm, GELU) took the demo
# model from 88.8 % to 76.0 % on SST-2.
STATIC_OPS = ("MatMul", "Gemm")


def calibration_feeds(features: Features, count: int, batch_size: int = 8) -> list[dict[str, np.ndarray]]:
    """Batches of `count` rows spread evenly over the data (not only its start)."""
    rows = np.unique(np.linspace(0, len(features) - 1, num=min(count, len(features))).astype(int))
    return [features.take(rows[i:i + batch_size]) for i in range(0, len(rows), batch_size)]


def _quiet() -> None:
    logging.getLogger("root").setLevel(logging.ERROR)  # the quantizer's "consider pre-processing"


Calibration = list[dict[str, np.ndarray]] | None  # model inputs, one item per feed


def ort_dynamic(src: Path, dst: Path, *, calibration: Calibration = None, exclude: Sequence[str] = ()
                ) -> dict[str, Any]:
    """Weights int8 per channel (symmetric, full range), activations quantized at run time."""
    _quiet()
    start = time.perf_counter()
    _dynamic(src, dst, exclude)
    return {"method": "onnxruntime dynamic, per-channel QInt8 weights", "source": src.name,
            "excluded_nodes": list(exclude), "seconds": round(time.perf_counter() - start, 2)}


def _dynamic(src: Path, dst: Path, exclude: Sequence[str]) -> None:
    """ONNX Runtime dynamic int8 of every operator it quantizes into `dst`."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with atomic_path(dst) as tmp:
        quantize_dynamic(str(src), str(tmp), weight_type=QuantType.QInt8, per_channel=True,
                         reduce_range=False, nodes_to_exclude=list(exclude),
                         extra_options=FLOAT_DEFAULT)


class _Reader:
    """onnxruntime's CalibrationDataReader protocol over prepared batches."""

    def __init__(self, feeds: Iterable[dict[str, np.ndarray]]) -> None:
        self._feeds = iter(list(feeds))

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)

    def rewind(self) -> None:  # part of the protocol; one pass is all we give
        pass


def ort_static(src: Path, dst: Path, *, calibration: Calibration, exclude: Sequence[str] = ()
               ) -> dict[str, Any]:
    """QDQ int8 with activation ranges measured (MinMax) on the calibration batches."""
    assert calibration is not None
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    _quiet()
    start = time.perf_counter()
    with atomic_path(dst) as tmp:
        quantize_static(str(src), str(tmp), _Reader(calibration), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=list(exclude),
                        op_types_to_quantize=list(STATIC_OPS),
                        # not CalibMaxIntermediateOutputs: onnxruntime drops each full group of
                        # items unmerged (its MinMax calibrator keeps only min and max per item)
                        extra_options=FLOAT_DEFAULT)
    rows = sum(len(next(iter(f.values()))) for f in calibration)
    return {"method": "onnxruntime static QDQ (MinMax) of MatMul/Gemm, per-channel QInt8 weights, "
                      "QUInt8 activations",
            "source": src.name, "calibration_rows": rows, "excluded_nodes": list(exclude),
            "seconds": round(time.perf_counter() - start, 2)}


# int8-block: activations quantized per block of BLOCK input channels of every row (token), not
# per tensor. On a MiniLM QA model (SQuAD 1.1, 256-token windows; answers equal to fp32's), when
# its fused Attention was still dynamic int8: dynamic per-tensor 82 %, blocks of 32 97.5 %
# (46 windows/s), of 128 93.6 % (61 windows/s), dynamic 80, fp32 39. That Attention quantized its
# input with one scale over the whole batch, so a row's output depended on the rows beside it
# (all-MiniLM-L6-v2: 2.7e-2 between batches of 8 and 32); the Attention stays float now
# (4.5e-8; on an AVX2 CPU without VNNI, batches of 32, one run: 154 rows/s against 169, fp32 219).
BLOCK = 128


def ort_block(src: Path, dst: Path, *, calibration: Calibration = None, exclude: Sequence[str] = ()
              ) -> dict[str, Any]:
    """Every MatMul with a constant weight as ONNX Runtime's MatMulNBits at 8 bits: weights
    symmetric per block of BLOCK input channels, activations quantized per block of each row at
    run time and multiplied in int8 (accuracy level 4: VNNI where the CPU has it). Nothing is
    quantized over the whole batch, so each row's output is its own whatever rows run beside it:
    the fused Attention operators (their projections inside) and the embeddings stay float."""
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    _quiet()
    start = time.perf_counter()
    config = DefaultWeightOnlyQuantConfig(block_size=BLOCK, is_symmetric=True, accuracy_level=4, bits=8)
    quantizer = MatMulNBitsQuantizer(onnx.load(str(src)), algo_config=config, nodes_to_exclude=list(exclude))
    quantizer.process()
    blocked = sum(node.op_type == "MatMulNBits" for node in quantizer.model.model.graph.node)
    with atomic_path(dst) as tmp:
        quantizer.model.save_model_to_file(str(tmp))
    return {"method": f"onnxruntime MatMulNBits 8-bit, blocks of {BLOCK} (int8 weights and activations "
                      "per block, accuracy level 4); fused Attention float",
            "source": src.name, "matmuls_in_blocks": blocked, "excluded_nodes": list(exclude),
            "seconds": round(time.perf_counter() - start, 2)}


def ort_fp16(src: Path, dst: Path, *, calibration: Calibration = None, exclude: Sequence[str] = ()
             ) -> dict[str, Any]:
    """Float16 weights and compute for GPU providers, inputs and outputs kept float32 (the
    fused operators are typed by ONNX Runtime's symbolic shape inference)."""
    import onnx
    from onnxruntime.transformers.onnx_model import OnnxModel

    start = time.perf_counter()
    model = OnnxModel(onnx.load(str(src)))
    model.convert_float_to_float16(use_symbolic_shape_infer=True, keep_io_types=True)
    with atomic_path(dst) as tmp:
        model.save_model_to_file(str(tmp))
    return {"method": "onnxruntime.transformers float16 conversion (float32 inputs/outputs)",
            "source": src.name, "seconds": round(time.perf_counter() - start, 2)}


# SmoothQuant's migration strength for MatMul inputs in NNCF int8 (NNCF's transformer default: 0.95).
# Chosen by benchmarks/smoothquant_grid.py (calibrated on premises, one sentence a pair): all-MiniLM-L6-v2
# over 2,000 MNLI dev-mismatched sentences (least / mean cosine with fp32;
# 100 calibration rows: 0.95 0.9269 / 0.9970, 0.8 0.9661 / 0.9977, 0.7 0.9640, 0.6 0.9642 / 0.9950;
# 300 rows: 0.8 0.9727, 0.75 0.9744, 0.6 0.9631; 500 rows: 0.95 0.9416, 0.8 0.9832 / 0.9980), and
# confirmed on other texts (the embeddings race's 2,872: least 0.9671 -> 0.9887 at 300 rows); the demo
# classifier's accuracy and agreement did not move beyond noise (88.65-89.11 %, 99.2-99.7 %)
SMOOTH_QUANT_ALPHA = 0.8


def openvino_int8(src: Path, dst: Path, *, calibration: Calibration, exclude: Sequence[str] = ()
                  ) -> dict[str, Any]:
    """NNCF post-training quantization for transformers (keeps the sensitive parts in float, and
    the `exclude` nodes) into an OpenVINO IR at `dst` (.xml, with its .bin)."""
    assert calibration is not None
    import nncf
    import openvino as ov
    from nncf.quantization.advanced_parameters import (
        AdvancedQuantizationParameters,
        AdvancedSmoothQuantParameters,
    )

    nncf.set_log_level(logging.ERROR)
    start = time.perf_counter()
    model = ov.Core().read_model(str(src))
    smoothing = AdvancedSmoothQuantParameters(matmul=SMOOTH_QUANT_ALPHA)
    with contextlib.redirect_stdout(sys.stderr):  # NNCF's progress bars, beside ours on stderr
        quantized = nncf.quantize(model, nncf.Dataset(calibration), model_type=nncf.ModelType.TRANSFORMER,
                                  subset_size=len(calibration),  # items are batches
                                  ignored_scope=_ignored_scope(model, exclude),
                                  advanced_parameters=AdvancedQuantizationParameters(smooth_quant_alphas=smoothing))
    _save_ir(quantized, dst)
    rows = sum(len(next(iter(f.values()))) for f in calibration)
    return {"method": "NNCF post-training quantization (transformer preset)", "source": src.name,
            "calibration_rows": rows, "excluded_nodes": list(exclude),
            "smooth_quant_alpha": SMOOTH_QUANT_ALPHA, "seconds": round(time.perf_counter() - start, 2)}


def openvino_int8_token(src: Path, dst: Path, *, calibration: Calibration = None, exclude: Sequence[str] = ()
                        ) -> dict[str, Any]:
    """int8 weights (symmetric, per output channel, by NNCF's weight compression; the `exclude`
    nodes left float) into an OpenVINO IR at `dst`. Its activations are quantized at run time,
    each token's own (per group of channels), by the CPU plugin's dynamic quantization, which
    the openvino backend turns on for this precision: nothing is quantized across rows, so a
    row's outputs never depend on the rows batched with it, and no calibration is needed."""
    import nncf
    import openvino as ov

    nncf.set_log_level(logging.ERROR)
    start = time.perf_counter()
    model = ov.Core().read_model(str(src))
    with contextlib.redirect_stdout(sys.stderr):
        compressed = nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_SYM,
                                           ignored_scope=_ignored_scope(model, exclude))
    _save_ir(compressed, dst)
    return {"method": "NNCF weight compression (int8, symmetric, per channel); activations quantized per "
            "token at run time by OpenVINO's CPU plugin", "source": src.name, "excluded_nodes": list(exclude),
            "seconds": round(time.perf_counter() - start, 2)}


def _ignored_scope(model: Any, exclude: Sequence[str]) -> Any:
    """NNCF's ignored scope for the `exclude` nodes of the ONNX graph (None: nothing excluded), by
    the names OpenVINO reads them under: a Gemm becomes a MatMul "<name>/WithoutBiases" and an Add
    that keeps its name (ignoring the Add would leave the MatMul quantized)."""
    import nncf

    names = {op.get_friendly_name() for op in model.get_ops()}
    ignored = [f"{n}/WithoutBiases" if f"{n}/WithoutBiases" in names else n for n in exclude]
    return nncf.IgnoredScope(names=ignored) if ignored else None


def _save_ir(model: Any, dst: Path) -> None:
    """`model` as the OpenVINO IR `dst` (.xml) with its .bin, whole or not at all."""
    import openvino as ov

    with temporary_folder(dst) as folder:
        ov.save_model(model, str(folder / dst.name))
        for suffix in (".bin", ".xml"):  # the weights first: the .xml names a complete IR
            shutil.move(folder / dst.with_suffix(suffix).name, dst.with_suffix(suffix))
