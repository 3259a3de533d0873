"""Run inside Infinity's own venv (benchmarks/serve_load.py builds it): a model folder as
Infinity's optimum engine wants it on a CPU — the checkpoint's files, its ONNX export by Optimum
(model.onnx) and Optimum's dynamic avx512_vnni int8 of it (model_quantized.onnx, which Infinity
prefers on a CPU and then optimizes itself). The ONNX files lie at the folder's top and Infinity
is started in the folder with --model-id . (infinity-emb 0.0.78 passes optimum a local folder's
file with its folder prefix, which optimum 2.1 does not find).

    python benchmarks/infinity_model.py SOURCE_FOLDER TARGET_FOLDER classification|embedding

The tokenizer's model_max_length is set to 128, the run's --seq-len: the same truncation on both
sides (unset, Infinity's warm-up sends 514 tokens to a model of 512 positions and stops).

The folder is built beside TARGET_FOLDER under a temporary name and renamed into place when
complete, with a marker file; an existing TARGET_FOLDER is replaced only when it holds that
marker (a folder this script made), and refused otherwise.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

MARKER = ".made-by-infinity_model"


def main(source: Path, target: Path, kind: str) -> None:
    if target.exists() and not (target / MARKER).is_file():
        raise SystemExit(f"{target}: exists and was not made by this script; choose another TARGET_FOLDER")
    target.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        build(source, building / "model", kind)
        (building / "model" / MARKER).write_text("", encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)  # it holds the marker: a folder this script made
        (building / "model").rename(target)
    finally:
        shutil.rmtree(building, ignore_errors=True)  # made above: ours
    print(sorted(p.name for p in target.glob("*.onnx")))


def build(source: Path, target: Path, kind: str) -> None:
    from optimum.onnxruntime import (
        ORTModelForFeatureExtraction,
        ORTModelForSequenceClassification,
        ORTQuantizer,
    )
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    shutil.copytree(source, target)
    settings = target / "tokenizer_config.json"
    config = json.loads(settings.read_text(encoding="utf-8"))
    settings.write_text(json.dumps(config | {"model_max_length": 128}, indent=2), encoding="utf-8")
    model_class = ORTModelForSequenceClassification if kind == "classification" else \
        ORTModelForFeatureExtraction
    model_class.from_pretrained(str(source), export=True).save_pretrained(str(target))
    quantizer = ORTQuantizer.from_pretrained(str(target), file_name="model.onnx")
    config = AutoQuantizationConfig.avx512_vnni(is_static=False, per_channel=True)
    quantizer.quantize(save_dir=str(target), quantization_config=config)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
