from pathlib import Path

from encoderzoo.artifacts import ARTIFACTS
from encoderzoo.report import plot_throughput
from encoderzoo.report_md import markdown
from encoderzoo.scoring import Gate, Reference, accuracy_rows
from encoderzoo.tasks.base import Score

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
    assert "| seq 128 | batch 1 | batch 8 |" in text
    assert "| torch fp32 | 50.0 | 80.0 |" in text
    assert "| onnxruntime fp32 | 75.0 (1.50×) | 40.0 (0.50×) |" in text
    assert "| onnxruntime fp32 | 13.3 / 1.0 / 2.0 (5) | 200.0 / 1.0 / 2.0 (5) |" in text
    few = dict(bench_row("torch", 1, 50.0), latency_ms={"p50": 20.0, "p90": None, "p99": None})
    assert "| torch fp32 | 20.0 / — / — (5) |" in markdown(report(benchmark=[few]))


GATE = Gate(keep=0.99, min_agreement=0.95)


def accuracy(scores: dict, reference: Reference | None = None, agreement: dict | None = None,  # type: ignore[type-arg]
             gate: Gate = GATE) -> list[dict]:  # type: ignore[type-arg]
    return [r.to_json() for r in accuracy_rows(scores, agreement or {}, reference=reference, gate=gate)]


def test_accuracy_table_and_missing_sections() -> None:
    published = Reference({"accuracy": 0.8876}, "published")
    rows = accuracy({("torch", "fp32"): Score({"accuracy": 0.8876})}, published)
    text = markdown(report(accuracy=rows))
    assert "| published reference | | 88.76 | | | |" in text
    assert "| torch | fp32 | 88.76 | — | — | pass |" in text
    assert "## Performance" not in text and "## Export" not in text and "per group" not in text
    assert "torch 2.13.0" in text and "openvino" not in text


def test_a_failed_row_says_why() -> None:
    scores = {("torch", "fp32"): Score({"accuracy": 0.80}),
              ("onnxruntime", "int8"): Score({"accuracy": 0.90})}
    rows = accuracy(scores, None, {("onnxruntime", "int8"): {"agreement": 0.5, "max_abs_diff": 3.0}})
    text = markdown(report(accuracy=rows))
    assert "torch fp32 is the reference" in text and "| torch | fp32 | 80.00 | — | — | reference |" in text
    assert "| onnxruntime | int8 | 90.00 | 50.00 % | 3 | **FAIL** |" in text
    assert "- onnxruntime int8: agreement with torch fp32 50.00 % < 95 %" in text
    assert "agree with torch fp32 on ≥ 95 % of the predictions" in text


def test_splits_side_by_side_and_groups() -> None:
    def score(matched: float, fiction: float) -> Score:
        return Score({"matched.accuracy": matched, "mismatched.accuracy": 0.5},
                     {"matched/fiction": {"accuracy": fiction, "examples": 1973.0}})

    scores = {("torch", "fp32"): score(0.9, 0.91), ("onnxruntime", "fp32"): score(0.8, 0.81)}
    reference = Reference({"matched.accuracy": 0.905, "mismatched.accuracy": 0.905}, "published")
    text = markdown(report(accuracy=accuracy(scores, reference, {
        ("onnxruntime", "fp32"): {"agreement": 0.99, "max_abs_diff": 1e-6}})))
    assert "| backend | precision | accuracy (matched) | accuracy (mismatched) |" in text
    assert "| published reference | | 90.50 | 90.50 | | | |" in text
    assert "| onnxruntime | fp32 | 80.00 | 50.00 | 99.00 % | 1e-06 | **FAIL** |" in text
    assert "| matched/fiction accuracy | 1973 | 91.00 | 81.00 |" in text


def test_random_weights_are_labelled() -> None:
    rows = accuracy({("torch", "fp32"): Score({"accuracy": 0.5})},
                    gate=Gate(keep=0.99, min_agreement=0.95, random_weights=True))
    checkpoint = {"location": "checkpoint", "model_type": "bert", "stored_dtype": "float32",
                  "random_weights": "tiny"}
    text = markdown(report(accuracy=rows, checkpoint=checkpoint))
    assert "**Random weights (tiny)**" in text and "random weights (tiny), bert" in text
    assert "| torch | fp32 | 50.00 | — | — | reference |" in text and "| published reference |" not in text


def test_plot_is_a_png(tmp_path: Path) -> None:
    rows = [bench_row("torch", b, 10.0 * b) for b in (1, 4, 8)]
    plot_throughput([*rows, dict(bench_row("torch", 1, 5.0), seq_len=64)], tmp_path / "t.png", title="demo")
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"


def test_windowed_examples_are_described_as_windows() -> None:
    data = {"data": "dev-v1.1.json", "examples": 10570, "features": 10664, "mean_tokens": 183.4}
    text = markdown(report(data=data))
    assert "10570 examples in 10664 windows of at most 128 tokens (mean 183.4)" in text


