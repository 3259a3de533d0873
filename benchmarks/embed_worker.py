"""A peer of the embeddings race (benchmarks/race_embed.py), run in the peer's own venv and driven
over stdin/stdout like race.py's workers: the first JSON line gives its versions; "run" times one
pass over the texts, end to end from raw text; "save PATH" writes the last pass's embeddings.

    python benchmarks/embed_worker.py KIND --model FOLDER --texts FILE --work FOLDER [--threads 2]

KIND:
  st-torch          sentence-transformers on PyTorch fp32 (e4, the baseline)
  st-onnx-int8      sentence-transformers backend="onnx", then its own
                    export_dynamic_quantized_onnx_model(model, "avx512_vnni", ...) loaded back (e1)
  st-openvino-int8  sentence-transformers backend="openvino", then its own
                    export_static_quantized_openvino_model(...) (NNCF, calibrated on its default set,
                    SST-2 train, read from a local dataset folder as no hub is reachable) loaded back (e2)
  fastembed         fastembed's TextEmbedding (ONNX Runtime) over an ONNX export of the same
                    model in a local folder (specific_model_path) (e3)
Each uses batch 32 and the race's threads; sentence-transformers sorts by length itself."""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

BATCH = 32


def sentence_transformer(args: argparse.Namespace, backend: str) -> Any:
    from sentence_transformers import SentenceTransformer

    folder = args.work / f"st-{backend}"
    if backend == "torch":
        import torch

        torch.set_num_threads(args.threads)
        return SentenceTransformer(str(args.model), device="cpu")
    if not folder.is_dir():  # the model's folder copied, then exported and quantized in it
        shutil.copytree(args.model, folder)
        model = SentenceTransformer(str(folder), backend=backend, device="cpu")
        model.save(str(folder))  # the plain export beside the checkpoint, as the docs show
        if backend == "onnx":
            from sentence_transformers import export_dynamic_quantized_onnx_model

            export_dynamic_quantized_onnx_model(model, "avx512_vnni", str(folder))
        else:
            from optimum.intel import OVQuantizationConfig
            from sentence_transformers import export_static_quantized_openvino_model

            # Its default calibration set is GLUE SST-2 train from the hub; the same rows from a
            # local dataset folder (a README's `configs` names the config and its file), offline.
            calibration = args.work / "calibration"
            calibration.mkdir(parents=True, exist_ok=True)
            lines = args.train.read_text(encoding="utf-8").splitlines()[1:]
            rows = [{"sentence": line.split("\t")[0]} for line in lines]
            (calibration / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n",
                                                     encoding="utf-8")
            (calibration / "README.md").write_text(
                "---\nconfigs:\n- config_name: sst2\n  data_files:\n  - split: train\n"
                "    path: train.jsonl\n---\n", encoding="utf-8")
            export_static_quantized_openvino_model(
                model, OVQuantizationConfig(num_samples=300), str(folder), dataset_name=str(calibration),
                dataset_config_name="sst2", dataset_split="train", column_name="sentence")
    if backend == "onnx":
        kwargs = {"file_name": "onnx/model_qint8_avx512_vnni.onnx",
                  "provider": "CPUExecutionProvider"}
    else:
        kwargs = {"file_name": "openvino/openvino_model_qint8_quantized.xml",
                  "ov_config": {"INFERENCE_NUM_THREADS": str(args.threads)}}
    return SentenceTransformer(str(folder), backend=backend, device="cpu", model_kwargs=kwargs)


class FastEmbed:
    def __init__(self, args: argparse.Namespace) -> None:
        from fastembed import TextEmbedding

        folder = args.work / "fastembed"
        if not (folder / "model.onnx").is_file():
            raise SystemExit(f"{folder}/model.onnx is missing: race_embed.py exports it first")
        self.model = TextEmbedding("sentence-transformers/all-MiniLM-L6-v2", specific_model_path=str(folder),
                                   threads=args.threads)

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        return np.stack(list(self.model.embed(texts, batch_size=batch_size)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=("st-torch", "st-onnx-int8", "st-openvino-int8", "fastembed"))
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--texts", type=Path, required=True)
    parser.add_argument("--train", type=Path, default=None)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    texts = json.loads(args.texts.read_text(encoding="utf-8"))
    args.work.mkdir(parents=True, exist_ok=True)
    if args.kind == "fastembed":
        model: Any = FastEmbed(args)
        encode = model.encode
        libraries = ("fastembed", "onnxruntime")
    else:
        model = sentence_transformer(args, args.kind.split("-")[1])
        libraries = ("sentence-transformers", "transformers", "torch", "onnxruntime", "openvino", "optimum",
                     "optimum-intel", "nncf")

        def encode(batch: list[str], batch_size: int) -> np.ndarray:
            return np.asarray(model.encode(batch, batch_size=batch_size, convert_to_numpy=True,
                                           normalize_embeddings=False), dtype=np.float32)
    found = {}
    for name in libraries:
        with contextlib.suppress(Exception):  # not installed in this venv
            found[name] = version(name)
    print(json.dumps({"versions": found}), flush=True)
    last = None
    for line in sys.stdin:
        command = line.strip()
        if command == "run":
            start = time.perf_counter()
            last = encode(texts, BATCH)
            print(json.dumps({"seconds": time.perf_counter() - start, "accuracy": 0.0}), flush=True)
        elif command.startswith("save "):
            assert last is not None
            np.save(command[5:], last)
            print(json.dumps({"seconds": 0.0, "accuracy": 0.0}), flush=True)


if __name__ == "__main__":
    main()
