"""infer: every prepared row through each backend and precision (see encoderzoo.inference: the
artifacts each needs are built on first use, outputs written in shards, finished runs reused),
recorded in outputs/infer.json with the model's shape and the machine's ceiling."""

from __future__ import annotations

from typing import Any

from encoderzoo.backends import get_backend
from encoderzoo.context import RunContext
from encoderzoo.fileio import write_json
from encoderzoo.inference import run_one
from encoderzoo.options import BACKENDS, BATCHING, E2E, RAY

OPTIONS = ("checkpoint", "trust_remote_code", "null_threshold", "strict_entities", *BACKENDS, *BATCHING, *RAY,
           *E2E, "resume", "shard_size")  # what it reads of RunConfig (the CLI offers these)


def run(ctx: RunContext) -> dict[str, Any]:
    for kind in dict.fromkeys(get_backend(r.backend).artifact(r.precision) for r in ctx.runs):
        if ctx.store.get(kind) is not None:  # every artifact built and verified before any run starts
            ctx.store.verify(kind)
    shape, ceilings = ctx.roofline() if ctx.config.e2e_runs else (None, None)  # probed before any loads
    runs = [run_one(ctx, run)[0] for run in ctx.runs]
    info = {"examples": len(ctx.examples()), "runs": runs,
            "model_shape": shape.to_json() if shape else None, "ceiling": ceilings}
    write_json(ctx.ws.infer_json, info)
    return info


def plan(ctx: RunContext) -> list[tuple[str, str, str]]:
    cfg = ctx.config
    kinds = [get_backend(r.backend).artifact(r.precision) for r in ctx.runs]
    stages = ctx.store.plan(kinds)
    for run in ctx.runs:
        shards = ctx.ws.output_shards(*run)
        status = "resume from shards" if cfg.resume and shards.is_dir() else "build"
        where = f"on Ray ({cfg.ray_actors} actors)" if cfg.engine == "ray" else f"on {ctx.device}"
        what = f"{run.label} {where}: {ctx.batching[run.backend].describe()}, shards of {cfg.shard_size} rows"
        stages.append(("infer", what, status))
    return stages
