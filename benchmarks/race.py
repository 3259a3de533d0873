"""The race against the peers, in one go, run by hand (about 5 minutes, plus a one-time setup of
Optimum's virtual environment):

    .venv/bin/python benchmarks/race.py [--runs 5] [--memory] [--bert-base]

Same model (the demo's SST-2 classifier unless --model), same data (SST-2 dev, 872 sentences),
end to end from raw sentences to accuracy (tokenization included, model loading not), on the
same threads, interleaved run by run:

  (a)  PyTorch eager fp32, every batch padded to 128 tokens: the reference pipelines' way
  (a') PyTorch eager fp32 with each batch padded to its longest sentence
  (b)  Hugging Face Optimum's best CPU recipe: export, O2 optimization, avx512_vnni dynamic
       int8, run through ORTModelForSequenceClassification (in .venv-optimum, built here once:
       optimum-onnx pins transformers<4.58; see benchmarks/optimum_worker.py for the fix it needs)
  (c)  every encoderzoo backend and precision, with its default batching (sorted by length)

It prints the median sentences/s over --runs passes, the ratios to (a) and (b), and accuracy.
--memory adds each encoderzoo variant's peak resident memory in its own `encoderzoo infer`
process against the target (2 x the model file + 500 MB). --bert-base adds PyTorch fp32 vs
int8 on a random-weight bert-base at batch 32, sequence 128, no buckets.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("torch:fp32", "torch:bf16", "onnxruntime:fp32", "onnxruntime:int8", "onnxruntime:int8-static",
            "openvino:fp32", "openvino:bf16", "openvino:int8")


class TorchPadded:
    """(a)/(a'): transformers' model on PyTorch, tokenizing batch by batch in dataset order."""

    def __init__(self, model: Path, threads: int, fixed: bool) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        torch.set_num_threads(threads)
        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.model = AutoModelForSequenceClassification.from_pretrained(model, dtype=torch.float32).eval()
        self.padding = "max_length" if fixed else "longest"

    def run(self, texts: list[str], gold: list[int], batch_size: int) -> tuple[float, float]:
        start, predicted = time.perf_counter(), []
        with self.torch.inference_mode():
            for i in range(0, len(texts), batch_size):
                inputs = self.tokenizer(texts[i:i + batch_size], padding=self.padding, truncation=True,
                                        max_length=128, return_tensors="pt")
                predicted += self.model(**inputs).logits.argmax(-1).tolist()
        return time.perf_counter() - start, _accuracy(predicted, gold)


class Optimum:
    """(b): a worker process in Optimum's own virtual environment."""

    def __init__(self, venv: Path, model: Path, data: Path, work: Path, batch_size: int) -> None:
        python = venv / "bin" / "python"
        if not python.is_file():
            _make_optimum_venv(venv)
        self.process = subprocess.Popen(
            [str(python), str(ROOT / "benchmarks" / "optimum_worker.py"), "--model", str(model),
             "--data", str(data), "--work", str(work), "--batch-size", str(batch_size)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.versions = self._reply()

    def _reply(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the Optimum worker stopped; run benchmarks/optimum_worker.py by hand")
        return dict(json.loads(line))

    def run(self, texts: list[str], gold: list[int], batch_size: int) -> tuple[float, float]:
        assert self.process.stdin is not None
        self.process.stdin.write("run\n")
        self.process.stdin.flush()
        reply = self._reply()
        return reply["seconds"], reply["accuracy"]

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        self.process.wait(timeout=60)


class Encoderzoo:
    """(c): one backend and precision through encoderzoo's own reading, tokenization, batching
    and prediction code."""

    def __init__(self, ctx: Any, variant: str, data: Path) -> None:
        from encoderzoo.checkpoints import load_tokenizer
        from encoderzoo.stages.infer import open_backend

        name, precision = variant.split(":")
        self.pipeline, self.data = ctx, data
        self.backend = open_backend(ctx, name, precision)
        self.tokenizer = load_tokenizer(ctx.checkpoint)

    def run(self, texts: list[str], gold: list[int], batch_size: int) -> tuple[float, float]:
        from encoderzoo.infer import run_inference

        pipeline = self.pipeline
        start = time.perf_counter()
        examples = pipeline.task.read(self.data).examples
        features = pipeline.task.encode(examples, self.tokenizer, seq_len=128,
                                        input_names=pipeline.family.input_names)
        outputs = run_inference(self.backend, features, pipeline.config.batching, progress=False)
        predicted = pipeline.task.predict(examples, features, outputs)
        seconds = time.perf_counter() - start
        return seconds, sum(p == e.label for p, e in zip(predicted, examples, strict=True)) / len(examples)


def _accuracy(predicted: list[int], gold: list[int]) -> float:
    return sum(p == g for p, g in zip(predicted, gold, strict=True)) / len(gold)


def _make_optimum_venv(venv: Path) -> None:
    print(f"building {venv} for Optimum (once): torch==2.13.0, optimum-onnx[onnxruntime], transformers<4.58",
          flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "torch==2.13.0"], check=True)
    subprocess.run([*pip, "optimum-onnx[onnxruntime]", "transformers<4.58"], check=True)


def runnable(variants: tuple[str, ...]) -> tuple[str, ...]:
    """The variants this machine runs at full speed (bf16 only where the CPU computes it natively)."""
    from encoderzoo.devices import Machine

    machine = Machine.here("cpu")
    return tuple(v for v in variants if "bf16" not in v or machine.native_bf16)


def prepare_encoderzoo(model: Path, data: Path, work: Path, threads: int, batch_size: int) -> Any:
    from encoderzoo.config import RunConfig
    from encoderzoo.context import RunContext
    from encoderzoo.stages import export, optimize, prepare

    config = RunConfig(recipe="demo", out=work, checkpoint=str(model), data=(str(data),), threads=threads,
                       batch_size=batch_size, backends=runnable(VARIANTS))
    ctx = RunContext(config)
    prepare.run(ctx)
    export.run(ctx)
    optimize.run(ctx)
    return ctx


def peak_memory(work: Path, variant: str) -> tuple[float, float]:
    """(peak RSS MiB of `encoderzoo infer` with this variant alone, its target MiB)."""
    # VmHWM, not ru_maxrss: the latter survives fork+exec and would report this process's peak
    shutil.rmtree(work / "outputs", ignore_errors=True)  # else infer reuses the outputs of a same-key run
    code = ("import sys\nfrom encoderzoo.cli import main\n"
            f"sys.argv = ['encoderzoo', 'infer', 'demo', '--out', {str(work)!r}, '--backends', {variant!r}]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "peak = next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM'))\n"
            "print('peak_kib', peak, file=sys.stderr)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    peak = int(next(line.split()[1] for line in result.stderr.splitlines() if line.startswith("peak_kib")))
    infer = json.loads((work / "outputs" / "infer.json").read_text())
    graph = infer["runs"][0]["settings"].get("graph")
    checkpoint = Path(json.loads((work / "data" / "prepare.json").read_text())["checkpoint"])
    files = ([work / "model" / graph, (work / "model" / graph).with_suffix(".bin")] if graph
             else [checkpoint / "model.safetensors"])
    size = sum(f.stat().st_size for f in files if f.is_file()) / 2**20
    return peak / 1024, 2 * size + 500


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", type=Path, default=ROOT / "src/encoderzoo/assets/demo/model")
    parser.add_argument("--data", type=Path, default=ROOT / "src/encoderzoo/assets/demo/data/sst2-dev.tsv")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "race")
    parser.add_argument("--optimum-venv", type=Path, default=ROOT / ".venv-optimum")
    parser.add_argument("--no-optimum", action="store_true")
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--bert-base", action="store_true")
    args = parser.parse_args()

    rows = [line.split("\t") for line in args.data.read_text(encoding="utf-8").splitlines()[1:]]
    texts, gold = [r[0] for r in rows], [int(r[1]) for r in rows]
    pipeline = prepare_encoderzoo(args.model, args.data, args.work / "encoderzoo", args.threads,
                                  args.batch_size)
    contenders: dict[str, Any] = {
        "(a) PyTorch eager fp32, padded to 128": TorchPadded(args.model, args.threads, fixed=True),
        "(a') PyTorch eager fp32, padded per batch": TorchPadded(args.model, args.threads, fixed=False),
    }
    if not args.no_optimum:
        contenders["(b) Optimum O2 + avx512_vnni int8"] = Optimum(
            args.optimum_venv, args.model, args.data, args.work / "optimum", args.batch_size)
    for name, precision in pipeline.runs:  # what this machine runs (bf16 only with native bfloat16)
        variant = f"{name}:{precision}"
        contenders[f"(c) encoderzoo {variant}"] = Encoderzoo(pipeline, variant, args.data)

    seconds: dict[str, list[float]] = {name: [] for name in contenders}
    accuracy: dict[str, float] = {}
    for run in range(args.runs + 1):  # the first pass warms everything up and is not counted
        for name, contender in contenders.items():
            took, accuracy[name] = contender.run(texts, gold, args.batch_size)
            if run:
                seconds[name].append(took)
        print(f"pass {run}/{args.runs} done", file=sys.stderr, flush=True)
    throughput = {name: len(texts) / statistics.median(times) for name, times in seconds.items()}
    a = throughput["(a) PyTorch eager fp32, padded to 128"]
    b = throughput.get("(b) Optimum O2 + avx512_vnni int8")
    print(f"\nSST-2 dev, {len(texts)} sentences end to end, batch {args.batch_size}, {args.threads} threads, "
          f"median of {args.runs} interleaved passes\n")
    print("| contender | sentences/s | × (a) | × (b) | accuracy |")
    print("|---|---:|---:|---:|---:|")
    for name, value in throughput.items():
        versus_b = f"{value / b:.2f}×" if b else "—"
        print(f"| {name} | {value:.0f} | {value / a:.2f}× | {versus_b} | {100 * accuracy[name]:.2f} |")
    if "(b) Optimum O2 + avx512_vnni int8" in contenders:
        print(f"\n(b) ran with {contenders['(b) Optimum O2 + avx512_vnni int8'].versions}")
        contenders["(b) Optimum O2 + avx512_vnni int8"].close()

    if args.memory:
        print("\n| encoderzoo infer | peak resident MiB | target MiB | met |\n|---|---:|---:|---|")
        for variant in runnable(VARIANTS):
            peak, target = peak_memory(args.work / "encoderzoo", variant)
            print(f"| {variant} | {peak:.0f} | {target:.0f} | {'yes' if peak <= target else 'no'} |")
    if args.bert_base:
        bert_base(args)


def bert_base(args: argparse.Namespace) -> None:
    tokenizer = ROOT.parent / "shared" / "data" / "tokenizers" / "bert-base-cased"
    out = args.work / "bert-base"
    subprocess.run([sys.executable, "-m", "encoderzoo", "bench", "bert-base-cased-sst2", "--random-weights",
                    "base", "--tokenizer", str(tokenizer), "--batch-sizes", "32", "--seq-lens", "128",
                    "--threads", str(args.threads), "--backends", ",".join(runnable(VARIANTS)),
                    "--out", str(out)],
                   check=True, stdout=subprocess.DEVNULL)
    rows = json.loads((out / "report.json").read_text())["benchmark"]
    torch_fp32 = next(r["throughput_per_s"] for r in rows
                      if (r["backend"], r["precision"]) == ("torch", "fp32"))
    print("\nbert-base (random weights), batch 32, sequence 128, full-length inputs (no buckets)\n")
    print("| backend | sequences/s | × PyTorch eager fp32 |\n|---|---:|---:|")
    for r in rows:
        print(f"| {r['backend']}:{r['precision']} | {r['throughput_per_s']:.1f} | "
              f"{r['throughput_per_s'] / torch_fp32:.2f}× |")


if __name__ == "__main__":
    main()
