"""A stand-in for an Ascend device runner: reads the per-sample input files that
`encoderzoo prepare --format bin` wrote, runs an ONNX model one sample at a time with ONNX
Runtime, and writes the outputs the way ais_bench (`<i>_<k>.bin` or `.npy` in a dated
subfolder) or msame (`<i>_output_<k>.bin`) does."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def run_folder(model: Path, bin_dir: Path, out: Path, layout: str = "ais_bench", npy: bool = False) -> Path:
    import onnxruntime as ort

    info = json.loads((bin_dir / "bin.json").read_text())
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    target = out / "2026_11_22-06_00_00" if layout == "ais_bench" else out  # ais_bench: a dated folder
    target.mkdir(parents=True, exist_ok=True)
    for i in range(info["samples"]):
        feeds = {name: np.fromfile(bin_dir / name / f"{i}.bin", dtype=info["dtype"])
                 .reshape(info["shape"]).astype(np.int64) for name in info["inputs"]}
        for k, array in enumerate(session.run(None, feeds)):
            if layout == "msame":
                array.astype(np.float32).tofile(target / f"{i}_output_{k}.bin")
            elif npy:
                np.save(target / f"{i}_{k}.npy", array)
            else:
                array.astype(np.float32).tofile(target / f"{i}_{k}.bin")
    if layout == "ais_bench":
        (target / "sumary.json").write_text(json.dumps({"NPU_compute_time": {}}))  # as ais_bench leaves it
    return out
