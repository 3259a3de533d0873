"""Every prepared row of a run through one backend and precision: the session opened over the
artifact (built on first use, verified), outputs written in shards as batches finish (an
interrupted run resumes from them), then the predictions; a finished run with the same key is
reused. Right after its real pass, the session is timed on warm passes over the data (the
end-to-end figure), then freed before the next one loads. Locally or on a Ray cluster's actors,
through the same session (see encoderzoo.session)."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import numpy as np

from encoderzoo import rebatch
from encoderzoo.artifacts import ARTIFACTS, MODEL
from encoderzoo.backends import BackendContext, Run, get_backend
from encoderzoo.cache import make_key, recorded_key, versions
from encoderzoo.console import progress_bar, step
from encoderzoo.context import RunContext
from encoderzoo.environment import cpu_identity, free_memory
from encoderzoo.features import Features
from encoderzoo.fileio import read_json, write_json
from encoderzoo.infer import Shards, load_outputs, save_outputs
from encoderzoo.ray_engine import ActorSpec, run_ray
from encoderzoo.roofline import EncoderShape, achieved, ceiling_for
from encoderzoo.session import Session, open_session
from encoderzoo.verdict import batch_dependence
from encoderzoo.workspace import unlink


def backend_context(ctx: RunContext, run: Run, *, threads: int | None = None,
                    build: bool = True) -> BackendContext:
    """What a backend is built from, locally or on a Ray actor: the artifact (built on first use
    unless `build` is False, and verified), the device, the session settings."""
    cfg = ctx.config
    kind = get_backend(run.backend).artifact(run.precision)
    graph = ctx.store.get(kind) if build else ctx.store.opened(kind)
    settings = cfg.bench_settings()
    return BackendContext(
        checkpoint=ctx.source.checkpoint().source if ctx.source.pytorch else "",
        auto_class=ctx.task.auto_class, output_names=ctx.task.output_names,
        graph=graph.resolve() if graph is not None else None,
        graph_hash=ctx.store.verify(kind) if graph is not None else None,
        threads=threads or cfg.threads, providers=tuple(ctx.providers),
        options=cfg.backend_settings.get(run.backend, {}), device=ctx.device,
        explicit_device=cfg.device == "cuda", batch_size=max(cfg.batch_size, *settings.batch_sizes),
        seq_len=max(ctx.prepared.get("seq_len", cfg.effective_seq_len), *settings.seq_lens),
        buckets=tuple(sorted(cfg.buckets)), cache_dir=cfg.cache_dir, input_names=ctx.input_names,
        row_shape=ctx.row_shape,
        trust_remote_code=cfg.trust_remote_code)


def static_batch(ctx: RunContext, run: Run) -> int | None:
    """The batch size a graph made elsewhere is fixed to (PyTorch takes any)."""
    return ctx.graph.batch if ctx.graph is not None and run.backend != "torch" else None


def open_run(ctx: RunContext, run: Run) -> Session:
    """The session of `run`, opened once per command."""
    if run not in ctx.backends:
        ctx.backends[run] = open_session(run.backend, run.precision, backend_context(ctx, run),
                                         ctx.batching[run.backend], ctx.task.output_axes,
                                         static_batch(ctx, run))
    return ctx.backends[run]


def work_shape(ctx: RunContext, run: Run) -> EncoderShape | None:
    """The model's shape as `run` computes it, for its FLOP count: a graph whose export slimmed
    the last layer to the first token (encoderzoo.first_token) does less than the PyTorch module."""
    shape = ctx.roofline()[0]
    kind = ARTIFACTS[get_backend(run.backend).artifact(run.precision)]
    while kind.made_from not in (None, MODEL):  # back to the kind made from the model itself
        kind = ARTIFACTS[kind.made_from]
    if shape is None or kind.made_from is None:
        return shape
    first_token = ctx.store.recorded(kind.name, "first_token") or {}
    return replace(shape, first_token=bool(first_token.get("applied")))


def release(ctx: RunContext, run: Run) -> None:
    """Free a session (its runtime, compiled model, weights) before the next one loads, and give
    the freed heap back to the system (glibc keeps it otherwise: 940 -> 430 MiB after an ONNX
    Runtime session of base BERT)."""
    session = ctx.backends.pop(run, None)
    if session is not None:
        session.close()
    del session
    free_memory()


def key(ctx: RunContext, run: Run) -> str:
    spec = get_backend(run.backend)
    return make_key("infer", backend=run.backend, precision=run.precision,
                    artifact=ctx.store.key(spec.artifact(run.precision)), prepared=ctx.prepared.get("key"),
                    batching=ctx.batching[run.backend].__dict__, engine=ctx.config.engine,
                    options=ctx.config.backend_settings.get(run.backend, {}), device=ctx.device,
                    providers=ctx.providers if spec.takes_providers else None, cpu=_cpu(),
                    runtime=versions(spec.library) if spec.library else None, revision=spec.revision,
                    rebatch=rebatch.SETTINGS)  # the record holds the check's judgement


def _cpu() -> list[Any]:
    """The CPU a run's outputs were computed on: what a backend does depends on its instructions
    (bf16 or AMX kernels where it has them, OpenVINO's per-token int8 activations where it has VNNI),
    so a run folder carried to another machine computes its outputs again."""
    model, flags = cpu_identity()
    return [model, sorted(flags)]


def run_one(ctx: RunContext, run: Run) -> tuple[dict[str, Any], list[Any]]:
    """Every row through one backend and precision; outputs and predictions saved. Returns what
    infer.json records of the run, and the predictions."""
    ws, cfg, (name, precision) = ctx.ws, ctx.config, run
    features, examples = ctx.features(), ctx.examples()
    run_key = key(ctx, run)
    record, final = ws.run_record(name, precision), ws.outputs(name, precision)
    predictions_file = ws.predictions(name, precision, ctx.task.predictions_suffix)
    claimed = ARTIFACTS[get_backend(name).artifact(precision)].batch_invariant  # the kind's claim
    if recorded_key(record) == run_key and final.is_file():
        step(f"infer: reusing {final.name} (same model, data and batching)")
        _, outputs = load_outputs(final)
        predictions = ctx.task.predict(examples, features, outputs)  # with this run's task options
        ctx.task.write_predictions(examples, predictions, outputs, predictions_file)
        entry = read_json(record)
        steady = invariant(claimed, entry.get("rebatch"))
        return entry | {"reused": True, "batch_invariant": steady}, predictions
    unlink(record, ws.infer_json, *ws.results())
    shards = Shards(ws.output_shards(name, precision), run_key, len(features), cfg.shard_size)
    done = shards.start(resume=cfg.resume)
    if len(done):
        step(f"infer: resuming {name} {precision}: {len(done)} of {len(features)} rows already done")
    remaining = np.setdiff1d(np.arange(len(features)), done)
    timing: dict[str, Any] = {}
    measured = None  # encoderzoo.rebatch's check (not made on Ray: no session here)
    if cfg.engine == "ray":
        start = time.perf_counter()
        settings = _on_ray(ctx, run, features, remaining, shards, len(done))
        timing["pass_s"] = time.perf_counter() - start
    else:
        settings, measured = _locally(ctx, run, features, remaining, shards, len(done), timing)
    outputs = shards.collect()
    save_outputs(final, features.example_ids, outputs)
    predictions = ctx.task.predict(examples, features, outputs)
    ctx.task.write_predictions(examples, predictions, outputs, predictions_file)
    entry = {"key": run_key, "backend": name, "precision": precision,
             "batch_invariant": invariant(claimed, measured), "rebatch": measured,
             "timing": {k: round(v, 4) if isinstance(v, float) else v for k, v in timing.items()},
             "resumed_rows": len(done), "windows": len(features), "examples": len(examples),
             "batching": ctx.batching[name].__dict__, "settings": settings,
             "outputs": str(final.relative_to(ws.root)),
             "predictions": str(predictions_file.relative_to(ws.root))}
    write_json(record, entry)
    shards.remove()
    return entry, predictions


def invariant(claimed: bool, measured: dict[str, Any] | None) -> bool:
    """What the verdict reads: the kind's claim that a row's outputs do not depend on the rows
    batched with it, as far as this machine's measurement (encoderzoo.rebatch) bears it out."""
    return claimed and (measured is None or bool(measured["within"]))


def _locally(ctx: RunContext, run: Run, features: Features, rows: np.ndarray, shards: Shards, done: int,
             timing: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The pass over `rows` in this process (timed into `timing`), then encoderzoo.rebatch's
    check of the rows it ran. Returns the session's settings and the check (None: no rows ran)."""
    start = time.perf_counter()
    ctx.store.get(get_backend(run.backend).artifact(run.precision))  # built on first use
    timing["build_s"] = time.perf_counter() - start
    start = time.perf_counter()
    session = open_run(ctx, run)
    timing["setup_s"] = time.perf_counter() - start  # verification, session / compilation

    together = rebatch.Collector(rebatch.sample_rows(features, rows))

    def on_batch(batch: np.ndarray, outputs: dict[str, np.ndarray]) -> None:
        timing.setdefault("first_batch_s", time.perf_counter() - start)
        shards.add(batch, outputs)
        together(batch, outputs)

    start = time.perf_counter()
    session.run(features, rows=rows, on_batch=on_batch, done=done)
    timing["pass_s"] = time.perf_counter() - start
    if not done and ctx.config.e2e_runs:
        rate = len(features) / max(timing["pass_s"], 1e-9)
        timing["warm"] = warm_passes(ctx, session, features, rate, work_shape(ctx, run))
    measured = None
    in_pass = int(getattr(session.backend, "parallel", 1)) <= 1  # its single batches take the pass's path
    if together.seen and in_pass:
        measured = rebatch.measure(session, features, together.seen)
    settings = session.settings()
    del session
    release(ctx, run)
    if together.seen and not in_pass:  # a dataset path of its own: single batches take another
        measured = _rebatch(ctx, run, features, together.seen)
    if measured is not None and not measured["within"]:
        step(f"infer: {run.label}: {batch_dependence(measured)} (over {rebatch.TOLERANCE:g}): "
             "it will not be deployed")
    return settings, measured


def _rebatch(ctx: RunContext, run: Run, features: Features,
             together: dict[int, dict[str, np.ndarray]]) -> dict[str, Any]:
    """encoderzoo.rebatch's check of a backend whose whole datasets take another path than its
    single batches (OpenVINO's queue of streams), after its pass: sessions that run single
    batches only, a fresh one for each rebatch.CHUNK rows (in the pass's session, its 52 widths
    raised openvino:int8's infer peak on the demo from 515 to 783 MiB, target 545: the runtime
    keeps state per input shape and per compiled model). Another backend is checked in the pass's
    own session: reloading it cost torch up to 40 MB of peak."""
    context = replace(backend_context(ctx, run), batches_only=True)
    rows, parts = sorted(together), []
    for start in range(0, len(rows), rebatch.CHUNK):
        session = open_session(run.backend, run.precision, context, ctx.batching[run.backend],
                               ctx.task.output_axes, static_batch(ctx, run))
        try:
            chunk = {row: together[row] for row in rows[start:start + rebatch.CHUNK]}
            parts.append(rebatch.measure(session, features, chunk))
        finally:
            session.close()
            del session
            free_memory()
    return rebatch.merged(parts)


def warm_passes(ctx: RunContext, session: Session, features: Features, rate: float,
                shape: EncoderShape | None) -> dict[str, Any]:
    """The end-to-end figure: passes over the prepared rows right after the real one, the session
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
        session.run(features, rows=rows, progress=False)
        times.append(time.perf_counter() - start)
    median = float(np.median(times))
    ceilings = ctx.roofline()[1]
    achieved_rate: dict[str, Any] = {}
    if shape is not None:  # the real tokens of the rows timed (padding is no useful work)
        lengths = features.sequence_lengths(rows)
        achieved_rate = achieved(shape.flops(lengths), median, ceiling_for(ceilings, session.precision))
    return {"runs": len(times), "rows": count, "median_s": median, "rows_per_s": count / median,
            "seconds": [round(t, 4) for t in times], **achieved_rate}


def _on_ray(ctx: RunContext, run: Run, features: Features, rows: np.ndarray, shards: Shards,
            done: int) -> dict[str, Any]:
    """One backend over a Ray cluster's actors (see encoderzoo.ray_engine), each opening the same
    session as a local run."""
    cfg = ctx.config
    context = backend_context(ctx, run, threads=max(cfg.threads // cfg.ray_actors, 1))
    spec = ActorSpec(backend=run.backend, precision=run.precision, context=context,
                     batching=ctx.batching[run.backend], seq_len=features.seq_len,
                     output_axes=ctx.task.output_axes, static_batch=static_batch(ctx, run))
    step(f"infer: {run.label} on Ray, {cfg.ray_actors} actors" + (f" at {cfg.ray_address}" if cfg.ray_address
                                                                      else ""))
    with progress_bar() as bar:
        task = bar.add_task(f"{run.label} (ray)", total=len(features), completed=done)
        return run_ray(spec, features, rows, actors=cfg.ray_actors, address=cfg.ray_address,
                       on_batch=shards.add, progress=lambda n: bar.advance(task, n))
