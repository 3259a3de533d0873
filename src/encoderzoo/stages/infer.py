"""infer: every prepared row through each backend and precision, outputs written in shards as
batches finish (an interrupted run resumes from them), then the predictions; a finished run with
the same key is reused. Right after its real pass, each backend is timed on warm passes over the
data (the end-to-end figure), then freed before the next one loads."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from encoderzoo.backends import Backend, BackendContext, create_backend, get_backend, parse_backend_options
from encoderzoo.cache import make_key, recorded_key
from encoderzoo.console import progress_bar, step
from encoderzoo.context import RunContext
from encoderzoo.environment import free_memory
from encoderzoo.features import Batching, Features
from encoderzoo.fileio import read_json, write_json
from encoderzoo.infer import Shards, load_outputs, run_inference, save_outputs
from encoderzoo.roofline import achieved, ceiling_for
from encoderzoo.workspace import unlink


def backend_context(
    ctx: RunContext, name: str, precision: str, *, threads: int | None = None
) -> BackendContext:
    """What a backend is built from, locally or on a Ray actor: the artifact (built on first use
    and verified), the device, the session settings."""
    cfg = ctx.config
    kind = get_backend(name).artifact(precision)
    graph = ctx.store.get(kind)
    settings = cfg.bench_settings()
    return BackendContext(
        checkpoint=ctx.checkpoint.source,
        auto_class=ctx.task.auto_class,
        output_names=ctx.task.output_names,
        graph=graph.resolve() if graph is not None else None,
        graph_hash=ctx.store.verify(kind) if graph is not None else None,
        threads=threads or cfg.threads,
        providers=cfg.providers,
        options=parse_backend_options(cfg.backend_options).get(name, {}),
        device=ctx.device,
        explicit_device=cfg.device == "cuda",
        batch_size=max(cfg.batch_size, *settings.batch_sizes),
        seq_len=max(ctx.prepared.get("seq_len", cfg.effective_seq_len), *settings.seq_lens),
        buckets=tuple(sorted(cfg.buckets)),
        cache_dir=cfg.cache_dir,
        input_names=ctx.input_names,
        trust_remote_code=cfg.trust_remote_code,
    )


def open_backend(ctx: RunContext, name: str, precision: str) -> Backend:
    if (name, precision) not in ctx.backends:
        backend = create_backend(name, precision, backend_context(ctx, name, precision))
        graph = ctx.graph
        if graph is not None and graph.batch is not None and name != "torch":
            from encoderzoo.external import StaticBatch

            backend = StaticBatch(backend, graph.batch)
        ctx.backends[(name, precision)] = backend
    return ctx.backends[(name, precision)]


def release(ctx: RunContext, name: str, precision: str) -> None:
    """Free a backend (its session, compiled model, weights) before the next one loads, and give
    the freed heap back to the system (glibc keeps it otherwise: 940 -> 430 MiB after an ONNX
    Runtime session of base BERT)."""
    backend = ctx.backends.pop((name, precision), None)
    if hasattr(backend, "close"):
        backend.close()
    del backend
    free_memory()


def batching(ctx: RunContext, name: str) -> Batching:
    """How `name` batches: the options, with the backend's own defaults where they are unset."""
    return ctx.config.batching_for(get_backend(name).batching)


def key(ctx: RunContext, name: str, precision: str) -> str:
    cfg = ctx.config
    return make_key(
        "infer",
        backend=name,
        precision=precision,
        artifact=ctx.store.key(get_backend(name).artifact(precision)),
        prepared=ctx.prepared.get("key"),
        batching=batching(ctx, name).__dict__,
        engine=cfg.engine,
        options=parse_backend_options(cfg.backend_options).get(name, {}),
        device=ctx.device,
        providers=ctx.providers if get_backend(name).takes_providers else None,
    )


