"""Hugging Face optimum-intel, the strongest peer on Intel and AMD CPUs, run inside its own virtual
environment and driven by benchmarks/race.py over stdin/stdout (contender (b2)):

    OVModelForSequenceClassification(export=True) → OVQuantizer.quantize with
    OVQuantizationConfig(num_samples=300): NNCF static int8, calibrated on 300 SST-2 train
    sentences padded to 128 → inference through OVModelForSequenceClassification.

It prints one JSON line per command on its own reply channel (library output goes to stderr):
"run dataset" times one pass in dataset order with each batch padded to its longest, "run sorted"
one pass with the sentences sorted by length first (outputs put back in order)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any


def build(model: Path, train: Path, work: Path) -> Path:
    from optimum.intel import OVModelForSequenceClassification, OVQuantizationConfig, OVQuantizer
    from transformers import AutoTokenizer

    quantized = work / "int8"
    if (quantized / "openvino_model.xml").is_file():
        return quantized
    tokenizer = AutoTokenizer.from_pretrained(str(model))
    exported = OVModelForSequenceClassification.from_pretrained(str(model), export=True)
    lines = train.read_text(encoding="utf-8").splitlines()[1:301]
    from datasets import Dataset

    sentences = Dataset.from_dict({"sentence": [line.split("\t")[0] for line in lines]})
    calibration = sentences.map(
        lambda x: tokenizer(x["sentence"], padding="max_length", max_length=128, truncation=True),
        batched=True, remove_columns=["sentence"])
    quantizer = OVQuantizer.from_pretrained(exported)
    quantizer.quantize(calibration_dataset=calibration, save_directory=str(quantized),
                       ov_config=_ov_config(OVQuantizationConfig(num_samples=300)))
    tokenizer.save_pretrained(str(quantized))
    return quantized


def _ov_config(quantization: Any) -> Any:
    from optimum.intel import OVConfig

    return OVConfig(quantization_config=quantization)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # progress bars and prints go to stderr
    sys.stdout = sys.stderr
    args.work.mkdir(parents=True, exist_ok=True)
    folder = build(args.model, args.train, args.work)

    import numpy as np
    from optimum.intel import OVModelForSequenceClassification
    from transformers import AutoTokenizer

    model = OVModelForSequenceClassification.from_pretrained(
        str(folder), ov_config={"INFERENCE_NUM_THREADS": str(args.threads)})
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    rows = [line.split("\t") for line in args.data.read_text(encoding="utf-8").splitlines()[1:]]
    texts, gold = [r[0] for r in rows], [int(r[1]) for r in rows]
    import importlib.metadata as md

    versions = {name: md.version(name) for name in ("optimum-intel", "transformers", "openvino", "nncf")}
    print(json.dumps({"ready": True, **versions}), file=replies, flush=True)
    for command in sys.stdin:
        way = command.strip().removeprefix("run ")
        if way not in ("dataset", "sorted"):
            break
        start = time.perf_counter()
        order = list(range(len(texts)))
        if way == "sorted":
            lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=128)["input_ids"]]
            order = sorted(order, key=lambda i: lengths[i])
        predicted = np.zeros(len(texts), dtype=np.int64)
        for i in range(0, len(texts), args.batch_size):
            chunk = order[i:i + args.batch_size]
            inputs = tokenizer([texts[j] for j in chunk], padding=True, truncation=True, max_length=128,
                               return_tensors="pt")
            predicted[chunk] = model(**inputs).logits.argmax(-1).numpy()
        seconds = time.perf_counter() - start
        accuracy = float(np.mean(predicted == np.array(gold)))
        print(json.dumps({"seconds": seconds, "accuracy": accuracy}), file=replies, flush=True)


if __name__ == "__main__":
    main()
