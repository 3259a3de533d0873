"""Throughput and latency sweeps over batch sizes and sequence lengths.

Each point is measured for every backend before moving to the next point, so that backends
are compared side by side under the same machine conditions. Warm-up runs are not timed; then
runs are timed until both `min_runs` and `min_seconds` are reached (or `max_runs`)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from encoderzoo.backends import Backend
from encoderzoo.console import progress_bar


@dataclass(frozen=True)
class BenchSettings:
    batch_sizes: tuple[int, ...]
    seq_lens: tuple[int, ...]
    warmup: int = 2  # untimed runs per point
    min_runs: int = 5  # timed runs per point, at least
    min_seconds: float = 1.0  # timed seconds per point, at least
    max_runs: int = 1000  # timed runs per point, at most


@dataclass(frozen=True)
class BenchRow:
    backend: str
    precision: str
    batch_size: int
    seq_len: int
    runs: int
    throughput_per_s: float  # sequences per second at the median latency
    latency_ms: dict[str, float]  # p50, p90, p99, mean, min of one batch

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def synthetic_inputs(
    input_names: tuple[str, ...], batch_size: int, seq_len: int, vocab_size: int, seed: int = 0
) -> dict[str, np.ndarray]:
    """Full-length sequences (no padding): every token is computed, as with static shapes."""
    rng = np.random.default_rng(seed)
    low = 1000 if vocab_size > 2000 else 1
    feeds = {}
    for name in input_names:
        if name == "input_ids":
            feeds[name] = rng.integers(low, vocab_size, size=(batch_size, seq_len), dtype=np.int64)
        elif name == "attention_mask":
            feeds[name] = np.ones((batch_size, seq_len), dtype=np.int64)
        else:
            feeds[name] = np.zeros((batch_size, seq_len), dtype=np.int64)
    return feeds


def time_runs(backend: Backend, feeds: dict[str, np.ndarray], settings: BenchSettings) -> list[float]:
    """Latencies in seconds of the timed runs."""
    for _ in range(settings.warmup):
        backend.run(feeds)
    latencies: list[float] = []
    started = time.perf_counter()
    while len(latencies) < settings.max_runs and (
        len(latencies) < settings.min_runs or time.perf_counter() - started < settings.min_seconds
    ):
        t0 = time.perf_counter()
        backend.run(feeds)
        latencies.append(time.perf_counter() - t0)
    return latencies


def summarize(backend: Backend, batch_size: int, seq_len: int, latencies: list[float]) -> BenchRow:
    ms = np.array(latencies) * 1000.0
    p50, p90, p99 = (float(v) for v in np.percentile(ms, [50, 90, 99]))
    return BenchRow(
        backend=backend.name, precision=backend.precision, batch_size=batch_size, seq_len=seq_len,
        runs=len(latencies), throughput_per_s=batch_size / (p50 / 1000.0),
        latency_ms={"p50": p50, "p90": p90, "p99": p99, "mean": float(ms.mean()),
                    "min": float(ms.min())},
    )


def sweep(
    backends: list[Backend], input_names: tuple[str, ...], vocab_size: int, settings: BenchSettings
) -> list[BenchRow]:
    rows = []
    points = [(s, b) for s in settings.seq_lens for b in settings.batch_sizes]
    with progress_bar() as progress:
        bar = progress.add_task("benchmark", total=len(points) * len(backends))
        for seq_len, batch_size in points:
            feeds = synthetic_inputs(input_names, batch_size, seq_len, vocab_size)
            for backend in backends:
                progress.update(bar, description=f"bench {backend.name} b{batch_size} s{seq_len}")
                rows.append(summarize(backend, batch_size, seq_len, time_runs(backend, feeds, settings)))
                progress.advance(bar)
    return rows