def run(ctx: RunContext) -> dict[str, Any]:
    from encoderzoo.stages.export import ensure_graph

    ensure_graph(ctx)
    shape, ceilings = None, None
    if ctx.config.e2e_runs:
        shape, ceilings = ctx.roofline  # probed before any backend loads, not beside one
    runs = [run_one(ctx, name, precision)[0] for name, precision in ctx.runs]
    info = {"examples": len(ctx.examples()), "runs": runs,
            "model_shape": shape.to_json() if shape else None, "ceiling": ceilings}
    write_json(ctx.ws.infer_json, info)
    return info


def run_one(ctx: RunContext, name: str, precision: str) -> tuple[dict[str, Any], list[Any]]:
    """Every row through one backend and precision; outputs and predictions saved. Returns what
    infer.json records of the run, and the predictions."""
    ws, cfg = ctx.ws, ctx.config
    features, examples = ctx.features(), ctx.examples()
    run_key = key(ctx, name, precision)
    record, final = ws.run_record(name, precision), ws.outputs(name, precision)
    if recorded_key(record) == run_key and final.is_file():
        step(f"infer: reusing {final.name} (same model, data and batching)")
        _, outputs = load_outputs(final)
        predictions = ctx.task.predict(examples, features, outputs)  # with this run's task options
        ctx.task.write_predictions(examples, predictions, outputs,
                                   ws.predictions(name, precision, ctx.task.predictions_suffix))
        return read_json(record) | {"reused": True}, predictions
    unlink(record, ws.infer_json, *ws.results())
    sequence_outputs = frozenset(n for n, axes in ctx.task.output_axes.items() if 1 in axes)
    shards = Shards(ws.output_shards(name, precision), run_key, len(features), cfg.shard_size)
    done = shards.start(resume=cfg.resume)
    if len(done):
        step(f"infer: resuming {name} {precision}: {len(done)} of {len(features)} rows already done")
    remaining = np.setdiff1d(np.arange(len(features)), done)
    timing: dict[str, Any] = {}
    if cfg.engine == "ray":
        start = time.perf_counter()
        settings = _on_ray(ctx, name, precision, features, remaining, shards, len(done), sequence_outputs)
        timing["pass_s"] = time.perf_counter() - start
    else:
        settings = _locally(
            ctx, name, precision, features, remaining, shards, len(done), sequence_outputs, timing
        )
    outputs = shards.collect()
    save_outputs(final, features.example_ids, outputs)
    predictions_file = ws.predictions(name, precision, ctx.task.predictions_suffix)
    predictions = ctx.task.predict(examples, features, outputs)
    ctx.task.write_predictions(examples, predictions, outputs, predictions_file)
    run = {
        "key": run_key,
        "backend": name,
        "precision": precision,
        "timing": {k: round(v, 4) if isinstance(v, float) else v for k, v in timing.items()},
        "resumed_rows": len(done),
        "windows": len(features),
        "examples": len(examples),
        "batching": batching(ctx, name).__dict__,
        "settings": settings,
        "outputs": str(final.relative_to(ws.root)),
        "predictions": str(predictions_file.relative_to(ws.root)),
    }
    write_json(record, run)
    shards.remove()
    return run, predictions


def _locally(
    ctx: RunContext,
    name: str,
    precision: str,
    features: Features,
    rows: np.ndarray,
    shards: Shards,
    done: int,
    sequence_outputs: frozenset[str],
    timing: dict[str, Any],
) -> dict[str, Any]:
    start = time.perf_counter()
    ctx.store.get(get_backend(name).artifact(precision))  # built on first use
    timing["build_s"] = time.perf_counter() - start
    start = time.perf_counter()
    backend = open_backend(ctx, name, precision)
    timing["setup_s"] = time.perf_counter() - start  # verification, session / compilation

    def on_batch(batch: np.ndarray, outputs: dict[str, np.ndarray]) -> None:
        timing.setdefault("first_batch_s", time.perf_counter() - start)
        shards.add(batch, outputs)

    start = time.perf_counter()
    run_inference(
        backend,
        features,
        batching(ctx, name),
        sequence_outputs=sequence_outputs,
        rows=rows,
        on_batch=on_batch,
        done=done,
    )
    timing["pass_s"] = time.perf_counter() - start
    if not done and ctx.config.e2e_runs:
        rate = len(features) / max(timing["pass_s"], 1e-9)
        timing["warm"] = warm_passes(ctx, backend, features, sequence_outputs, rate, batching(ctx, name))
    settings = backend.settings()
    del backend
    release(ctx, name, precision)
    return settings  # type: ignore[no-any-return]


