"""PyTorch vs ONNX Runtime fp32 and int8 on every registered family with random base-size
weights, run by hand (about 1 to 2 minutes per family on 2 cores):

    .venv/bin/python benchmarks/families.py [--families bert,distilbert] [--batch-size 32]
                                            [--seq-len 128] [--runs 5] [--out runs/families]

Each family runs `encoderzoo bench sst2 --random-weights base --family F` (export, fusion by
ONNX Runtime's optimizer, dynamic int8, then the three backends side by side at one batch size
and length); this prints one table: what fused (from the optimizer's own count, against the
number of layers), the median throughputs and the ratios to PyTorch."""

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
RUNS = ("torch:fp32", "onnxruntime:fp32", "onnxruntime:int8")


def layers(config: dict) -> int:
    return int(config.get("num_hidden_layers") or config.get("n_layers") or 0)


def main() -> None:
    from encoderzoo.families import FAMILIES
    from tests.tokenizers import family_tokenizers

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default=",".join(f.name for f in FAMILIES.values()))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--runs", type=int, default=5, help="timed runs per backend (at least)")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "families")
    args = parser.parse_args()
    tokenizers = family_tokenizers(Path(tempfile.mkdtemp(prefix="encoderzoo-tokenizers-")))
    rows, started = [], time.perf_counter()
    for family in args.families.split(","):
        out = args.out / family
        command = [sys.executable, "-m", "encoderzoo", "bench", "sst2", "--random-weights", "base",
                   "--family", family, "--tokenizer", str(tokenizers[family]), "--backends", ",".join(RUNS),
                   "--batch-sizes", str(args.batch_size), "--seq-lens", str(args.seq_len),
                   "--min-runs", str(args.runs), "--out", str(out)]
        t0 = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        report = json.loads((out / "report.json").read_text())
        config = json.loads((out / "checkpoint" / "config.json").read_text())
        fused = {k: v for k, v in (report.get("optimize") or {}).get("fused_ops", {}).items() if v}
        speed = {f"{r['backend']}:{r['precision']}": r["throughput_per_s"] for r in report["benchmark"]}
        rows.append((family, layers(config), fused, speed, time.perf_counter() - t0))
    print(f"batch {args.batch_size} x seq {args.seq_len}, random base-size weights; sequences/s at the "
          f"median latency (>= {args.runs} timed runs each)\n")
    print("| family | layers | fused by ONNX Runtime | torch fp32 | ORT fp32 | ORT int8 | ORT fp32 / torch "
          "| ORT int8 / torch | wall s |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for family, n, fused, speed, seconds in rows:
        shown = ", ".join(f"{op} {count}" for op, count in fused.items()) or "nothing"
        torch_s, fp32, int8 = (speed.get(r, float("nan")) for r in RUNS)
        print(f"| {family} | {n} | {shown} | {torch_s:.1f} | {fp32:.1f} | {int8:.1f} | {fp32 / torch_s:.2f}x "
              f"| {int8 / torch_s:.2f}x | {seconds:.0f} |")
    print(f"\ntotal {time.perf_counter() - started:.0f} s; reports under {args.out}")


if __name__ == "__main__":
    main()
