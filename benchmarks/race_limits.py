"""`benchmarks/race.py --memory` and `--bert-base`: how much memory each encoderzoo variant needs,
and how close each comes to its precision's ceiling on a base-size model."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from peers import ROOT


def peak_memory(work: Path, variant: str) -> tuple[float, float]:
    """(peak RSS MiB of `encoderzoo infer` running this variant alone, its target MiB). infer also
    needs the reference's (torch:fp32) outputs: they are made once, in a process of their own, and
    reused, so that the peak measured is the variant's and not PyTorch's beside it."""
    from encoderzoo.workspace import Workspace

    ws = Workspace(work)
    backend, precision = variant.split(":")
    for made in (ws.outputs(backend, precision), ws.run_record(backend, precision), ws.infer_json):
        made.unlink(missing_ok=True)  # else infer reuses the outputs of a same-key run
    shutil.rmtree(ws.output_shards(backend, precision), ignore_errors=True)
    if variant != "torch:fp32" and not ws.run_record("torch", "fp32").is_file():
        peak_memory(work, "torch:fp32")
    # VmHWM, not ru_maxrss: the latter survives fork+exec and would report this process's peak
    code = ("import sys\nfrom encoderzoo.cli import main\n"
            f"sys.argv = ['encoderzoo', 'infer', 'demo', '--out', {str(work)!r}, '--backends', {variant!r}]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "peak = next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM'))\n"
            "print('peak_kib', peak, file=sys.stderr)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    peak = int(next(line.split()[1] for line in result.stderr.splitlines() if line.startswith("peak_kib")))
    runs = json.loads(ws.infer_json.read_text())["runs"]
    run = next(r for r in runs if f"{r['backend']}:{r['precision']}" == variant)
    if variant != "torch:fp32" and not next(r for r in runs if r["backend"] == "torch").get("reused"):
        raise SystemExit(f"--memory: infer ran torch:fp32 beside {variant}; its peak is not {variant}'s")
    graph = run["settings"].get("graph")
    checkpoint = Path(json.loads(ws.prepare_json.read_text())["checkpoint"])
    files = ([work / "model" / graph, (work / "model" / graph).with_suffix(".bin")] if graph
             else [checkpoint / "model.safetensors"])
    size = sum(f.stat().st_size for f in files if f.is_file()) / 2**20
    return peak / 1024, 2 * size + 500


def bert_base(args: argparse.Namespace, variants: tuple[str, ...]) -> None:
    tokenizer = ROOT.parent / "shared" / "data" / "tokenizers" / "bert-base-cased"
    out = args.work / "bert-base"
    subprocess.run([sys.executable, "-m", "encoderzoo", "bench", "bert-base-cased-sst2", "--random-weights",
                    "base", "--tokenizer", str(tokenizer), "--batch-sizes", "32", "--seq-lens", "128",
                    "--threads", str(args.threads), "--backends", ",".join(variants),
                    "--out", str(out)],
                   check=True, stdout=subprocess.DEVNULL)
    rows = json.loads((out / "report.json").read_text())["benchmark"]
    torch_fp32 = next(r["throughput_per_s"] for r in rows
                      if (r["backend"], r["precision"]) == ("torch", "fp32"))
    print("\nbert-base (random weights), batch 32, sequence 128, full-length inputs (no buckets)\n")
    print("| backend | sequences/s | × PyTorch eager fp32 | GFLOP/s | % of its precision's ceiling |\n"
          "|---|---:|---:|---:|---:|")
    for r in rows:
        pct = f"{r['ceiling_pct']:.0f} %" if r.get("ceiling_pct") is not None else "— (no native ceiling)"
        print(f"| {r['backend']}:{r['precision']} | {r['throughput_per_s']:.1f} | "
              f"{r['throughput_per_s'] / torch_fp32:.2f}× | {r['gflops']:.0f} | {pct} |")
