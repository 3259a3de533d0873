"""optimize: ONNX Runtime's transformer optimizer fuses the export (attention, LayerNorm, GELU)
in a child process with time and memory limits; the fused graph is checked against PyTorch
again, and the unfused one stays in use when the optimizer cannot fuse it."""

from __future__ import annotations

from typing import Any

from encoderzoo.artifacts import built_by
from encoderzoo.cache import file_hash
from encoderzoo.console import step
from encoderzoo.context import RunContext
from encoderzoo.errors import ArtifactError
from encoderzoo.export import check_parity, load_parity_cases
from encoderzoo.fileio import read_json, write_json
from encoderzoo.optimize import optimize_onnx
from encoderzoo.stages.export import EXPORTED, parity_summary
from encoderzoo.stages.export import current as exported

FUSED = built_by("optimize")  # the artifact kind this stage builds


def run(ctx: RunContext) -> dict[str, Any]:
    store, cfg = ctx.store, ctx.config
    source, fused = store.files(EXPORTED)[0], store.files(FUSED)[0]
    if not source.is_file():
        raise ArtifactError(f"{source}: no exported model; run `encoderzoo export` first")
    if store.current(FUSED):
        step("optimize: reusing the result for this export")
        return read_json(store.record_path(FUSED))  # type: ignore[no-any-return]
    store.verify(EXPORTED)
    store.invalidate_derived(FUSED)  # built from the old fusion
    fused.unlink(missing_ok=True)
    step(f"optimize: ONNX Runtime transformer optimizer (at most {cfg.optimize_timeout:g} s)")
    result = optimize_onnx(
        source,
        fused,
        model_type=ctx.family.ort_model_type,
        config=ctx.checkpoint.config,
        timeout_s=cfg.optimize_timeout,
    )
    record: dict[str, Any] = {
        "key": store.build_key(FUSED),
        "optimizer": "onnxruntime.transformers",
        "model_type": ctx.family.ort_model_type,
        "fused": result.fused,
        "fused_ops": result.fused_ops,
        "seconds": round(result.seconds, 2),
        "reason": result.reason,
    }
    if result.fused:
        cases, expected = load_parity_cases(ctx.ws.parity_inputs)
        parity = check_parity(fused, cases, expected, ctx.recipe.export_atol)
        record |= {"file": fused.name, "sha256": file_hash(fused), **parity_summary(parity)}
        shown = ", ".join(f"{op} {n}" for op, n in result.fused_ops.items()) or "nothing"
        step(f"optimize: fused {shown}; parity max |Δ| {record['max_abs_diff']:.2g}")
    else:
        record["file"] = source.name
        step(f"optimize: {result.reason}; the unfused graph {source.name} stays in use")
    write_json(store.record_path(FUSED), record)
    return record


def plan(ctx: RunContext) -> list[tuple[str, str, str]]:
    if not ctx.config.optimize:
        return []
    what = f"ONNX Runtime optimizer ({ctx.family.ort_model_type}), at most {ctx.config.optimize_timeout:g} s"
    return [("optimize", what, "reuse" if exported(ctx) and ctx.store.current(FUSED) else "build")]