def warm_passes(
    ctx: RunContext, backend: Backend, features: Features, sequence_outputs: frozenset[str], rate: float,
    how: Batching,
) -> dict[str, Any]:
    """The end-to-end figure: passes over the prepared rows right after the real one, the backend
    warm, timed from the first batch in to the last output out; the median of --e2e-runs passes.
    A pass takes at most --e2e-rows rows, spread evenly over the data, and no more than the real
    pass (at `rate` rows/s) ran in --e2e-seconds (at least 4 batches)."""
    cfg = ctx.config
    count = min(len(features), cfg.e2e_rows, max(4 * cfg.batch_size, int(rate * cfg.e2e_seconds)))
    rows = None
    if count < len(features):
        rows = np.unique(np.linspace(0, len(features) - 1, count).astype(np.int64))
    count = len(features) if rows is None else len(rows)
    times = []
    for _ in range(cfg.e2e_runs):
        start = time.perf_counter()
        run_inference(
            backend, features, how, sequence_outputs=sequence_outputs, rows=rows, progress=False
        )
        times.append(time.perf_counter() - start)
    median = float(np.median(times))
    shape, ceilings = ctx.roofline
    rate: dict[str, Any] = {}
    if shape is not None:  # the real tokens of the rows timed (padding is no useful work)
        lengths = features.lengths if rows is None else features.lengths[rows]
        rate = achieved(shape.flops(lengths), median, ceiling_for(ceilings, backend.precision))
    return {
        "runs": len(times),
        "rows": count,
        "median_s": median,
        "rows_per_s": count / median,
        "seconds": [round(t, 4) for t in times],
        **rate,
    }


def _on_ray(
    ctx: RunContext,
    name: str,
    precision: str,
    features: Features,
    rows: np.ndarray,
    shards: Shards,
    done: int,
    sequence_outputs: frozenset[str],
) -> dict[str, Any]:
    """One backend over a Ray cluster's actors (see encoderzoo.ray_engine), built from the same
    BackendContext as a local run."""
    from encoderzoo.ray_engine import ActorSpec, run_ray

    cfg = ctx.config
    context = backend_context(ctx, name, precision, threads=max(cfg.threads // cfg.ray_actors, 1))
    spec = ActorSpec(
        backend=name,
        precision=precision,
        context=context,
        batching=batching(ctx, name),
        seq_len=features.seq_len,
        sequence_outputs=tuple(sorted(sequence_outputs)),
    )
    step(
        f"infer: {name} {precision} on Ray, {cfg.ray_actors} actors"
        + (f" at {cfg.ray_address}" if cfg.ray_address else "")
    )
    with progress_bar() as bar:
        task = bar.add_task(f"{name} {precision} (ray)", total=len(features), completed=done)
        return run_ray(
            spec,
            features,
            rows,
            actors=cfg.ray_actors,
            address=cfg.ray_address,
            on_batch=shards.add,
            progress=lambda n: bar.advance(task, n),
        )


def plan(ctx: RunContext) -> list[tuple[str, str, str]]:
    cfg = ctx.config
    stages = []
    for name, precision in ctx.runs:
        status = (
            "resume from shards" if cfg.resume and ctx.ws.output_shards(name, precision).is_dir() else "build"
        )
        where = f"on Ray ({cfg.ray_actors} actors)" if cfg.engine == "ray" else f"on {ctx.device}"
        what = (f"{name} {precision} {where}: {batching(ctx, name).describe()}"
                f", shards of {cfg.shard_size} rows")
        stages.append(("infer", what, status))
    return stages
