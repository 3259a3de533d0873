"""The race against the peers, in one go, run by hand (about 5 minutes, plus a one-time setup of
Optimum's virtual environment):

    .venv/bin/python benchmarks/race.py [--runs 5] [--memory] [--bert-base] [--max-tokens 0,2048]
    .venv/bin/python benchmarks/race.py --task embed [--runs 5]   (see benchmarks/race_embed.py)

Same model (the demo's SST-2 classifier unless --model), same data (SST-2 dev, 872 sentences),
end to end from raw sentences to accuracy (tokenization included, model loading not), on the
same threads, interleaved run by run:

  (a)  PyTorch eager fp32, every batch padded to 128 tokens: the reference pipelines' way
  (a') PyTorch eager fp32 with each batch padded to its longest sentence
  (b)  Hugging Face Optimum's best CPU recipe: export, O2 optimization, avx512_vnni dynamic
       int8, run through ORTModelForSequenceClassification (in .venv-optimum, built here once:
       optimum-onnx pins transformers<4.58; see benchmarks/optimum_worker.py for the fix it needs)
  (b2) Hugging Face optimum-intel, the strongest peer on these CPUs: OpenVINO with NNCF static
       int8 calibrated on 300 SST-2 train sentences padded to 128, run both ways a user runs it
       (dataset order, and sorted by length), in .venv-optimum-intel (built here once)
  (c)  every encoderzoo backend and precision, with its default batching (sorted by length), and
       with each --max-tokens budget
  (c2) CTranslate2 (int8 weights, its Encoder, the classifier head in numpy, sorted by length), in
       .venv-ctranslate2 (built here once; see benchmarks/ctranslate2_worker.py)

It prints the median sentences/s over --runs passes, the ratios to (a), (b) and (b2)'s best way,
accuracy, and the useful work (FLOPs of the real tokens) as GFLOP/s and % of the measured int8
GEMM ceiling (encoderzoo.ceiling).
--memory adds each encoderzoo variant's peak resident memory in its own `encoderzoo infer`
process against the target (2 x the model file + 500 MB). --bert-base adds PyTorch fp32 vs
int8 on a random-weight bert-base at batch 32, sequence 128, no buckets.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from peers import ROOT, Way, Worker, ctranslate2, make_venv
from race_limits import bert_base, peak_memory

VARIANTS = ("torch:fp32", "torch:bf16", "onnxruntime:fp32", "onnxruntime:int8", "onnxruntime:int8-block",
            "onnxruntime:int8-static", "openvino:fp32", "openvino:bf16", "openvino:int8")


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


class Encoderzoo:
    """(c): one backend and precision through encoderzoo's own reading, tokenization, batching
    and prediction code."""

    def __init__(self, ctx: Any, variant: str, data: Path, max_tokens: int | None = None,
                 multiple: int | None = None) -> None:
        import dataclasses

        from encoderzoo.backends import parse_backends
        from encoderzoo.inference import open_run
        from encoderzoo.session import Session

        [run] = parse_backends(variant)
        self.pipeline, self.data = ctx, data
        opened = open_run(ctx, run)
        self.tokenizer = ctx.source.tokenizer()
        batching = ctx.batching[run.backend]  # the backend's defaults
        if max_tokens is not None:
            batching = dataclasses.replace(batching, max_tokens=max_tokens)
        if multiple is not None:
            batching = dataclasses.replace(batching, multiple=multiple)
        self.session = Session(opened.backend, batching, opened.sequence)

    def run(self, texts: list[str], gold: list[int], batch_size: int) -> tuple[float, float]:
        pipeline = self.pipeline
        start = time.perf_counter()
        examples = pipeline.task.read(self.data).examples
        features = pipeline.task.encode(examples, self.tokenizer, seq_len=128,
                                        input_names=pipeline.input_names)
        outputs = self.session.run(features, progress=False)
        predicted = pipeline.task.predict(examples, features, outputs)
        seconds = time.perf_counter() - start
        return seconds, sum(p == e.label for p, e in zip(predicted, examples, strict=True)) / len(examples)


def optimum(args: argparse.Namespace) -> Worker:
    """(b): Optimum's best CPU recipe (optimum-onnx pins transformers<4.58)."""
    return Worker(args.optimum_venv, "optimum_worker.py",
                  ["--model", str(args.model), "--data", str(args.data), "--work", str(args.work / "optimum"),
                   "--batch-size", str(args.batch_size)],
                  lambda venv: make_venv(venv, "Optimum",
                                          ["optimum-onnx[onnxruntime]", "transformers<4.58"]))


