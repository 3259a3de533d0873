"""The layout of a run folder: where every stage reads and writes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Workspace:
    root: Path

    @property
    def examples(self) -> Path:
        return self.root / "data" / "examples.jsonl"

    @property
    def features(self) -> Path:
        return self.root / "data" / "features.npz"

    @property
    def prepare_json(self) -> Path:
        return self.root / "data" / "prepare.json"

    @property
    def random_checkpoint(self) -> Path:
        return self.root / "checkpoint"

    @property
    def onnx(self) -> Path:
        return self.root / "model" / "model.onnx"

    @property
    def onnx_optimized(self) -> Path:
        return self.root / "model" / "model.optimized.onnx"

    @property
    def onnx_int8(self) -> Path:
        return self.root / "model" / "model.int8.onnx"

    @property
    def onnx_int8_static(self) -> Path:
        return self.root / "model" / "model.int8-static.onnx"

    @property
    def onnx_fp16(self) -> Path:
        return self.root / "model" / "model.fp16.onnx"

    @property
    def openvino_int8(self) -> Path:
        return self.root / "model" / "openvino-int8.xml"

    def quantized(self, kind: str) -> Path:
        """The int8 artifact of a kind named in backends.ARTIFACTS."""
        return {"onnx-int8": self.onnx_int8, "onnx-int8-static": self.onnx_int8_static,
                "openvino-int8": self.openvino_int8, "onnx-fp16": self.onnx_fp16}[kind]

    @property
    def quantize_json(self) -> Path:
        return self.root / "model" / "quantize.json"

    def derived_graphs(self) -> list[Path]:
        """Everything built from the export, stale once it is redone."""
        return [self.onnx_optimized, self.optimize_json, self.onnx_int8, self.onnx_int8_static,
                self.onnx_fp16, self.openvino_int8, self.openvino_int8.with_suffix(".bin"),
                self.quantize_json]

    @property
    def parity_inputs(self) -> Path:
        return self.root / "model" / "parity.npz"

    @property
    def export_json(self) -> Path:
        return self.root / "model" / "export.json"

    @property
    def optimize_json(self) -> Path:
        return self.root / "model" / "optimize.json"

    @property
    def infer_json(self) -> Path:
        return self.root / "outputs" / "infer.json"

    def outputs(self, backend: str, precision: str) -> Path:
        return self.root / "outputs" / f"{backend}-{precision}.npz"

    def output_shards(self, backend: str, precision: str) -> Path:
        """Outputs of an unfinished inference run, in shards (see infer.Shards)."""
        return self.root / "outputs" / f"{backend}-{precision}.shards"

    def run_record(self, backend: str, precision: str) -> Path:
        """What infer recorded of one finished run (its key among it)."""
        return self.root / "outputs" / f"{backend}-{precision}.json"

    def predictions(self, backend: str, precision: str, suffix: str) -> Path:
        return self.root / "predictions" / f"{backend}-{precision}{suffix}"

    @property
    def triage_json(self) -> Path:
        return self.root / "triage.json"

    @property
    def accuracy_json(self) -> Path:
        return self.root / "accuracy.json"

    @property
    def benchmark_json(self) -> Path:
        return self.root / "benchmark.json"

    @property
    def report_json(self) -> Path:
        return self.root / "report.json"

    @property
    def report_md(self) -> Path:
        return self.root / "report.md"

    @property
    def plot_png(self) -> Path:
        return self.root / "throughput.png"

    def results(self) -> list[Path]:
        """What score, triage, bench and report wrote: stale once inference runs again."""
        return [self.accuracy_json, self.triage_json, self.report_json, self.report_md, self.plot_png]

    @property
    def bin_dir(self) -> Path:
        """`prepare --format bin`: one file per sample and input, as the reference tools read."""
        return self.root / "bin"
