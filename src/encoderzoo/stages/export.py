"""export: the checkpoint traced to ONNX (TorchScript exporter, eager attention, dynamic batch and
sequence axes) and checked against PyTorch on padded batches of the prepared examples, unless the
run folder holds the export of these exact weights and options."""

from __future__ import annotations

from typing import Any

from encoderzoo.artifacts import built_by, opened_by
from encoderzoo.bench import synthetic_features
from encoderzoo.checkpoints import load_model
from encoderzoo.console import step
from encoderzoo.context import RunContext
from encoderzoo.export import (
    OPSET,
    ParityResult,
    check_parity,
    export_onnx,
    graph_outputs,
    parity_cases,
    save_parity_cases,
    torch_outputs,
)
from encoderzoo.features import Features
from encoderzoo.fileio import read_json, write_json

EXPORTED = built_by("export")  # the artifact kind this stage builds


def parity_summary(results: list[ParityResult]) -> dict[str, Any]:
    return {"max_abs_diff": max(r.max_abs_diff for r in results), "parity": [r.to_json() for r in results]}


def current(ctx: RunContext) -> bool:
    return ctx.store.current(EXPORTED) and ctx.ws.parity_inputs.is_file()


def run(ctx: RunContext, features: Features | None = None) -> dict[str, Any]:
    """Export and check parity on the prepared features (or on `features`)."""
    store, ws = ctx.store, ctx.ws
    path = store.files(EXPORTED)[0]
    if current(ctx):
        step(f"export: reusing {path.name} (same checkpoint content and options)")
        return read_json(store.record_path(EXPORTED))  # type: ignore[no-any-return]
    inputs = "the prepared examples" if features is None else "synthetic inputs"
    features = features or ctx.features()
    if ctx.graph is not None:
        return import_graph_of(ctx, features, inputs)
    step("export: tracing to ONNX (TorchScript exporter, eager attention)")
    model = load_model(ctx.checkpoint, ctx.task, attn_implementation="eager")
    store.invalidate_derived(EXPORTED)  # built from the old export
    seconds = export_onnx(model, features, path, output_axes=ctx.task.output_axes)
    cases = parity_cases(features)
    expected = [torch_outputs(model, case.feeds, ctx.task.output_names) for case in cases]
    save_parity_cases(ws.parity_inputs, cases, expected)
    parity = check_parity(path, cases, expected, ctx.recipe.export_atol)
    record = {
        "key": store.build_key(EXPORTED),
        "sha256": store.sha256(EXPORTED),
        "opset": OPSET,
        "seconds": round(seconds, 2),
        "file": path.name,
        "bytes": path.stat().st_size,
        "parity_inputs": inputs,
        **parity_summary(parity),
    }
    write_json(store.record_path(EXPORTED), record)
    step(f"export: {path.name}, parity max |Δ| {record['max_abs_diff']:.2g}")
    return record


def import_graph_of(ctx: RunContext, features: Features, inputs: str) -> dict[str, Any]:
    """A graph made elsewhere, written into the run folder with our input and output names; its
    outputs on padded batches are what later graphs (fused, quantized) are checked against: those
    of its PyTorch model when --checkpoint is given (their difference reported, the gate judges
    the predictions), else its own."""
    from encoderzoo.graphs import import_graph

    store, graph = ctx.store, ctx.graph
    assert graph is not None
    files = store.files(EXPORTED)
    step(f"export: importing {graph.info.path} ({graph.info.format}; inputs {graph.inputs}"
         + (f"; fixed {graph.static}, every batch padded to it" if graph.static else "") + ")")
    store.invalidate_derived(EXPORTED)
    import_graph(graph.info, graph.inputs, graph.outputs, files)
    cases = parity_cases(features, graph.batch)
    if ctx.config.checkpoint is not None:
        model = load_model(ctx.checkpoint, ctx.task, attn_implementation="eager")
        expected = [torch_outputs(model, case.feeds, ctx.task.output_names) for case in cases]
        against = "PyTorch"
    else:
        expected = [{k: v for k, v in out.items() if k in ctx.task.output_names}
                    for out in graph_outputs(files[0], cases)]
        against = "the graph itself (no --checkpoint)"
    parity = check_parity(files[0], cases, expected, ctx.recipe.export_atol, strict=False)
    if not all(p.passed for p in parity):  # the gate fails every run made from it (see score);
        # the fused graph is checked against the graph it fuses
        expected = [{k: v for k, v in out.items() if k in ctx.task.output_names}
                    for out in graph_outputs(files[0], cases)]
    save_parity_cases(ctx.ws.parity_inputs, cases, expected)
    record = {"key": store.build_key(EXPORTED), "sha256": store.sha256(EXPORTED), "imported": graph.to_json(),
              "file": files[0].name, "bytes": sum(f.stat().st_size for f in files), "parity_inputs": inputs,
              "parity_against": against, **parity_summary(parity)}
    write_json(store.record_path(EXPORTED), record)
    step(f"export: {files[0].name}, max |Δ| vs {against} {record['max_abs_diff']:.2g}")
    if against == "PyTorch" and record["max_abs_diff"] > ctx.recipe.export_atol:
        step(f"export: the imported graph is not its PyTorch model's equal (max |Δ| "
             f"{record['max_abs_diff']:.2g} > {ctx.recipe.export_atol:g}): every run made from it fails "
             "its gate")
    return record


def needs_graph(ctx: RunContext) -> bool:
    return any(opened_by(name, precision).is_graph for name, precision in ctx.runs)


def ensure_graph(ctx: RunContext, force: bool = False) -> None:
    """Export (and optimize) when an ONNX backend is asked for and the run folder has no graph
    of this checkpoint yet: on the prepared features or, without them, on synthetic padded inputs."""
    from encoderzoo.stages import optimize

    if not (force or needs_graph(ctx)):
        return
    if current(ctx) and (not ctx.config.optimize or ctx.store.current(built_by("optimize"))):
        return
    features = None
    if not ctx.ws.features.is_file():
        features = synthetic_features(
            ctx.input_names,
            int(ctx.checkpoint.config.vocab_size),
            max(ctx.config.bench_settings().seq_lens),
        )
    run(ctx, features)
    if ctx.config.optimize:
        optimize.run(ctx)


def plan(ctx: RunContext) -> list[tuple[str, str, str]]:
    name = ctx.store.files(EXPORTED)[0].name
    if ctx.graph is not None:
        fixed = f", fixed {ctx.graph.static}" if ctx.graph.static else ""
        what = f"import {ctx.graph.info.path} as {name} (inputs {ctx.graph.inputs}{fixed})"
        return [("export", what, "reuse" if current(ctx) else "build")]
    return [
        ("export", f"{name}, opset {OPSET}, parity against PyTorch", "reuse" if current(ctx) else "build")
    ]
