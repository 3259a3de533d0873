"""How each built-in artifact kind is built (see encoderzoo.kinds for the declarations): the graph
exported from the model's PyTorch module (or imported, a graph made elsewhere), checked against
PyTorch on padded batches of real rows; the graph fused by ONNX Runtime's transformer optimizer
in a child process with time and memory limits, checked again; the reduced-precision kinds made
by a quantize method. A builder writes its files and returns its record; the store keys it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from encoderzoo import quantize
from encoderzoo.artifacts import BuildOptions, BuildStep
from encoderzoo.cache import file_hash, versions
from encoderzoo.checkpoints import load_model
from encoderzoo.console import step
from encoderzoo.export import (
    OPSET,
    ParityResult,
    check_parity,
    export_onnx,
    graph_outputs,
    load_parity_cases,
    parity_cases,
    save_parity_cases,
    torch_outputs,
)
from encoderzoo.features import Features
from encoderzoo.first_token import first_token_swap
from encoderzoo.graphs import import_graph
from encoderzoo.model_source import ModelSource
from encoderzoo.optimize import optimize_onnx
from encoderzoo.roofline import EncoderShape
from encoderzoo.tasks.base import Task


def parity_summary(results: list[ParityResult]) -> dict[str, Any]:
    return {"max_abs_diff": max(r.max_abs_diff for r in results), "parity": [r.to_json() for r in results]}


def _rows_described(job: BuildStep) -> str:
    return "the prepared examples" if job.options.prepared else "synthetic inputs"


# -- the graph ---------------------------------------------------------------------------------

def graph_key(model: ModelSource, task: Task, options: BuildOptions) -> Mapping[str, Any]:
    """What the graph depends on beside the model: how it is exported, or which graph was imported."""
    if model.graph is not None:
        return {"imported": model.graph.key, "outputs": task.output_axes,
                "libraries": versions("onnx", "openvino")}
    return {"model_kind": task.model_kind, "opset": OPSET, "outputs": task.output_axes,
            "inputs": model.input_names, "libraries": versions("torch", "transformers", "onnx"),
            # the first-token last layer is kept only within this tolerance (encoderzoo.first_token)
            "first_token_atol": options.export_atol}


def graph_files(model: ModelSource) -> tuple[str, ...]:
    """An OpenVINO IR made elsewhere stands for the export as it is (.xml and .bin)."""
    if model.graph is not None and model.graph.info.format == "openvino":
        return ("model.xml", "model.bin")
    return ("model.onnx",)


def export_graph(job: BuildStep) -> dict[str, Any]:
    """The checkpoint traced to ONNX (TorchScript exporter, eager attention, dynamic batch and
    sequence axes) and checked against PyTorch on padded batches of the rows; a graph made
    elsewhere is imported instead (see `import_graph_of`)."""
    features = job.rows()
    if job.model.graph is not None:
        return import_graph_of(job, features)
    path = job.files[0]
    step("export: tracing to ONNX (TorchScript exporter, eager attention)")
    model = load_model(job.model.checkpoint(), job.task, attn_implementation="eager")
    names, atol = job.task.output_names, job.options.export_atol
    cases = parity_cases(features)
    expected = [torch_outputs(model, case.feeds, names) for case in cases]  # the untouched model's
    swap, first_token = first_token_swap(model, job.task.model_kind, [c.feeds for c in cases], expected, atol,
                                         lambda m, feeds: torch_outputs(m, feeds, names))
    shape = EncoderShape.of(job.model.config)
    if swap is not None and shape is not None:  # at the rows' mean length
        first_token["flops_saved"] = round(shape.saved(round(float(features.sequence_lengths().mean()))), 4)
    try:
        seconds = export_onnx(model, features, path, output_axes=job.task.output_axes)
    finally:
        if swap is not None:
            swap.undo()
    save_parity_cases(job.parity, cases, expected)
    parity = check_parity(path, cases, expected, atol)
    record = {"opset": OPSET, "seconds": round(seconds, 2), "file": path.name, "bytes": path.stat().st_size,
              "parity_inputs": _rows_described(job), "first_token": first_token, **parity_summary(parity)}
    slim = "last layer for the first token only" if first_token["applied"] else "full last layer"
    step(f"export: {path.name} ({slim}), parity max |Δ| {record['max_abs_diff']:.2g}")
    return record


def import_graph_of(job: BuildStep, features: Features) -> dict[str, Any]:
    """A graph made elsewhere, written with our input and output names; its outputs on padded
    batches are what later graphs (fused, quantized) are checked against: those of its PyTorch
    model when there is one (beyond the export tolerance, every run made from it fails its gate),
    else its own."""
    graph, files, task = job.model.graph, job.files, job.task
    assert graph is not None
    step(f"export: importing {graph.info.path} ({graph.info.format}; inputs {graph.inputs}"
         + (f"; fixed {graph.static}, every batch padded to it" if graph.static else "") + ")")
    import_graph(graph.info, graph.inputs, graph.outputs, files)
    cases = parity_cases(features, graph.batch)
    own = [{k: v for k, v in out.items() if k in task.output_names} for out in graph_outputs(files[0], cases)]
    if job.model.pytorch:
        model = load_model(job.model.checkpoint(), task, attn_implementation="eager")
        expected, against = [torch_outputs(model, c.feeds, task.output_names) for c in cases], "PyTorch"
    else:
        expected, against = own, "the graph itself (no --checkpoint)"
    atol = job.options.export_atol
    parity = check_parity(files[0], cases, expected, atol, strict=False)
    save_parity_cases(job.parity, cases, expected if all(p.passed for p in parity) else own)
    record = {"imported": graph.to_json(), "file": files[0].name,
              "bytes": sum(f.stat().st_size for f in files), "parity_inputs": _rows_described(job),
              "parity_against": against, **parity_summary(parity)}
    step(f"export: {files[0].name}, max |Δ| vs {against} {record['max_abs_diff']:.2g}")
    if against == "PyTorch" and record["max_abs_diff"] > atol:
        step(f"export: the imported graph is not its PyTorch model's equal (max |Δ| "
             f"{record['max_abs_diff']:.2g} > {atol:g}): every run made from it fails its gate")
    return record


# -- the fused graph ---------------------------------------------------------------------------

def fused_key(model: ModelSource, task: Task, options: BuildOptions) -> Mapping[str, Any]:
    return {"model_type": model.family.ort_model_type, "optimize": options.optimize,
            "timeout": options.optimize_timeout, "libraries": versions("onnxruntime")}


def fuse_graph(job: BuildStep) -> dict[str, Any]:
    """ONNX Runtime's transformer optimizer in a child process with time and memory limits; the
    fused graph is checked against the parity cases again. Where the optimizer is not asked
    for, cannot fuse or overruns, the graph it was made from stands for it."""
    source, fused = job.source, job.files[0]
    assert source is not None
    fused.unlink(missing_ok=True)
    model_type = job.model.family.ort_model_type
    an_ir = job.model.graph is not None and job.model.graph.info.format == "openvino"
    if not job.options.optimize or an_ir:
        reason = "was not asked for (--no-optimize)" if not job.options.optimize else "has no IR to fuse"
        return {"stands_for": job.kind.made_from, "optimizer": "onnxruntime.transformers",
                "model_type": model_type, "fused": False, "fused_ops": {}, "reason": reason,
                "file": source.name}
    step(f"optimize: ONNX Runtime transformer optimizer (at most {job.options.optimize_timeout:g} s)")
    result = optimize_onnx(source, fused, model_type=model_type, config=job.model.checkpoint().config,
                           timeout_s=job.options.optimize_timeout)
    record: dict[str, Any] = {"optimizer": "onnxruntime.transformers", "model_type": model_type,
                              "fused": result.fused, "fused_ops": result.fused_ops,
                              "seconds": round(result.seconds, 2), "reason": result.reason}
    if not result.fused:
        step(f"optimize: {result.reason}; the unfused graph {source.name} stays in use")
        return record | {"stands_for": job.kind.made_from, "file": source.name}
    cases, expected = load_parity_cases(job.parity)
    parity = check_parity(fused, cases, expected, job.options.export_atol)
    record |= {"file": fused.name, "sha256": file_hash(fused), **parity_summary(parity)}
    shown = ", ".join(f"{op} {n}" for op, n in result.fused_ops.items()) or "nothing"
    step(f"optimize: fused {shown}; parity max |Δ| {record['max_abs_diff']:.2g}")
    return record


# -- reduced precisions ------------------------------------------------------------------------

QUANTIZE_LIBRARIES = ("onnxruntime", "onnx", "openvino", "nncf")
Method = Callable[..., dict[str, Any]]  # (src, dst, *, calibration, exclude): see encoderzoo.quantize


def quantized_key(calibrated: bool) -> Callable[[ModelSource, Task, BuildOptions], Mapping[str, Any]]:
    def key(model: ModelSource, task: Task, options: BuildOptions) -> Mapping[str, Any]:
        return {"calibration": options.rows_key if calibrated else None,
                "size": options.calibration_size if calibrated else None,
                "libraries": versions(*QUANTIZE_LIBRARIES)}

    return key


def quantized(method: Method) -> Callable[[BuildStep], dict[str, Any]]:
    """A builder from a quantize method: calibrated on rows spread over the data (one row per
    item: NNCF's peak memory grows with the item's size, base BERT on SQuAD windows 2.0 GB with
    single rows, 4.6 GB with batches of 8) when the kind is calibrated."""

    def build(job: BuildStep) -> dict[str, Any]:
        assert job.source is not None
        calibration = None
        if job.kind.calibrated:
            calibration = quantize.calibration_feeds(job.rows(), job.options.calibration_size, batch_size=1)
            step(f"quantize: {job.kind.name} from {job.source.name}, calibrated on {len(calibration)} rows")
        else:
            step(f"quantize: {job.kind.name} from {job.source.name}")
        record = method(job.source, job.files[0], calibration=calibration, exclude=job.exclude)
        if calibration is not None:
            record["calibration"] = ("prepared examples spread over the data" if job.options.prepared
                                     else "synthetic inputs")
        return record

    return build
