"""Graphs made elsewhere (--onnx, --openvino): inputs matched by name or --input-map, static
shapes padded to, parity against PyTorch only with a checkpoint, stage commands on the run."""

import json
from dataclasses import replace
from pathlib import Path

import pytest

from encoderzoo.config import RunConfig
from encoderzoo.context import RunContext
from encoderzoo.errors import ConfigError
from encoderzoo.export import positional
from encoderzoo.graphs import GraphInfo, match_inputs, match_outputs
from encoderzoo.pipeline import run
from tests.conftest import SST2_DEV


def info(inputs: dict, outputs: dict | None = None) -> GraphInfo:
    return GraphInfo(Path("g.onnx"), "onnx", inputs, outputs or {"output": (None, 2)})


def test_inputs_are_matched_by_the_names_seed_pipelines_and_runtimes_use() -> None:
    seed = info({"input1": (1, 128), "input2": (1, 128), "input3": (1, 128)})
    assert match_inputs(seed, ()) == {"input1": "input_ids", "input2": "attention_mask",
                                      "input3": "token_type_ids"}
    fairseq = info({"src_tokens": (None, None), "input_mask": (None, None), "segment_ids": (None, None)})
    assert set(match_inputs(fairseq, ()).values()) == {"input_ids", "attention_mask", "token_type_ids"}
    named = info({"a": (None, None), "b": (None, None)})
    mapped = match_inputs(named, ("a=input_ids", "b=attention_mask"))
    assert mapped == {"a": "input_ids", "b": "attention_mask"}
    with pytest.raises(ConfigError, match="cannot tell what its input 'b' is; name it with --input-map b="):
        match_inputs(named, ("a=input_ids",))
    with pytest.raises(ConfigError, match="the graph has no input 'c'"):
        match_inputs(named, ("c=input_ids",))
    with pytest.raises(ConfigError, match="two inputs map to input_ids"):
        match_inputs(named, ("a=input_ids", "b=input_ids"))
    with pytest.raises(ConfigError, match="OURS one of input_ids"):
        match_inputs(named, ("a=ids",))


def test_outputs_are_matched_by_name_else_position() -> None:
    assert match_outputs(info({}, {"output": (1, 2)}), ("logits",)) == {"output": "logits"}
    qa = info({}, {"output_0": (1, 8), "output_1": (1, 8)})
    assert match_outputs(qa, ("start_logits", "end_logits")) == {"output_0": "start_logits",
                                                                 "output_1": "end_logits"}
    swapped = info({}, {"end": (1, 8), "start": (1, 8)})
    by_name = match_outputs(swapped, ("start_logits", "end_logits"))
    assert by_name == {"start": "start_logits", "end": "end_logits"}
    with pytest.raises(ConfigError, match="do not give the task's logits"):
        match_outputs(info({}, {"hidden": (1, 8, 4), "pooled": (1, 4)}), ("logits",))


def export_elsewhere(checkpoint: Path, path: Path, names: tuple[str, ...], *, batch: int | None,
                     seq: int = 32) -> Path:
    """A graph exported the way the seed pipelines do: TorchScript, their input names, static
    batch and sequence unless `batch` is None."""
    import torch
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(checkpoint).eval()
    logits = positional(model, ("input_ids", "attention_mask", "token_type_ids"), ("logits",))
    rows = batch or 2
    ids = torch.randint(1000, 2000, (rows, seq))
    mask = torch.ones_like(ids)
    axes = None if batch else {n: {0: "batch", 1: "sequence"} for n in names}
    torch.onnx.export(logits, (ids, mask, torch.zeros_like(ids)), str(path), input_names=list(names),
                      output_names=["output"], dynamic_axes=axes, opset_version=17, dynamo=False)
    return path