def optimum_intel(args: argparse.Namespace) -> Worker:
    """(b2): optimum-intel (OpenVINO + NNCF static int8); its commands "run dataset" and
    "run sorted" are the two ways a user runs it."""
    # the pins keep pip from swapping torch for a CUDA build or taking a hub client it cannot
    # import; PyPI's torchvision (pulled in for image models) fails to import beside this torch,
    # and transformers then fails to import at all
    return Worker(args.optimum_intel_venv, "optimum_intel_worker.py",
                  ["--model", str(args.model), "--data", str(args.data), "--train", str(args.train),
                   "--work", str(args.work / "optimum-intel"), "--batch-size", str(args.batch_size),
                   "--threads", str(args.threads)],
                  lambda venv: make_venv(venv, "optimum-intel", [
                      "optimum-intel[openvino,nncf]", "datasets", "torch==2.13.0", "huggingface-hub<1.22"],
                      remove=("torchvision",)))


def _accuracy(predicted: list[int], gold: list[int]) -> float:
    return sum(p == g for p, g in zip(predicted, gold, strict=True)) / len(gold)


def runnable(variants: tuple[str, ...]) -> tuple[str, ...]:
    """The variants this machine runs at full speed (bf16 only where the CPU computes it natively)."""
    from encoderzoo.devices import Machine

    machine = Machine.here("cpu")
    return tuple(v for v in variants if "bf16" not in v or machine.native_bf16)


def prepare_encoderzoo(model: Path, data: Path, work: Path, threads: int, batch_size: int,
                       variants: tuple[str, ...]) -> Any:
    from encoderzoo.config import RunConfig
    from encoderzoo.context import RunContext
    from encoderzoo.stages import prepare
    from encoderzoo.workspace import stage_folder

    config = RunConfig(recipe="demo", out=work, checkpoint=str(model), data=(str(data),), threads=threads,
                       batch_size=batch_size, backends=variants)
    # as a stage command takes its folder: proven ours (or new), locked, marked as a run folder (so
    # that `encoderzoo infer --out` of --memory writes into it)
    with stage_folder(work) as ws:
        ctx = RunContext(config, ws)
        prepare.run(ctx)
        ctx.store.get("onnx-fused")  # with the export it is made from
    return ctx


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", type=Path, default=ROOT / "src/encoderzoo/assets/demo/model")
    parser.add_argument("--data", type=Path, default=ROOT / "src/encoderzoo/assets/demo/data/sst2-dev.tsv")
    parser.add_argument("--train", type=Path, default=ROOT.parent / "shared/data/sst2/train.tsv",
                        help="SST-2 train: optimum-intel's calibration sentences")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "race")
    parser.add_argument("--optimum-venv", type=Path, default=ROOT / ".venv-optimum")
    parser.add_argument("--optimum-intel-venv", type=Path, default=ROOT / ".venv-optimum-intel")
    parser.add_argument("--no-optimum", action="store_true")
    parser.add_argument("--no-optimum-intel", action="store_true")
    parser.add_argument("--no-ctranslate2", action="store_true")
    parser.add_argument("--ctranslate2-venv", type=Path, default=ROOT / ".venv-ctranslate2")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="encoderzoo variants to race")
    parser.add_argument("--max-tokens", default="default",
                        help="token budgets to race each variant with, e.g. default,0,2048 (0: --batch-size "
                             "rows; default: the backend's)")
    parser.add_argument("--pad-multiples", default="default",
                        help="width multiples to race each variant with, e.g. default,1,8,16")
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--no-race", action="store_true", help="only --memory and/or --bert-base")
    parser.add_argument("--bert-base", action="store_true")
    parser.add_argument("--task", choices=("classification", "embed"), default="classification",
                        help="embed: the embeddings race (benchmarks/race_embed.py)")
    parser.add_argument("--no-openvino-peer", action="store_true", help="--task embed without (e2)")
    args = parser.parse_args()
    if args.task == "embed":
        import race_embed  # benchmarks/ is this script's folder

        race_embed.race(args)
        return

    rows = [line.split("\t") for line in args.data.read_text(encoding="utf-8").splitlines()[1:]]
    texts, gold = [r[0] for r in rows], [int(r[1]) for r in rows]
    variants = runnable(tuple(args.variants.split(",")))
    pipeline = prepare_encoderzoo(args.model, args.data, args.work / "encoderzoo", args.threads,
                                  args.batch_size, variants)
    if not args.no_race:
        race(args, pipeline, variants, texts, gold)
    if args.memory:
        print("\n| encoderzoo infer | peak resident MiB | target MiB | met |\n|---|---:|---:|---|")
        for variant in variants:
            peak, target = peak_memory(args.work / "encoderzoo", variant)
            print(f"| {variant} | {peak:.0f} | {target:.0f} | {'yes' if peak <= target else 'no'} |")
    if args.bert_base:
        bert_base(args, variants)


