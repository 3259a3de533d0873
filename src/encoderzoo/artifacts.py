"""What backends run, declared once per kind: its files, what it is built from, whether it is
calibrated or triage-able, how it is built; and one store that keys, builds, reuses and verifies
them in a run folder.

An artifact is reused only while the key recorded when it was built equals the key of what it
would be built from now (see encoderzoo.cache), and opened only after its bytes are checked
against the SHA-256 recorded then. Adding a kind: one `register_artifact(...)` below and its
builder (a quantize method with the signature of encoderzoo.quantize.ort_dynamic)."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from encoderzoo.cache import file_hash, files_hash, make_key, recorded, versions
from encoderzoo.errors import ArtifactError
from encoderzoo.export import OPSET
from encoderzoo.registry import Registry

if TYPE_CHECKING:
    from encoderzoo.context import RunContext

QUANTIZE_LIBRARIES = ("onnxruntime", "onnx", "openvino", "nncf")


@dataclass(frozen=True)
class ArtifactKind:
    name: str
    description: str
    files: tuple[str, ...] = ()  # under the run folder's model/; the first is what a runtime opens
    built_from: str | None = None  # the kind it is made from (None: the checkpoint itself)
    stage: str = "quantize"  # what builds it: "export", "optimize" or "quantize"
    method: str | None = None  # quantize kinds: "module:function" (src, dst, *, calibration, exclude)
    calibrated: bool = False  # built with calibration rows from the prepared data
    triageable: bool = False  # triage can rebuild it with some nodes left in float
    quantized_ops: tuple[str, ...] | None = None  # the operators it quantizes (None: the method's default)
    otherwise: str = ""  # what to try when triage cannot bring it back above its gate
    opened_by: tuple[str, ...] = ()  # the backend:precision runs that open it
    revision: int = 1  # raised whenever encoderzoo changes how it builds the kind: old files rebuild

    @property
    def is_graph(self) -> bool:
        """A file a runtime opens (everything but the PyTorch checkpoint)."""
        return self.stage != "checkpoint"

    @property
    def entry(self) -> str | None:
        """Its entry in the record (quantize.json holds one per kind)."""
        return self.name if self.stage == "quantize" else None


ARTIFACTS: Registry[ArtifactKind] = Registry("artifact kind")


def register_artifact(kind: ArtifactKind) -> ArtifactKind:
    if kind.built_from is not None and kind.built_from not in ARTIFACTS:
        raise ValueError(f"artifact {kind.name!r} is built from unknown {kind.built_from!r}")
    taken = [run for k in ARTIFACTS.values() for run in k.opened_by if run in kind.opened_by]
    if taken:
        raise ValueError(f"artifact {kind.name!r}: {taken[0]} already opens another artifact")
    return ARTIFACTS.register(kind.name, kind)


def built_by(stage: str) -> str:
    """The artifact kind a stage (export, optimize) builds."""
    return next(k.name for k in ARTIFACTS.values() if k.stage == stage)


def opened_by(backend: str, precision: str) -> ArtifactKind:
    """The artifact a backend runs at a precision."""
    run = f"{backend}:{precision}"
    for kind in ARTIFACTS.values():
        if run in kind.opened_by:
            return kind
    raise ValueError(f"no artifact kind is opened by {run}; declare it in encoderzoo.artifacts")


def derived_from(name: str) -> list[ArtifactKind]:
    """Every kind built (directly or not) from `name`: stale once `name` is rebuilt."""
    found = [k for k in ARTIFACTS.values() if k.built_from == name]
    return found + [d for k in found for d in derived_from(k.name)]


BLOCKS_INSTEAD = ("onnxruntime:int8-block, whose activations are quantized per block of 128 channels of each "
                  "token instead of with one scale per tensor")
register_artifact(ArtifactKind("checkpoint", "the PyTorch module itself", stage="checkpoint",
                               opened_by=("torch:fp32", "torch:bf16", "torch:fp16")))
register_artifact(ArtifactKind(
    "onnx", "the exported graph, unfused (other runtimes fuse it their own way)", ("model.onnx",),
    built_from="checkpoint", stage="export", opened_by=("openvino:fp32", "openvino:bf16")))
register_artifact(ArtifactKind(
    "onnx-fused", "the graph fused by ONNX Runtime's transformer optimizer (the export where it cannot "
    "fuse)", ("model.optimized.onnx",), built_from="onnx", stage="optimize", opened_by=("onnxruntime:fp32",)))
register_artifact(ArtifactKind(
    "onnx-int8", "the fused graph, int8 by ONNX Runtime dynamic quantization", ("model.int8.onnx",),
    built_from="onnx-fused", method="encoderzoo.quantize:ort_dynamic", triageable=True,
    otherwise=BLOCKS_INSTEAD, opened_by=("onnxruntime:int8",)))
register_artifact(ArtifactKind(
    "onnx-int8-static", "the exported graph, int8 QDQ by ONNX Runtime static quantization",
    ("model.int8-static.onnx",), built_from="onnx", method="encoderzoo.quantize:ort_static", calibrated=True,
    triageable=True, quantized_ops=("MatMul", "Gemm"), otherwise=BLOCKS_INSTEAD,
    opened_by=("onnxruntime:int8-static",),
    revision=2))  # 2: ranges from every calibration row (1 kept only the rows after the last group of 8)
register_artifact(ArtifactKind(
    "onnx-int8-block", "the fused graph, int8 with weights and activations quantized per block of 128 "
    "input channels (ONNX Runtime MatMulNBits 8-bit)", ("model.int8-block.onnx",), built_from="onnx-fused",
    method="encoderzoo.quantize:ort_block", triageable=True, quantized_ops=("MatMul", "Attention"),
    opened_by=("onnxruntime:int8-block",)))
register_artifact(ArtifactKind(
    "onnx-fp16", "the fused graph with float16 weights and compute (float32 inputs and outputs), for GPUs",
    ("model.fp16.onnx",), built_from="onnx-fused", method="encoderzoo.quantize:ort_fp16",
    opened_by=("onnxruntime:fp16",)))
register_artifact(ArtifactKind(
    "openvino-int8", "an OpenVINO IR quantized by NNCF", ("openvino-int8.xml", "openvino-int8.bin"),
    built_from="onnx", method="encoderzoo.quantize:openvino_int8", calibrated=True,
    opened_by=("openvino:int8",)))


class ArtifactStore:
    """The artifacts of one run folder: where they are, their keys, whether they are current,
    building them on demand and verifying them before a runtime opens them."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.folder = ctx.ws.model_dir

    def files(self, name: str) -> list[Path]:
        graph = self.ctx.graph
        if name == "onnx" and graph is not None and graph.info.format == "openvino":
            return [self.folder / "model.xml", self.folder / "model.bin"]  # an imported IR stands for it
        return [self.folder / f for f in ARTIFACTS[name].files]

    def record_path(self, name: str) -> Path:
        """model/<stage>.json: how the artifact was built (quantize.json holds one entry per kind)."""
        return self.ctx.ws.record(ARTIFACTS[name].stage)

    def recorded(self, name: str, field: str) -> Any:
        kind = ARTIFACTS[name]
        return recorded(self.record_path(name), field, entry=kind.entry)

    # -- keys ----------------------------------------------------------------------------------

    def build_key(self, name: str) -> str:
        """The key over everything the artifact is built from (see stages for export/optimize)."""
        ctx, kind = self.ctx, ARTIFACTS[name]
        if kind.stage == "export" and ctx.graph is not None:  # imported, not exported
            return make_key("imported", graph=ctx.graph.key, outputs=ctx.task.output_axes,
                            parity=ctx.hashes["model"], libraries=versions("onnx", "openvino"))
        if kind.stage == "export":
            return make_key(
                "export",
                model=ctx.hashes["model"],
                kind=ctx.task.model_kind,
                opset=OPSET,
                outputs=ctx.task.output_axes,
                inputs=ctx.input_names,
                libraries=versions("torch", "transformers", "onnx"),
            )
        if kind.stage == "optimize":
            return make_key(
                "optimize",
                export=self.build_key("onnx"),
                model_type=ctx.family.ort_model_type,
                timeout=ctx.config.optimize_timeout,
                libraries=versions("onnxruntime"),
            )
        assert kind.built_from is not None
        calibration = ctx.prepared.get("key", "synthetic") if ctx.ws.features.is_file() else "synthetic"
        return make_key(
            "quantize",
            kind=name,
            revision=kind.revision,
            source=self.key(kind.built_from),
            calibration=calibration if kind.calibrated else None,
            size=ctx.config.calibration_size if kind.calibrated else None,
            libraries=versions(*QUANTIZE_LIBRARIES),
        )

    def key(self, name: str) -> str:
        """What identifies the artifact in use: its build key, with the nodes triage left in float
        (those replace the plain artifact); the fused graph's is the export's when it fell back."""
        kind = ARTIFACTS[name]
        if kind.stage == "checkpoint":
            return str(self.ctx.hashes["model"])
        if name == "onnx-fused" and self.opened("onnx-fused") == self.files("onnx")[0]:
            return self.build_key("onnx")
        if kind.stage != "quantize":
            return self.build_key(name)
        return make_key(
            "quantized", key=self.build_key(name), excluded=self.recorded(name, "excluded_nodes") or []
        )

    def current(self, name: str) -> bool:
        """Built from exactly what it would be built from now, and its files are there."""
        kind = ARTIFACTS[name]
        files = self.files(name) if kind.stage != "optimize" else []  # an unfused fallback has none
        return self.recorded(name, "key") == self.build_key(name) and all(f.is_file() for f in files)

    # -- use -----------------------------------------------------------------------------------

    def opened(self, name: str) -> Path | None:
        """The file a runtime opens for `name` without building anything: None for the checkpoint
        or when the export it comes from is not there."""
        kind = ARTIFACTS[name]
        if kind.stage == "checkpoint":
            return None
        if kind.stage == "optimize":
            fused = self.files(name)[0]
            if self.ctx.config.optimize and fused.is_file() and self.current(name):
                return fused
            return self.opened("onnx")
        path = self.files(name)[0]
        return path if path.is_file() else None

    def get(self, name: str) -> Path | None:
        """The file for `name`, quantized first when it is not current (the graphs it comes
        from must have been exported; see stages.export.ensure_graph)."""
        kind = ARTIFACTS[name]
        if kind.stage != "quantize" or self.opened(kind.built_from or "") is None:
            return self.opened(name)
        if not self.current(name):
            self.build(name)
        return self.files(name)[0]

    def build(self, name: str, exclude: Sequence[str] = ()) -> dict[str, Any]:
        from encoderzoo.stages.quantize import build

        return build(self.ctx, ARTIFACTS[name], exclude)

    def method(self, name: str) -> Any:
        module, _, function = str(ARTIFACTS[name].method).partition(":")
        return getattr(importlib.import_module(module), function)

    def sha256(self, name: str) -> str:
        """SHA-256 of the artifact (`sha256sum` prints the same for one file; over an IR's files)."""
        files = self.files(name)
        if name == "onnx-fused" and self.opened(name) != files[0]:
            files = self.files("onnx")
        return file_hash(files[0]) if len(files) == 1 else files_hash(files)

    def verify(self, name: str) -> str:
        """Before a runtime opens it: its bytes must be those recorded when it was built (SHA-256,
        streamed); without a record, the ONNX file is parsed and checked. Returns its SHA-256."""
        from encoderzoo.export import check_onnx_file

        path = self.opened(name)
        assert path is not None
        source = "onnx" if name == "onnx-fused" and path == self.files("onnx")[0] else name
        expected = self.recorded(source, "sha256")
        if expected is None:
            if path.suffix == ".onnx":
                check_onnx_file(path)
            return self.sha256(source)
        missing = [f for f in self.files(source) if not f.is_file()]
        if missing:
            raise ArtifactError(
                f"{missing[0]}: missing; run the stage that builds it again (or delete the "
                "run folder's model/ and rerun)"
            )
        if self.sha256(source) != expected:
            raise ArtifactError(
                f"{path}: not the file encoderzoo built and checked (its SHA-256 changed: "
                "truncated, corrupt or replaced); export it again (`encoderzoo export`, or "
                "delete it and rerun)"
            )
        return str(expected)

    def invalidate_derived(self, name: str) -> None:
        """Delete everything built from `name`, before `name` is rebuilt."""
        for kind in derived_from(name):
            for path in [*self.files(kind.name), self.record_path(kind.name)]:
                path.unlink(missing_ok=True)
