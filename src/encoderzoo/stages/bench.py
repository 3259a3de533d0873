"""bench: throughput and latency swept over batch sizes x sequence lengths on full-length
synthetic inputs, every backend measured side by side at each point (see encoderzoo.bench)."""

from __future__ import annotations

from typing import Any

from encoderzoo.bench import sweep
from encoderzoo.context import RunContext
from encoderzoo.environment import environment
from encoderzoo.fileio import write_json


def run(ctx: RunContext) -> dict[str, Any]:
    from encoderzoo.stages.export import ensure_graph
    from encoderzoo.stages.infer import open_backend, release

    settings = ctx.config.bench_settings()
    ctx.check_seq_lens("--seq-lens", settings.seq_lens)
    ensure_graph(ctx)
    shape, ceilings = ctx.roofline
    backends = [open_backend(ctx, n, p) for n, p in ctx.runs]
    rows = sweep(backends, ctx.input_names, int(ctx.checkpoint.config.vocab_size), settings,
                 shape, ceilings)
    used = {f"{b.name}:{b.precision}": b.settings() for b in backends}
    del backends
    for name, precision in ctx.runs:
        release(ctx, name, precision)
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


def plan(ctx: RunContext) -> list[tuple[str, str, str]]:
    if not ctx.config.bench:
        return []
    settings = ctx.config.bench_settings()
    sizes, lengths = ",".join(map(str, settings.batch_sizes)), ",".join(map(str, settings.seq_lens))
    what = (
        f"batch sizes {sizes} x seq {lengths}, {settings.warmup} warm-up, >= {settings.min_runs} runs "
        f"and {settings.min_seconds:g} s per point"
    )
    return [("bench", what, "build")]
