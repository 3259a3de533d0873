"""(c2) CTranslate2, a user's other fast CPU pick for encoders, run in its own venv
(.venv-ctranslate2) and driven by benchmarks/race.py over stdin/stdout like the other workers:

    ct2 converter (TransformersConverter, int8 weights) → ctranslate2.Encoder(compute_type="int8")
    → forward_batch(token ids, token_type_ids) → the task's head in numpy:
      classify  logits = pooler_output · Wᵀ + b (BertForSequenceClassification's classifier)
      embed     mean of last_hidden_state over each text's real tokens (sentence-transformers'
                pooling for all-MiniLM-L6-v2; the race compares cosines, so no normalization)

Sentences are sorted by length and cut into batches of --batch-size (the best way to run it; the
outputs are put back in order). The first JSON line gives its versions; "run" times one pass end
to end from raw text (tokenization included) and answers {"seconds", "accuracy"}; "save PATH"
writes the last pass's outputs (.npy)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np


def convert(model: Path, out: Path) -> Path:
    """The CTranslate2 model (int8 weights), converted once."""
    if (out / "model.bin").is_file():
        return out
    from ctranslate2.converters import TransformersConverter

    TransformersConverter(str(model)).convert(str(out), quantization="int8", force=True)
    return out


def classifier(model: Path) -> tuple[np.ndarray, np.ndarray]:
    """The sequence-classification head's weight and bias, read from the checkpoint."""
    from safetensors.numpy import load_file

    weights = load_file(str(model / "model.safetensors"))
    return weights["classifier.weight"].astype(np.float32), weights["classifier.bias"].astype(np.float32)


class Runner:
    def __init__(self, args: argparse.Namespace) -> None:
        import ctranslate2
        from transformers import AutoTokenizer

        self.encoder = ctranslate2.Encoder(str(convert(args.model, args.work / "ct2-int8")), device="cpu",
                                           compute_type="int8", intra_threads=args.threads)
        self.tokenizer = AutoTokenizer.from_pretrained(str(args.model))
        self.task, self.batch, self.seq_len = args.task, args.batch_size, args.seq_len
        self.head = classifier(args.model) if args.task == "classify" else None

    def outputs(self, texts: list[str]) -> np.ndarray:
        encoded = self.tokenizer(texts, truncation=True, max_length=self.seq_len)
        ids, types = encoded["input_ids"], encoded.get("token_type_ids")
        order = sorted(range(len(texts)), key=lambda i: len(ids[i]))
        result: list[np.ndarray] = [np.empty(0)] * len(texts)
        for start in range(0, len(order), self.batch):
            rows = order[start:start + self.batch]
            out = self.encoder.forward_batch([ids[i] for i in rows],
                                             token_type_ids=[types[i] for i in rows] if types else None)
            if self.head is not None:
                pooled = np.asarray(out.pooler_output)
                values = pooled @ self.head[0].T + self.head[1]
            else:
                hidden = np.asarray(out.last_hidden_state)
                lengths = np.array([len(ids[i]) for i in rows])
                mask = (np.arange(hidden.shape[1])[None, :] < lengths[:, None]).astype(np.float32)
                values = (hidden * mask[..., None]).sum(1) / lengths[:, None]
            for i, row in zip(rows, values, strict=True):
                result[i] = row
        return np.stack(result).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("task", choices=("classify", "embed"))
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--texts", type=Path, required=True, help="a JSON list, or a TSV: sentence, label")
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # library prints go to stderr
    sys.stdout = sys.stderr
    args.work.mkdir(parents=True, exist_ok=True)
    if args.texts.suffix == ".json":
        texts, gold = json.loads(args.texts.read_text(encoding="utf-8")), None
    else:
        rows = [line.split("\t") for line in args.texts.read_text(encoding="utf-8").splitlines()[1:]]
        texts, gold = [r[0] for r in rows], np.array([int(r[1]) for r in rows])
    runner = Runner(args)
    found: dict[str, Any] = {}
    for name in ("ctranslate2", "transformers", "tokenizers"):
        with contextlib.suppress(Exception):
            found[name] = version(name)
    print(json.dumps({"ready": True, **found}), file=replies, flush=True)
    last = None
    for line in sys.stdin:
        command = line.strip()
        if command == "run":
            start = time.perf_counter()
            last = runner.outputs(texts)
            seconds = time.perf_counter() - start
            accuracy = float((last.argmax(1) == gold).mean()) if gold is not None else 0.0
            print(json.dumps({"seconds": seconds, "accuracy": accuracy}), file=replies, flush=True)
        elif command.startswith("save "):
            assert last is not None
            np.save(command[5:], last)
            print(json.dumps({"seconds": 0.0, "accuracy": 0.0}), file=replies, flush=True)


if __name__ == "__main__":
    main()
