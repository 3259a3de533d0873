"""The layout of a run folder (where every stage reads and writes) and its life: `run` builds it
as a hidden partial folder, locked against a second run, renamed into place when complete."""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from encoderzoo.errors import ConfigError


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


def partial_folder(out: Path) -> Path:
    """Where `run` builds `out` until it is complete (kept when a run is interrupted)."""
    return out.with_name(f".{out.name}.partial")


LOCK_NAME = ".lock"


@contextmanager
def locked(partial: Path) -> Iterator[None]:
    """One run at a time per output folder."""
    partial.mkdir(parents=True, exist_ok=True)
    with (partial / LOCK_NAME).open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"{partial}: another encoderzoo run is writing this folder; wait for it "
                              "or pass another --out") from None
        yield


def clear(partial: Path) -> None:
    """Empty the partial folder (its lock stays: this process holds it)."""
    for child in partial.iterdir():
        if child.name != LOCK_NAME:
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()


def has_work(partial: Path) -> bool:
    return any(p.name != LOCK_NAME for p in partial.iterdir())


def seed_from(out: Path, partial: Path) -> None:
    """Hard-link an earlier run's model artifacts (and random checkpoint) into the new run;
    their recorded keys decide whether they are reused. Every write replaces a file whole, so
    the earlier run's files are never changed through the links."""
    for folder in (Workspace(out).onnx.parent, Workspace(out).random_checkpoint):
        if not folder.is_dir():
            continue
        for source in folder.rglob("*"):
            target = partial / source.relative_to(out)
            if source.is_file() and not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(source, target)
                except OSError:
                    shutil.copy2(source, target)
