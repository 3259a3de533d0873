"""Graphs exported outside encoderzoo, run through `--onnx` / `--openvino`, by hand (about 6
minutes on 2 cores; the dynamo export needs `pip install onnxscript` in .venv):

    .venv/bin/python benchmarks/graphs_elsewhere.py [--out runs/elsewhere] [--limit N]

From the demo's SST-2 classifier it makes (1) a `torch.onnx.export(..., dynamo=True)` graph with
dynamic axes, (2) a seed-style static graph (TorchScript, batch 1 x 128 tokens, inputs
input1/2/3, output "output"), (3) an OpenVINO IR converted from (1); then runs each with the
demo's tokenizer and no checkpoint, and (1) once more beside its checkpoint, and prints the
accuracy of every row (the demo's PyTorch accuracy is 88.76)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "src" / "encoderzoo" / "assets" / "demo" / "model"


def export_graphs(folder: Path) -> dict[str, Path]:
    import openvino as ov
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from encoderzoo.export import positional

    warnings.simplefilter("ignore")
    model = AutoModelForSequenceClassification.from_pretrained(DEMO, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(DEMO)
    encoded = tokenizer(["a fine film", "bad"], padding="max_length", max_length=128, return_tensors="pt")

    # positional inputs and the logits alone, as a user wraps a model for torch.onnx.export
    wrapper = positional(model, ("input_ids", "attention_mask", "token_type_ids"), ("logits",))
    args = (encoded["input_ids"], encoded["attention_mask"], encoded["token_type_ids"])
    folder.mkdir(parents=True, exist_ok=True)
    graphs = {"dynamo": folder / "dynamo.onnx", "static": folder / "static-b1-s128.onnx",
              "ir": folder / "ir" / "model.xml"}
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence", max=512)
    torch.onnx.export(wrapper, args, str(graphs["dynamo"]), dynamo=True, external_data=False,
                      input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["logits"],
                      dynamic_shapes=(({0: batch, 1: seq},) * 3,))  # one spec per input of *inputs
    torch.onnx.export(wrapper, tuple(a[:1] for a in args), str(graphs["static"]), dynamo=False,
                      opset_version=14, input_names=["input1", "input2", "input3"], output_names=["output"])
    ov.save_model(ov.convert_model(str(graphs["dynamo"])), str(graphs["ir"]), compress_to_fp16=False)
    return graphs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "elsewhere")
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    graphs = export_graphs(args.out / "graphs")
    runs = {
        "dynamo, alone": ["--onnx", str(graphs["dynamo"]), "--tokenizer", str(DEMO)],
        "dynamo + checkpoint": ["--onnx", str(graphs["dynamo"]), "--checkpoint", str(DEMO)],
        "static b1 s128, alone": ["--onnx", str(graphs["static"]), "--tokenizer", str(DEMO),
                                  "--backends", "onnxruntime:fp32,openvino:fp32"],
        "IR, alone": ["--openvino", str(graphs["ir"]), "--tokenizer", str(DEMO)],
    }
    print("| graph | backend | precision | accuracy | agreement | compared with | gate |")
    print("|---|---|---|---:|---:|---|---|")
    for label, options in runs.items():
        out = args.out / label.replace(" ", "").replace(",", "-").replace("+", "-")
        limit = ["--limit", str(args.limit)] if args.limit else []
        command = [sys.executable, "-m", "encoderzoo", "run", "demo", *options, *limit, "--no-bench",
                   "--out", str(out), "--overwrite"]
        subprocess.run(command, check=False, stdout=subprocess.DEVNULL)
        report = json.loads((out / "report.json").read_text())
        for r in report["accuracy"]:
            agreement = f"{100 * r['vs_torch']['agreement']:.2f} %" if r["vs_torch"] else "-"
            print(f"| {label} | {r['backend']} | {r['precision']} | {100 * r['metrics']['accuracy']:.2f} "
                  f"| {agreement} | {report['compared_with']} | {'pass' if r['gate_passed'] else 'FAIL'} |")


if __name__ == "__main__":
    main()