@pytest.mark.slow
def test_a_static_seed_style_graph_runs_alone_and_beside_its_checkpoint(
    tiny_bert: Path, tmp_path: Path
) -> None:
    names = ("input1", "input2", "input3")
    graph = export_elsewhere(tiny_bert, tmp_path / "bert_bs2_seq32.onnx", names, batch=2)
    common = {"recipe": "sst2", "data": (str(SST2_DEV),), "limit": 11, "onnx": str(graph), "bench": False,
              "backends": ("onnxruntime:fp32", "openvino:fp32"), "e2e_runs": 1}
    passed, report_md = run(RunConfig(out=tmp_path / "alone", tokenizer=str(tiny_bert), **common))
    report = json.loads((tmp_path / "alone" / "report.json").read_text())
    assert passed and report["data"]["seq_len"] == 32 and report["data"]["examples"] == 11
    assert report["export"]["imported"]["static_batch"] == 2 and report["compared_with"] == "onnxruntime fp32"
    rows = {(r["backend"], r["precision"]): r for r in report["accuracy"]}
    assert set(rows) == {("onnxruntime", "fp32"), ("openvino", "fp32")}
    assert rows[("openvino", "fp32")]["vs_torch"]["agreement"] == 1.0
    text = report_md.read_text()
    assert "fixed batch 2 x seq 32; every batch is padded to it" in text
    assert "vs the graph itself (no --checkpoint)" in text

    # a stage command finds the graph and its tokenizer in the run folder
    again = RunContext(RunConfig(recipe="sst2", out=tmp_path / "alone"))
    assert again.graph is not None and again.graph.batch == 2 and again.config.batch_size == 2

    with pytest.raises(ConfigError, match="fixed to sequences of 32 tokens"):
        RunContext(RunConfig(out=tmp_path / "other", tokenizer=str(tiny_bert), seq_len=64, **common))

    # with its PyTorch checkpoint: torch runs, the graph is compared with it
    with_torch = common | {"backends": ("torch:fp32", "onnxruntime:fp32")}
    passed, report_md = run(RunConfig(out=tmp_path / "beside", checkpoint=str(tiny_bert), **with_torch))
    report = json.loads((tmp_path / "beside" / "report.json").read_text())
    assert passed and report["export"]["parity_against"] == "PyTorch"
    assert report["export"]["max_abs_diff"] < 1e-4
    onnx_row = next(r for r in report["accuracy"] if r["backend"] == "onnxruntime")
    assert onnx_row["baseline"] == "torch_fp32" and onnx_row["vs_torch"]["agreement"] == 1.0


@pytest.mark.slow
def test_an_openvino_ir_and_a_renamed_dynamic_graph_run(tiny_bert: Path, tmp_path: Path) -> None:
    import openvino as ov

    onnx = export_elsewhere(tiny_bert, tmp_path / "named.onnx", ("ids", "x_mask", "x_seg"), batch=None)
    common = {"recipe": "sst2", "data": (str(SST2_DEV),), "limit": 10, "tokenizer": str(tiny_bert),
              "bench": False, "e2e_runs": 1}
    with pytest.raises(ConfigError, match="cannot tell what its input 'x_mask' is"):
        _ = RunContext(RunConfig(out=tmp_path / "x", onnx=str(onnx), **common)).graph
    mapped = RunConfig(out=tmp_path / "mapped", onnx=str(onnx),
                       backends=("onnxruntime:fp32", "openvino:fp32"),
                       input_map=("x_mask=attention_mask", "x_seg=token_type_ids"), **common)
    passed, _ = run(mapped)
    assert passed

    ir = tmp_path / "ir" / "model.xml"
    ov.save_model(ov.convert_model(str(onnx)), str(ir), compress_to_fp16=False)
    config = RunConfig(out=tmp_path / "ir-run", openvino=str(ir),
                       input_map=("x_mask=attention_mask", "x_seg=token_type_ids"), **common)
    # the default backends: torch needs a checkpoint, ONNX Runtime an ONNX graph
    assert {name for name, _ in RunContext(config).runs} == {"openvino"}
    passed, _ = run(replace(config, backends=("openvino:fp32",)))
    report = json.loads((tmp_path / "ir-run" / "report.json").read_text())
    assert passed and report["export"]["file"] == "model.xml" and report["compared_with"] == "openvino fp32"
    with pytest.raises(ConfigError, match="--backends onnxruntime: runs ONNX graphs, and this is an "):
        _ = RunContext(RunConfig(out=tmp_path / "y", openvino=str(ir), backends=("onnxruntime",),
                             input_map=mapped.input_map, **common)).runs