def race(args: argparse.Namespace, pipeline: Any, variants: tuple[str, ...], texts: list[str],
         gold: list[int]) -> None:
    contenders: dict[str, Any] = {
        A: TorchPadded(args.model, args.threads, fixed=True),
        "(a') PyTorch eager fp32, padded per batch": TorchPadded(args.model, args.threads, fixed=False),
    }
    workers = []
    if not args.no_optimum:
        workers.append(optimum(args))
        contenders[B] = Way(workers[-1], "run")
    if not args.no_optimum_intel:
        workers.append(optimum_intel(args))
        contenders[f"{B2}, dataset order"] = Way(workers[-1], "run dataset")
        contenders[f"{B2}, sorted by length"] = Way(workers[-1], "run sorted")
    if not args.no_ctranslate2:
        workers.append(ctranslate2(args, "classify", args.data, 128, args.work / "ctranslate2"))
        contenders[C2] = Way(workers[-1], "run")
    for name, precision in pipeline.runs:  # what this machine runs (bf16 only with native bfloat16)
        for budget in (None if t == "default" else int(t) for t in args.max_tokens.split(",")):
            for multiple in (None if t == "default" else int(t) for t in args.pad_multiples.split(",")):
                variant = f"{name}:{precision}"
                label = (f"(c) encoderzoo {variant}"
                         + (f", max tokens {budget}" if budget is not None else "")
                         + (f", widths x{multiple}" if multiple is not None else ""))
                contenders[label] = Encoderzoo(pipeline, variant, args.data, budget, multiple)

    seconds: dict[str, list[float]] = {name: [] for name in contenders}
    accuracy: dict[str, float] = {}
    for run in range(args.runs + 1):  # the first pass warms everything up and is not counted
        for name, contender in contenders.items():
            took, accuracy[name] = contender.run(texts, gold, args.batch_size)
            if run:
                seconds[name].append(took)
        print(f"pass {run}/{args.runs} done", file=sys.stderr, flush=True)
    throughput = {name: len(texts) / statistics.median(times) for name, times in seconds.items()}
    print_table(args, pipeline, texts, throughput, accuracy)
    for worker in workers:
        print(f"\n{worker.script} ran with {worker.versions}")
        worker.close()


A, B, B2 = ("(a) PyTorch eager fp32, padded to 128", "(b) Optimum O2 + avx512_vnni int8",
            "(b2) optimum-intel NNCF int8")
C2 = "(c2) CTranslate2 int8, sorted by length"


def print_table(args: argparse.Namespace, pipeline: Any, texts: list[str], throughput: dict[str, float],
                accuracy: dict[str, float]) -> None:
    """The race table: sentences/s, ratios to (a), (b) and (b2)'s best way, accuracy, and the
    useful work done (FLOPs of the real tokens) as GFLOP/s and % of the measured int8 ceiling."""
    from encoderzoo.ceiling import ceiling
    from encoderzoo.roofline import EncoderShape

    shape = EncoderShape.of(pipeline.source.checkpoint().config)
    assert shape is not None
    lengths = [len(ids) for ids in pipeline.source.tokenizer()(texts, truncation=True,
                                                               max_length=128)["input_ids"]]
    flops_per_sentence = shape.flops(lengths) / len(texts)
    measured = ceiling(args.threads)
    int8 = measured["gflops"]["int8"]
    if measured.get("disturbed"):
        print(f"\nWARNING: other programs used the cores while the ceiling was measured (the probe had "
              f"{100 * measured['share']:.0f} % of them): the % of ceiling below is too high")
    a, b = throughput[A], throughput.get(B)
    b2 = max((v for k, v in throughput.items() if k.startswith(B2)), default=None)
    print(f"\nSST-2 dev, {len(texts)} sentences end to end, batch {args.batch_size}, {args.threads} threads, "
          f"median of {args.runs} interleaved passes; {shape.describe()}, "
          f"{flops_per_sentence / 1e6:.0f} MFLOP per sentence ({sum(lengths) / len(texts):.1f} tokens); "
          f"int8 GEMM ceiling {int8:,.0f} GFLOP/s = {int8 * 1e9 / flops_per_sentence:,.0f} sentences/s\n")
    print("| contender | sentences/s | × (a) | × (b) | × (b2) best | GFLOP/s | % of int8 ceiling "
          "| accuracy |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, value in throughput.items():
        gflops = value * flops_per_sentence / 1e9
        ratios = [f"{value / ref:.2f}×" if ref else "—" for ref in (a, b, b2)]
        print(f"| {name} | {value:.0f} | {' | '.join(ratios)} | {gflops:.0f} | {100 * gflops / int8:.0f} % | "
              f"{100 * accuracy[name]:.2f} |")


if __name__ == "__main__":
    main()
