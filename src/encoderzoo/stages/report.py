"""report: report.json, report.md and the throughput plot, from what the stages recorded (see
encoderzoo.report), headed by what was run on which checkpoint and how much memory it took."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from encoderzoo.checkpoints import fingerprint
from encoderzoo.console import step
from encoderzoo.context import RunContext
from encoderzoo.environment import environment, peak_memory
from encoderzoo.fileio import read_json
from encoderzoo.report import write_report
from encoderzoo.version import __version__
from encoderzoo.workspace import Workspace

OPTIONS = ("checkpoint",)  # what it reads of RunConfig


def run(ctx: RunContext) -> dict[str, Any]:
    checkpoint, recipe, ws = ctx.source.checkpoint(), ctx.recipe, ctx.ws
    location = checkpoint.location
    if checkpoint.is_local and Path(location).is_relative_to(ws.root.resolve()):
        location = str(Path(location).relative_to(ws.root.resolve()))  # the run folder moves
    report = {
        "encoderzoo": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "recipe": {
            "name": recipe.name,
            "description": recipe.description,
            "task": recipe.task,
            "family": ctx.family.name,
            "seq_len": ctx.prepared.get("seq_len", ctx.config.effective_seq_len),
            "reference": dict(recipe.reference),
            "gate": ctx.config.effective_gate,
            "notes": list(recipe.notes),
        },
        "checkpoint": {
            "location": location,
            "local": checkpoint.is_local,
            "random_weights": ctx.source.random_weights,
            "model_type": checkpoint.model_type,
            "architectures": getattr(checkpoint.config, "architectures", None),
            "stored_dtype": str(getattr(checkpoint.config, "dtype", None) or "unknown").removeprefix(
                "torch."
            ),
            "fingerprint": fingerprint(checkpoint),
            "revision": checkpoint.revision,
        },
        "config": ctx.config.to_json(),
        "peak_memory": peak_memory(),  # of this command (all of `run`'s stages)
    }
    report |= write_report(ws, report, environment(ctx.config.threads))
    step(f"report: {ws.report_md.name}, {ws.report_json.name} written")
    return report


HEADER = ("encoderzoo", "created", "recipe", "checkpoint", "config", "peak_memory")  # what run() heads with


def refresh(ws: Workspace) -> bool:
    """report.json and report.md again over what the stages recorded, under the header the report
    already has (what ran on which checkpoint, with which options): after `score --outputs` added
    a row. False when there is no report yet."""
    if not ws.report_json.is_file():
        return False
    recorded = read_json(ws.report_json)
    threads = int(recorded.get("config", {}).get("threads") or 0)
    write_report(ws, {k: recorded[k] for k in HEADER if k in recorded},
                 recorded.get("environment") or environment(threads))
    step(f"report: {ws.report_md.name}, {ws.report_json.name} written")
    return True


def plan(ctx: RunContext) -> list[tuple[str, str, str]]:
    ws = ctx.ws
    return [("report", f"{ws.report_md.name}, {ws.report_json.name}, {ws.plot_png.name}", "build")]
