import time

import numpy as np

from encoderzoo.bench import BenchSettings, summarize, sweep, synthetic_inputs, time_point
from encoderzoo.environment import environment
from encoderzoo.features import Batching
from encoderzoo.session import Session


class SleepBackend:
    """A stand-in runtime whose latency is known: `ms` milliseconds per sequence in the batch."""

    name, precision = "sleep", "fp32"

    def __init__(self, ms: float = 1.0, log: list[str] | None = None, label: str = "a") -> None:
        self.calls, self.ms, self.log, self.label = 0, ms, log, label

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.calls += 1
        if self.log is not None:
            self.log.append(self.label)
        time.sleep(self.ms / 1000 * len(feeds["input_ids"]))
        return {}

    def settings(self) -> dict[str, int]:
        return {"threads": 1}


def session(backend: SleepBackend) -> Session:
    """The benchmark times sessions, the path every backend runs through."""
    return Session(backend, Batching())  # type: ignore[arg-type]


def test_synthetic_inputs_are_full_length() -> None:
    feeds = synthetic_inputs(("input_ids", "attention_mask", "token_type_ids"), 4, 32, 28996)
    assert {k: v.shape for k, v in feeds.items()} == {k: (4, 32) for k in feeds}
    assert feeds["attention_mask"].all() and not feeds["token_type_ids"].any()
    assert feeds["input_ids"].min() >= 1000 and feeds["input_ids"].max() < 28996


def test_warmup_is_not_timed_and_min_runs_hold() -> None:
    backend = SleepBackend()
    [latencies] = time_point([session(backend)], {"input_ids": np.zeros((2, 4))},
                             BenchSettings((2,), (4,), warmup=3, min_runs=4, min_seconds=0))
    assert len(latencies) == 4 and backend.calls == 7
    assert all(latency >= 0.002 for latency in latencies)


def test_max_runs_caps_a_time_based_point() -> None:
    [latencies] = time_point([session(SleepBackend())], {"input_ids": np.zeros((1, 4))},
                             BenchSettings((1,), (4,), warmup=0, min_runs=1, min_seconds=60, max_runs=3))
    assert len(latencies) == 3


def test_each_backend_is_warmed_up_right_before_its_timed_runs() -> None:
    log: list[str] = []
    fast, slow = SleepBackend(1, log, "fast"), SleepBackend(10, log, "slow")
    fast_times, slow_times = time_point([session(fast), session(slow)], {"input_ids": np.zeros((1, 4))},
                                        BenchSettings((1,), (4,), warmup=1, min_runs=2, min_seconds=0.03))
    assert log == ["fast"] * (1 + len(fast_times)) + ["slow"] * (1 + len(slow_times))
    assert len(slow_times) == 3 and sum(slow_times) >= 0.03
    assert len(fast_times) > 3 * len(slow_times) and sum(fast_times) >= 0.03


def test_summary_percentiles_and_throughput() -> None:
    row = summarize(SleepBackend(), 8, 128, [0.010, 0.020, 0.030, 0.040, 0.100])  # type: ignore[arg-type]
    assert row.latency_ms["p50"] == 30.0 and row.runs == 5
    assert row.latency_ms["p90"] is None and row.latency_ms["p99"] is None  # 5 runs support neither
    assert row.throughput_per_s == 8 / 0.030
    assert row.to_json()["latency_ms"]["min"] == 10.0 and row.latency_ms["max"] == 100.0
    many = summarize(SleepBackend(), 1, 8, [0.001 * (i + 1) for i in range(100)])  # type: ignore[arg-type]
    p50, p90, p99 = (many.latency_ms[k] for k in ("p50", "p90", "p99"))
    assert p50 is not None and p90 is not None and p99 is not None and p50 < p90 < p99 <= 100.0
    ten = summarize(SleepBackend(), 1, 8, [0.001] * 10)  # type: ignore[arg-type]
    assert ten.latency_ms["p90"] is not None and ten.latency_ms["p99"] is None


def test_sweep_measures_every_point_for_every_backend() -> None:
    backends = [session(SleepBackend()), session(SleepBackend())]
    settings = BenchSettings((1, 4), (8, 16), warmup=0, min_runs=2, min_seconds=0)
    rows = sweep(backends, ("input_ids",), 100, settings)  # type: ignore[arg-type]
    assert [(r.seq_len, r.batch_size) for r in rows] == [
        (8, 1), (8, 1), (8, 4), (8, 4), (16, 1), (16, 1), (16, 4), (16, 4)]
    small, large = rows[0], rows[2]
    assert large.latency_ms["p50"] > small.latency_ms["p50"]


def test_environment_records_what_results_depend_on() -> None:
    env = environment(threads=2)
    assert env["threads"] == 2
    assert env["packages"]["torch"] and env["packages"]["onnxruntime"]
    assert "CPUExecutionProvider" in env["onnxruntime_providers"]
    assert env["cpu"]["model"] and env["cpu"]["available_cores"] >= 1
