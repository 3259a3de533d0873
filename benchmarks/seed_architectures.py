"""ONNX Runtime vs PyTorch on the four seed architectures with random base-size weights, run by
hand (about 9 minutes on 2 cores):

    .venv/bin/python benchmarks/seed_architectures.py [--batch-sizes 1,8,32] [--out runs/seed-bench]

Each recipe runs `encoderzoo bench RECIPE --random-weights base` (export, fusion, then the sweep
at the recipe's sequence length, both backends side by side); this prints one table of the
median throughputs and the ONNX Runtime / PyTorch ratio per recipe and batch size."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RECIPES = {"bert-base-cased-sst2": "bert", "roberta-base-sst2": "roberta",
           "albert-base-v2-sst2": "albert", "deberta-v3-base-mnli": "deberta-v2"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", default="1,8,32")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "seed-bench")
    args = parser.parse_args()
    from tests.tokenizers import family_tokenizers

    tokenizers = family_tokenizers(Path(tempfile.mkdtemp(prefix="encoderzoo-tokenizers-")))
    rows, started = [], time.perf_counter()
    for recipe, family in RECIPES.items():
        out = args.out / recipe
        command = [sys.executable, "-m", "encoderzoo", "bench", recipe, "--random-weights", "base",
                   "--tokenizer", str(tokenizers[family]), "--batch-sizes", args.batch_sizes,
                   "--out", str(out)]
        t0 = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        report = json.loads((out / "report.json").read_text())
        fused = report["optimize"]["fused_ops"] if report.get("optimize") else {}
        by_point: dict[tuple[int, int], dict[str, float]] = {}
        for r in report["benchmark"]:
            point = by_point.setdefault((r["seq_len"], r["batch_size"]), {})
            point[r["backend"]] = r["throughput_per_s"]
        seconds = time.perf_counter() - t0
        for (seq, batch), values in sorted(by_point.items()):
            rows.append((recipe, seq, batch, values["torch"], values["onnxruntime"],
                         fused.get("Attention", 0), seconds))
    print("| recipe | seq | batch | torch fp32 seq/s | onnxruntime fp32 seq/s | ORT / torch "
          "| fused Attention | recipe wall s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for recipe, seq, batch, torch_s, ort_s, attention, seconds in rows:
        print(f"| {recipe} | {seq} | {batch} | {torch_s:.2f} | {ort_s:.2f} | {ort_s / torch_s:.2f}x "
              f"| {attention} | {seconds:.0f} |")
    print(f"\ntotal {time.perf_counter() - started:.0f} s; reports under {args.out}")


if __name__ == "__main__":
    main()
