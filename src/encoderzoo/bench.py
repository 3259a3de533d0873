"""Throughput and latency sweeps over batch sizes and sequence lengths.

Backends are measured side by side: each (batch size, sequence length) point is measured for
every backend before the sweep moves on, so that slow drift in the machine's speed falls on all
of them alike. Warm-up runs are not timed; then each backend is timed until it has both
`min_runs` runs and `min_seconds` of timed work (or `max_runs`). Throughput is reported at the
median latency."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from encoderzoo.console import progress_bar
from encoderzoo.features import Features
from encoderzoo.roofline import EncoderShape, achieved, ceiling_for
from encoderzoo.session import Session


@dataclass(frozen=True)
class BenchSettings:
    batch_sizes: tuple[int, ...]
    seq_lens: tuple[int, ...]
    warmup: int = 2  # untimed runs per point
    min_runs: int = 5  # timed runs per point, at least
    min_seconds: float = 1.0  # timed seconds per point and backend, at least
    max_runs: int = 1000  # timed runs per point, at most


@dataclass(frozen=True)
class BenchRow:
    backend: str
    precision: str
    batch_size: int
    seq_len: int
    runs: int
    throughput_per_s: float  # sequences per second at the median latency
    latency_ms: dict[str, float | None]  # p50, p90, p99 (None: too few runs), mean, min, max
    gflops: float | None = None  # at the median latency, FLOPs from the model's config
    ceiling_pct: float | None = None  # of the measured GEMM ceiling of this precision

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def synthetic_inputs(
    input_names: tuple[str, ...], batch_size: int, seq_len: int, vocab_size: int, seed: int = 0,
    row: tuple[int, ...] = (),
) -> dict[str, np.ndarray]:
    """Full-length sequences (no padding): every token is computed, as with static shapes; `row`:
    what a row holds before its tokens (multiple choice: its choices)."""
    rng = np.random.default_rng(seed)
    low = 1000 if vocab_size > 2000 else 1
    shape = (batch_size, *row, seq_len)
    feeds = {}
    for name in input_names:
        if name == "input_ids":
            feeds[name] = rng.integers(low, vocab_size, size=shape, dtype=np.int64)
        elif name == "attention_mask":
            feeds[name] = np.ones(shape, dtype=np.int64)
        else:
            feeds[name] = np.zeros(shape, dtype=np.int64)
    return feeds


def synthetic_features(input_names: tuple[str, ...], vocab_size: int, seq_len: int,
                       row: tuple[int, ...] = ()) -> Features:
    """Eight padded rows of varied length, for export and its parity check when no dataset has
    been prepared."""
    feeds = synthetic_inputs(input_names, 8, seq_len, vocab_size, seed=1, row=row)
    lengths = np.linspace(max(2, seq_len // 8), seq_len, 8).astype(np.int32)
    for index, length in enumerate(lengths):
        for name in input_names:
            feeds[name][index, ..., length:] = 0
    return Features(np.array([f"synthetic-{i}" for i in range(8)]), feeds, lengths)


def time_point(
    backends: list[Session], feeds: dict[str, np.ndarray], settings: BenchSettings
) -> list[list[float]]:
    """Latencies in seconds of each backend's timed runs at one point. Each backend is warmed
    up right before its own timed runs. (Taking turns run by run was tried and measured wrong:
    ONNX Runtime's worker threads keep spinning after a run and slowed PyTorch's next run from
    17 to 57 ms at batch 1 on 2 cores.)"""
    latencies = []
    for backend in backends:
        for _ in range(settings.warmup):
            backend.run_batch(feeds)
        times: list[float] = []
        while len(times) < settings.max_runs and (
            len(times) < settings.min_runs or sum(times) < settings.min_seconds
        ):
            t0 = time.perf_counter()
            backend.run_batch(feeds)
            times.append(time.perf_counter() - t0)
        latencies.append(times)
    return latencies


# runs a percentile needs before it is shown: below, it would be an interpolation towards the
# slowest run (with 5 runs, "p99" is 96 % of the way to the maximum)
PERCENTILE_RUNS = {"p50": 1, "p90": 10, "p99": 100}


def percentiles(ms: np.ndarray) -> dict[str, float | None]:
    """p50 / p90 / p99 of latencies, each None when the sample is too small to support it."""
    return {name: float(np.percentile(ms, float(name[1:]))) if len(ms) >= needed else None
            for name, needed in PERCENTILE_RUNS.items()}


def summarize(backend: Session, batch_size: int, seq_len: int, latencies: list[float],
              shape: EncoderShape | None = None, ceilings: dict[str, Any] | None = None,
              sequences: int = 1) -> BenchRow:
    ms = np.array(latencies) * 1000.0
    shown = percentiles(ms)
    p50 = shown["p50"]
    assert p50 is not None  # at least one run
    rate: dict[str, float | None] = {}
    if shape is not None:
        flops = batch_size * sequences * shape.flops_per_sequence(seq_len)  # sequences per row
        rate = achieved(flops, p50 / 1000.0, ceiling_for(ceilings, backend.precision))
    return BenchRow(
        backend=backend.name, precision=backend.precision, batch_size=batch_size, seq_len=seq_len,
        runs=len(latencies), throughput_per_s=batch_size / (p50 / 1000.0),
        latency_ms={**shown, "mean": float(ms.mean()), "min": float(ms.min()), "max": float(ms.max())},
        gflops=rate.get("gflops"), ceiling_pct=rate.get("ceiling_pct"),
    )


def sweep(
    backends: list[Session], input_names: tuple[str, ...], vocab_size: int, settings: BenchSettings,
    shapes: Sequence[EncoderShape | None] = (), ceilings: dict[str, Any] | None = None,
    row: tuple[int, ...] = (),
) -> list[BenchRow]:
    """Every session at every point, side by side; `shapes`: each session's model shape as it
    computes it (FLOP counts; empty: none)."""
    rows = []
    shapes = list(shapes) or [None] * len(backends)
    points = [(s, b) for s in settings.seq_lens for b in settings.batch_sizes]
    with progress_bar() as progress:
        bar = progress.add_task("benchmark", total=len(points))
        for seq_len, batch_size in points:
            progress.update(bar, description=f"bench batch {batch_size} seq {seq_len}")
            feeds = synthetic_inputs(input_names, batch_size, seq_len, vocab_size, row=row)
            timed = zip(backends, shapes, time_point(backends, feeds, settings), strict=True)
            for backend, shape, latencies in timed:
                rows.append(summarize(backend, batch_size, seq_len, latencies, shape, ceilings,
                                      sequences=int(np.prod(row, dtype=np.int64))))
            progress.advance(bar)
    return rows
