"""bench: throughput and latency swept over batch sizes x sequence lengths on full-length
synthetic inputs, every run's session measured side by side at each point (see encoderzoo.bench)."""

from __future__ import annotations

from typing import Any

from encoderzoo.bench import sweep
from encoderzoo.context import RunContext
from encoderzoo.environment import environment
from encoderzoo.fileio import write_json
from encoderzoo.inference import open_run, release, work_shape
from encoderzoo.options import BACKENDS, BENCH, MODEL

OPTIONS = (*MODEL, *BACKENDS, "seq_len", *BENCH, "optimize", "optimize_timeout")  # what it reads of RunConfig


def run(ctx: RunContext) -> dict[str, Any]:
    settings = ctx.config.bench_settings()
    ctx.check_seq_lens("--seq-lens", settings.seq_lens)
    shape, ceilings = ctx.roofline()
    sessions = [open_run(ctx, run) for run in ctx.runs]  # artifacts built on first use
    shapes = [work_shape(ctx, run) for run in ctx.runs]
    rows = sweep(sessions, ctx.input_names, int(ctx.source.config.vocab_size), settings, shapes, ceilings,
                 row=ctx.row_shape)
    used = {str(run): s.settings() for run, s in zip(ctx.runs, sessions, strict=True)}
    del sessions
    for run_ in ctx.runs:
        release(ctx, run_)
    info = {
        "settings": settings.__dict__ | {"inputs": "full-length synthetic sequences, no padding"},
        "backends": used,
        "environment": environment(ctx.config.threads),
        "model_shape": shape.to_json() if shape else None,
        "ceiling": ceilings,
        "rows": [r.to_json() for r in rows],
    }
    write_json(ctx.ws.benchmark_json, info)
    return info


def wanted(ctx: RunContext) -> bool:
    return ctx.config.bench


def plan(ctx: RunContext) -> list[tuple[str, str, str]]:
    if not ctx.config.bench:
        return []
    settings = ctx.config.bench_settings()
    sizes, lengths = ",".join(map(str, settings.batch_sizes)), ",".join(map(str, settings.seq_lens))
    what = (f"batch sizes {sizes} x seq {lengths}, {settings.warmup} warm-up, >= {settings.min_runs} runs "
            f"and {settings.min_seconds:g} s per point")
    return [("bench", what, "build")]
