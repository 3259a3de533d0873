"""triage: for each triage-able int8 artifact below its gate, rank its quantized nodes by the
drift they add on rows of the data, then search greedily, confirming each step with the task
metric: of the most drifting nodes still quantized, the one whose return to float recovers the
metric most stays in float, until the gate (metrics and agreement with torch fp32) passes (see
encoderzoo.triage.greedy). Each step records the metric regained; what each node left in float
costs in speed is then measured side by side (see `costs`)."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

import numpy as np

from encoderzoo import quantize, triage
from encoderzoo.artifacts import ARTIFACTS, ArtifactKind
from encoderzoo.backends import Run, get_backend
from encoderzoo.console import step
from encoderzoo.context import RunContext
from encoderzoo.evaluation import evaluate, gate, predictions_of
from encoderzoo.fileio import read_json, temporary_folder, write_json
from encoderzoo.inference import release, run_one
from encoderzoo.options import GATE
from encoderzoo.scoring import gate_failures

OPTIONS = (*GATE, "calibration_size", "threads")  # what it reads of RunConfig

TRIAGE_ROWS = 32  # rows (spread over the data) the drift of each quantized node is measured on


def triageable(name: str, precision: str) -> bool:
    return ARTIFACTS[get_backend(name).artifact(precision)].triageable


def run(ctx: RunContext) -> dict[str, Any]:
    """Rescores at the end; returns what triage.json records (empty when nothing needed it)."""
    ws = ctx.ws
    accuracy = read_json(ws.accuracy_json)
    reference_run = ctx.reference_run  # the run the others were gated against
    compared = reference_run.label
    failing = [r for r in accuracy["rows"] if not r["gate_passed"]
               and triageable(r["backend"], r["precision"])
               and Run(r["backend"], r["precision"]) != reference_run]
    if not failing:
        return {}
    features, examples = ctx.features(), ctx.examples()
    feeds = quantize.calibration_feeds(
        features, min(TRIAGE_ROWS, ctx.config.calibration_size), batch_size=1
    )  # rows one at a time: bounded memory
    torch_metrics = next(
        r["metrics"] for r in accuracy["rows"] if (r["backend"], r["precision"]) == reference_run
    )
    _, torch_predictions = predictions_of(ctx, reference_run)
    records = read_json(ws.infer_json)
    results = {}
    for row in failing:
        name, precision = row["backend"], row["precision"]
        kind = ARTIFACTS[get_backend(name).artifact(precision)]
        assert kind.made_from is not None
        source, path = ctx.store.opened(kind.made_from), ctx.store.files(kind.name)[0]
        assert source is not None
        step(f"triage: ranking the quantized nodes of {path.name}")
        ranking = triage.rank_nodes(
            source, path, feeds, op_types=kind.quantized_ops, threads=ctx.config.threads
        )

        def trial(excluded: list[str], name: str = name, precision: str = precision,
                  kind_name: str = kind.name) -> dict[str, Any]:
            """Re-quantize without `excluded`, run and score it: one attempt."""
            ctx.store.build(kind_name, excluded)
            release(ctx, Run(name, precision))
            entry, predictions = run_one(ctx, Run(name, precision))
            records["runs"] = [
                entry if (r["backend"], r["precision"]) == (name, precision) else r for r in records["runs"]
            ]
            metrics = ctx.task.score(examples, predictions).metrics
            vs_torch = {"agreement": ctx.task.agreement(predictions, torch_predictions)}
            failures = gate_failures(metrics, torch_metrics, compared, vs_torch, gate(ctx), compared)
            step(f"triage: {name} {precision} with {len(excluded)} nodes in float: "
                 + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
            return {"float_nodes": len(excluded), "excluded": list(excluded), "metrics": metrics, **vs_torch,
                    "gate_passed": not failures, "failures": failures}

        before = {"metrics": row["metrics"], "agreement": (row.get("vs_torch") or {}).get("agreement"),
                  "gate_passed": False}
        wanted = gate(ctx)
        search = triage.greedy(ranking, trial, before, lambda a, wanted=wanted: triage.closeness(
            a, torch_metrics, wanted.min_agreement, wanted.keep))
        chosen = search.chosen
        if search.attempts and search.attempts[-1]["excluded"] != chosen["excluded"]:
            trial(chosen["excluded"])  # the store holds the last one tried: back to the chosen one
        speed = costs(ctx, kind, source, search.steps) if search.steps else {}
        results[f"{name}:{precision}"] = {
            "before": row["metrics"],
            "candidates": len(ranking),
            "search": f"greedy, {triage.WIDTH} candidates (the most drifting) tried per step, "
                      "the one the task metric recovers most with kept",
            "attempts": search.attempts,
            "steps": search.steps,
            "float_nodes": chosen["excluded"],
            "recovered": chosen["gate_passed"],
            "otherwise": "" if chosen["gate_passed"] else kind.otherwise,
            "final": chosen,
            "worst": [d.to_json() for d in ranking[:10]],
            "speed": speed,
        }
    write_json(ws.infer_json, records)
    write_json(ws.triage_json, results)
    evaluate(ctx)  # rescored with the triaged artifacts
    return results


def costs(ctx: RunContext, kind: ArtifactKind, source: Path, steps: list[dict[str, Any]]) -> dict[str, Any]:
    """What each node left in float costs: the float graph, the artifact fully quantized and
    after each step, rebuilt side by side in a folder made here and timed in turns on one batch
    of the data (see encoderzoo.triage.side_by_side). Adds rows_per_s, speed_lost_pct (against
    the fully quantized artifact) and step_cost_pct (against the step before) to each step."""
    features = ctx.features()
    count = min(len(features), ctx.config.batch_size)
    rows = np.unique(np.linspace(0, len(features) - 1, num=count).astype(int))
    feeds = features.take(rows)
    step(f"triage: timing the float graph, the int8 one and each step side by side on {len(rows)} rows")
    with temporary_folder(ctx.ws.model_dir / "triage-timing") as folder:
        graphs = [source]
        for i, excluded in enumerate([[], *(s["excluded"] for s in steps)]):
            graphs.append(folder / f"{i}.onnx")
            with contextlib.redirect_stdout(sys.stderr):
                ctx.store.build_copy(kind.name, [graphs[-1]], excluded)
        rates = triage.side_by_side(graphs, feeds, ctx.config.threads)
    float_rate, quantized = rates[0], rates[1]
    for s, rate, was in zip(steps, rates[2:], rates[1:-1], strict=True):
        s.update(rows_per_s=rate, speed_lost_pct=100.0 * (1.0 - rate / quantized),
                 step_cost_pct=100.0 * (1.0 - rate / was))
    return {"rows": len(rows), "width": int(next(iter(feeds.values())).shape[1]),
            "float_rows_per_s": float_rate, "quantized_rows_per_s": quantized, "final_rows_per_s": rates[-1]}


def wanted(ctx: RunContext) -> bool:
    """Only when asked for and a gate failed."""
    return ctx.config.triage and not read_json(ctx.ws.accuracy_json)["gate_passed"]


def plan(ctx: RunContext) -> list[tuple[str, str, str]]:
    if ctx.config.triage and any(triageable(n, p) for n, p in ctx.runs):
        return [("triage", "only for an int8 model below its gate", "if needed")]
    return []