def test_export_section_names_the_nodes_triage_left_in_float() -> None:
    """The artifact keeps its float nodes on a rerun that removes triage.json: the export
    section names them itself."""
    export = {"file": "model.onnx", "opset": 17, "bytes": 2**20, "max_abs_diff": 1e-5,
              "parity": [{"inputs": "a"}]}
    quantized = {"method": "onnxruntime dynamic", "source": "model.optimized.onnx", "bytes": 2**20,
                 "seconds": 1.0}
    nodes = [f"Attention_{i}" for i in range(8)]
    text = markdown(report(export=export, quantize={"onnx-int8": quantized | {"excluded_nodes": nodes[:2]}}))
    assert "2 nodes left in float by triage (`Attention_0`, `Attention_1`)" in text
    text = markdown(report(export=export, quantize={"onnx-int8": quantized | {"excluded_nodes": nodes}}))
    assert "8 nodes left in float by triage (`Attention_0`" in text and "`Attention_5`, …)" in text
    assert "left in float" not in markdown(report(export=export, quantize={"onnx-int8": quantized}))


def test_triage_that_cannot_recover_names_what_to_try() -> None:
    from encoderzoo.report_triage import triage_lines

    attempt = {"excluded": ["Attention_1"], "metrics": {"f1": 0.6165}, "agreement": 0.83,
               "gate_passed": False}
    result = {"before": {"f1": 0.6052}, "candidates": 26, "attempts": [attempt], "steps": [],
              "float_nodes": ["Attention_1"], "recovered": False, "final": attempt,
              "otherwise": ARTIFACTS["onnx-int8"].otherwise}
    text = "\n".join(triage_lines({"onnxruntime:int8": result}))
    assert "still below its gate. Try onnxruntime:int8-block, whose activations are quantized per" in text
    recovered = result | {"recovered": True, "otherwise": ""}
    assert "Try " not in "\n".join(triage_lines({"onnxruntime:int8": recovered}))


def test_triage_says_what_its_search_cost() -> None:
    from encoderzoo.report_triage import triage_lines

    on_share = {"excluded": ["MatMul_3"], "metrics": {"f1": 0.71}, "agreement": 0.9, "gate_passed": True,
                "on": "share", "seconds": 41.0}
    final = on_share | {"on": "all", "seconds": 150.0}
    step = {"node": "MatMul_3", "op_type": "MatMul", "drift": 0.02, "regained": {"f1": 0.01},
            "excluded": ["MatMul_3"], "metrics": {"f1": 0.71}, "seconds": 120.0}
    result = {"before": {"f1": 0.69}, "candidates": 36, "attempts": [on_share] * 3, "steps": [step],
              "float_nodes": ["MatMul_3"], "recovered": True, "final": final, "confirmed": [final],
              "share": {"examples": 750, "of": 3000, "by": "split, gold label and length"},
              "cost_s": {"ranking": 12.0, "share": 123.0, "all": 150.0}}
    text = "\n".join(triage_lines({"onnxruntime:int8": result}))
    assert ("Search cost: ranking by drift 12 s; 3 trials on 750 of 3000 examples (a share stratified by "
            "split, gold label and length) 123 s; runs on all 3000 examples 150 s (1 step(s) the share could "
            "not tell from noise or passed on it, checked there, the chosen graph).") in text
    assert "| `MatMul_3` | MatMul | 0.0200 | f1 +1.00 | 120 |" in text
    decided = result | {"steps": [step | {"decided_on": "all"}]}
    assert "| f1 +1.00 (decided on all examples) | 120 |" in "\n".join(triage_lines({"x:int8": decided}))
    everything = result | {"share": {"examples": 3000, "of": 3000, "by": "-"}, "confirmed": []}
    assert "3 trials on all 3000 examples 150 s." in "\n".join(triage_lines({"onnxruntime:int8": everything}))


def test_the_verdict_never_deploys_a_variant_whose_rows_depend_on_their_batch() -> None:
    from encoderzoo.verdict import verdict

    def row(backend: str, precision: str) -> dict:
        return {"backend": backend, "precision": precision, "gate_passed": True, "gated": True,
                "metrics": {"accuracy": 0.9}, "vs_torch": {"agreement": 0.99}}

    runs = [{"backend": "onnxruntime", "precision": "int8", "windows": 100, "batch_invariant": False,
             "timing": {"warm": {"rows_per_s": 900.0}}},
            {"backend": "openvino", "precision": "int8", "windows": 100, "batch_invariant": True,
             "timing": {"warm": {"rows_per_s": 800.0}}}]
    chosen = verdict([row("onnxruntime", "int8"), row("openvino", "int8")], runs, "runs/x")
    assert chosen is not None and chosen["variant"] == "openvino:int8"
    assert chosen["passed_over"] == ["onnxruntime:int8 (its kind quantizes over the whole batch)"]
    assert ARTIFACTS["onnx-int8"].batch_invariant is False and ARTIFACTS["openvino-int8"].batch_invariant
    assert verdict([row("onnxruntime", "int8")], runs[:1], "runs/x") is None


def test_the_batching_described_is_the_one_recorded() -> None:
    from encoderzoo.report_md import _batching

    old = {"batch_size": 32, "order": "length", "padding": "dynamic", "buckets": [], "max_tokens": 0,
           "multiple": 1}  # recorded before batches closed early against padding
    runs = [{"backend": "onnxruntime", "precision": "fp32", "batching": old}]
    assert "closed early" not in _batching({"runs": runs})
    runs[0]["batching"] = old | {"max_padding": 0.125}
    assert "a batch closed early rather than over 12.5% padding" in _batching({"runs": runs})
