from pathlib import Path

from encoderzoo.report import markdown, plot_throughput

ENV = {"cpu": {"model": "Test CPU", "flags": ["avx512_vnni"]}, "threads": 2, "python": "3.11",
       "platform": "Linux", "packages": {"torch": "2.13.0", "openvino": None},
       "onnxruntime_providers": ["CPUExecutionProvider"]}


def bench_row(backend: str, batch: int, throughput: float) -> dict:
    return {"backend": backend, "precision": "fp32", "batch_size": batch, "seq_len": 128, "runs": 5,
            "throughput_per_s": throughput,
            "latency_ms": {"p50": 1000 * batch / throughput, "p90": 1.0, "p99": 2.0, "mean": 1.0, "min": 1.0}}


def report(**extra: object) -> dict:
    base = {
        "recipe": {"name": "demo", "description": "Demo.", "seq_len": 128}, "created": "now",
        "encoderzoo": "0.1.0", "environment": ENV, "accuracy": [], "benchmark": [],
        "checkpoint": {"location": "/ckpt", "model_type": "bert", "stored_dtype": "float16"},
        "data": {"data": "dev.tsv", "examples": 872, "mean_tokens": 25.2},
    }
    return base | extra


def test_performance_table_has_ratios_against_torch() -> None:
    rows = [bench_row("torch", 1, 50.0), bench_row("onnxruntime", 1, 75.0),
            bench_row("torch", 8, 80.0), bench_row("onnxruntime", 8, 40.0)]
    text = markdown(report(benchmark=rows, benchmark_settings={"warmup": 2, "min_runs": 5, "min_seconds": 1}))
    assert "| seq | batch | torch fp32 | onnxruntime fp32 | onnxruntime fp32 vs torch fp32 |" in text
    assert "| 128 | 1 | 50.0 (20.0 ms) | 75.0 (13.3 ms) | 1.50× |" in text
    assert "| 128 | 8 | 80.0 (100.0 ms) | 40.0 (200.0 ms) | 0.50× |" in text


def test_accuracy_table_and_missing_sections() -> None:
    accuracy = [{"backend": "torch", "precision": "fp32", "metrics": {"accuracy": 0.8876},
                 "reference": {"recipe": 0.8876, "torch_fp32": 0.8876}, "gate": 0.99,
                 "gate_passed": True, "vs_torch": None}]
    text = markdown(report(accuracy=accuracy))
    assert "| torch | fp32 | 88.76 | 88.76 | 88.76 | — | — | pass |" in text
    assert "## Performance" not in text and "## Export" not in text
    assert "torch 2.13.0" in text and "openvino" not in text


def test_plot_is_a_png(tmp_path: Path) -> None:
    rows = [bench_row("torch", b, 10.0 * b) for b in (1, 4, 8)]
    plot_throughput([*rows, dict(bench_row("torch", 1, 5.0), seq_len=64)], tmp_path / "t.png", title="demo")
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"
