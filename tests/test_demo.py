"""The embedded demo, end to end on all 872 SST-2 dev sentences with the real checkpoint, on
every backend at its default precisions."""

import json
import subprocess
from pathlib import Path

import pytest

from encoderzoo.assets import asset_path
from encoderzoo.devices import Machine

REQUIRED_ACCURACY_KEYS = {"backend", "precision", "metrics", "reference", "gate_passed"}
REQUIRED_BENCH_KEYS = {"backend", "precision", "batch_size", "seq_len", "throughput_per_s", "latency_ms"}
BF16 = Machine.here("cpu").native_bf16  # bf16 runs by default only where the CPU computes it natively
VARIANTS = {("torch", "fp32"), ("onnxruntime", "fp32"), ("onnxruntime", "int8"), ("openvino", "fp32"),
            ("openvino", "int8")} | ({("torch", "bf16"), ("openvino", "bf16")} if BF16 else set())


@pytest.mark.slow
def test_run_demo_on_the_whole_dev_set(demo_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, result = demo_run  # tests.conftest.DEMO_RUN
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    recorded = json.loads((asset_path("demo/model") / "eval_results.json").read_text())

    assert all(set(r) >= REQUIRED_ACCURACY_KEYS for r in report["accuracy"])
    accuracy = {(r["backend"], r["precision"]): r for r in report["accuracy"]}
    assert set(accuracy) == VARIANTS and report["data"]["examples"] == 872
    torch_acc = accuracy[("torch", "fp32")]["metrics"]["accuracy"]
    assert torch_acc == recorded["eval_accuracy"]  # 774 / 872, exactly
    for exact in (("onnxruntime", "fp32"), ("openvino", "fp32")):
        assert accuracy[exact]["metrics"]["accuracy"] == torch_acc
        assert accuracy[exact]["vs_torch"]["agreement"] == 1.0
    for reduced in VARIANTS - {("torch", "fp32"), ("onnxruntime", "fp32"), ("openvino", "fp32")}:
        assert abs(accuracy[reduced]["metrics"]["accuracy"] - torch_acc) <= 0.005, reduced  # 0.5 points
    assert report["gate_passed"] is True and all(r["gate_passed"] for r in report["accuracy"])
    batching = report["inference"]["runs"][0]["batching"]
    assert batching["order"] == "length"  # length buckets are on by default

    assert report["optimize"]["fused_ops"]["Attention"] == 5  # the 6th layer: for the first token only
    assert report["export"]["first_token"]["applied"] is True
    assert 0.12 < report["export"]["first_token"]["flops_saved"] < 0.15
    assert report["export"]["max_abs_diff"] < 1e-4
    assert set(report["quantize"]) == {"onnx-int8", "openvino-int8"}

    rows = report["benchmark"]
    assert all(set(r) >= REQUIRED_BENCH_KEYS and {"p50", "p90", "p99"} <= set(r["latency_ms"]) for r in rows)
    assert {(r["backend"], r["precision"], r["batch_size"], r["seq_len"]) for r in rows} == {
        (b, p, n, 128) for b, p in VARIANTS for n in (1, 8)}
    assert report["environment"]["threads"] >= 1 and report["environment"]["packages"]["onnxruntime"]
    assert report["checkpoint"]["stored_dtype"] == "float16"

    markdown = (out / "report.md").read_text()
    assert "| published reference | | 88.76 |" in markdown and "| onnxruntime | fp32 | 88.76 |" in markdown
    assert "Attention × 5" in markdown and ("| openvino bf16 |" in markdown) == BF16
    assert (out / "throughput.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    predictions = (out / "predictions" / "onnxruntime-fp32.tsv").read_text().splitlines()
    assert len(predictions) == 873 and predictions[1].startswith("0\tdev\t2\t1\t")
    assert not list(out.parent.glob(".*partial"))
