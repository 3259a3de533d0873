"""Hugging Face Optimum's best CPU recipe, run inside its own virtual environment (optimum-onnx
pins transformers<4.58) and driven by benchmarks/race.py over stdin/stdout:

    export to ONNX → ORTOptimizer level O2 → ORTQuantizer avx512_vnni dynamic int8 →
    ORTModelForSequenceClassification, with the tokenizer padding each batch to its longest.

onnxruntime 1.31's quantizer stops on the O2 graph ("Unable to find data type for weight_name")
unless `DefaultTensorType` is given in its extra options, which Optimum 2.1 does not pass; this
worker gives it to Optimum's quantizer class (the same fix encoderzoo applies), so that Optimum
runs at its best. It prints one JSON line per command: "run" times one pass over the dataset."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def give_optimum_the_quantizer_fix() -> None:
    import onnx
    import optimum.onnxruntime.quantization as quantization

    original = quantization.ONNXQuantizer

    class TypedQuantizer(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args, extra_options=None, **kwargs):  # type: ignore[no-untyped-def]
            extra_options = dict(extra_options or {})
            extra_options.setdefault("DefaultTensorType", onnx.TensorProto.FLOAT)
            super().__init__(*args, extra_options=extra_options, **kwargs)

    quantization.ONNXQuantizer = TypedQuantizer  # Optimum looks the name up at quantize time


def build(model: Path, work: Path) -> Path:
    from optimum.onnxruntime import ORTModelForSequenceClassification, ORTOptimizer, ORTQuantizer
    from optimum.onnxruntime.configuration import AutoQuantizationConfig, OptimizationConfig
    from transformers import AutoTokenizer

    quantized = work / "o2-int8"
    if (quantized / "model_optimized_quantized.onnx").is_file():
        return quantized
    exported = ORTModelForSequenceClassification.from_pretrained(str(model), export=True)
    optimizer = ORTOptimizer.from_pretrained(exported)
    optimizer.optimize(save_dir=str(work / "o2"),
                       optimization_config=OptimizationConfig(optimization_level=2))
    give_optimum_the_quantizer_fix()
    quantizer = ORTQuantizer.from_pretrained(str(work / "o2"), file_name="model_optimized.onnx")
    vnni = AutoQuantizationConfig.avx512_vnni(is_static=False, per_channel=False)
    quantizer.quantize(save_dir=str(quantized), quantization_config=vnni)
    AutoTokenizer.from_pretrained(str(model)).save_pretrained(str(quantized))
    return quantized


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    folder = build(args.model, args.work)

    from optimum.onnxruntime import ORTModelForSequenceClassification
    from transformers import AutoTokenizer

    model = ORTModelForSequenceClassification.from_pretrained(
        str(folder), file_name="model_optimized_quantized.onnx")
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    rows = [line.split("\t") for line in args.data.read_text(encoding="utf-8").splitlines()[1:]]
    texts, gold = [r[0] for r in rows], [int(r[1]) for r in rows]
    import importlib.metadata as md

    versions = {name: md.version(name) for name in ("optimum", "transformers", "onnxruntime")}
    print(json.dumps({"ready": True, **versions}), flush=True)
    for command in sys.stdin:
        if command.strip() != "run":
            break
        start = time.perf_counter()
        predicted = []
        for i in range(0, len(texts), args.batch_size):
            inputs = tokenizer(texts[i:i + args.batch_size], padding=True, truncation=True, max_length=128,
                               return_tensors="pt")
            predicted += model(**inputs).logits.argmax(-1).tolist()
        seconds = time.perf_counter() - start
        accuracy = sum(p == g for p, g in zip(predicted, gold, strict=True)) / len(gold)
        print(json.dumps({"seconds": seconds, "accuracy": accuracy}), flush=True)


if __name__ == "__main__":
    main()
