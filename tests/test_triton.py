"""export --triton: a model repository that Triton's own model-config schema accepts and whose
tensors match the ONNX model's."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import onnx
import pytest

from encoderzoo.config import RunConfig
from encoderzoo.context import RunContext
from encoderzoo.errors import ArtifactError, ConfigError
from encoderzoo.fileio import umask
from encoderzoo.stages import triton
from encoderzoo.triton import check_model, config_text, graph_tensors, parse_config
from tests.conftest import cli

pytest.importorskip("tritonclient.grpc.model_config_pb2")


def kind(config: object) -> str:
    from tritonclient.grpc import model_config_pb2

    return str(model_config_pb2.ModelInstanceGroup.Kind.Name(config.instance_group[0].kind))  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def demo_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`encoderzoo export demo --triton REPO` on a fresh folder (no prepare: synthetic inputs)."""
    root = tmp_path_factory.mktemp("triton")
    result = cli("export", "demo", "--out", str(root / "run"), "--triton", str(root / "repo"))
    assert result.returncode == 0, result.stderr
    return root / "repo"


@pytest.mark.slow
def test_the_demo_repository_parses_with_tritons_schema(demo_repository: Path) -> None:
    model = demo_repository / "demo"
    assert sorted(p.relative_to(model).as_posix() for p in model.rglob("*")) == [
        ".encoderzoo", "1", "1/model.onnx", "config.pbtxt"]  # Triton reads numbered versions only
    assert json.loads((model / ".encoderzoo").read_text())["kind"] == "triton-model"
    assert (model / "config.pbtxt").stat().st_mode & 0o777 == 0o666 & ~umask()  # a server can read it
    assert model.stat().st_mode & 0o777 == 0o777 & ~umask()
    config = parse_config(model / "config.pbtxt")
    assert config.name == "demo" and config.backend == "onnxruntime" and config.max_batch_size == 64
    assert list(config.dynamic_batching.preferred_batch_size) == [4, 8, 16, 32, 64]
    assert kind(config) == "KIND_CPU"  # on this machine (no GPU)
    graph = onnx.load(str(model / "1" / "model.onnx"))
    assert {n.op_type for n in graph.graph.node} >= {"Attention"}  # the optimized, fused graph
    inputs = [(t.name, list(t.dims)) for t in config.input]
    assert inputs == [("input_ids", [-1]), ("attention_mask", [-1]), ("token_type_ids", [-1])]
    assert [i.name for i in graph.graph.input] == [name for name, _ in inputs]
    assert [(t.name, list(t.dims)) for t in config.output] == [("logits", [2])]
    assert [o.name for o in graph.graph.output] == ["logits"]
    assert check_model(model) == "tritonclient model_config_pb2.ModelConfig"


def test_a_config_that_disagrees_with_the_graph_is_refused(demo_repository: Path, tmp_path: Path) -> None:
    model = tmp_path / "demo"
    shutil.copytree(demo_repository / "demo", model)
    text = (model / "config.pbtxt").read_text()
    (model / "config.pbtxt").write_text(text.replace("dims: [ 2 ]", "dims: [ 3 ]"))
    with pytest.raises(ArtifactError, match=r"output 'logits' is TYPE_FP32 \[3\] but the graph has .* \[2\]"):
        check_model(model)
    (model / "config.pbtxt").write_text(text.replace("max_batch_size", "max_batch"))
    with pytest.raises(ArtifactError, match="not a valid Triton model configuration"):
        check_model(model)
    (model / "config.pbtxt").write_text(text.replace('"attention_mask"', '"mask"'))
    with pytest.raises(ArtifactError, match="input names"):
        check_model(model)


def test_question_answering_outputs_are_dynamic_and_gpu_configs_parse(tmp_path: Path, tiny_bert_qa: Path
                                                                     ) -> None:
    ctx = RunContext(RunConfig(recipe="spanbert-base-cased-squad1", out=tmp_path / "run",
                               checkpoint=str(tiny_bert_qa), batch_sizes=(1, 8)))
    info = triton.run(ctx, tmp_path / "repo", kind="KIND_GPU", name="span bert/qa")
    assert info["model"] == "span_bert_qa" and info["outputs"][0]["dims"] == (-1,)
    config = parse_config(tmp_path / "repo" / "span_bert_qa" / "config.pbtxt")
    assert [(t.name, list(t.dims)) for t in config.output] == [("start_logits", [-1]), ("end_logits", [-1])]
    assert config.max_batch_size == 8 and kind(config) == "KIND_GPU"
    inputs, outputs = graph_tensors(tmp_path / "repo" / "span_bert_qa" / "1" / "model.onnx")
    path = tmp_path / "gpu.pbtxt"
    path.write_text(config_text("qa", inputs, outputs, max_batch_size=8, kind="KIND_GPU", tensorrt_fp16=True))
    accelerator = parse_config(path).optimization.execution_accelerators.gpu_execution_accelerator[0]
    assert accelerator.name == "tensorrt" and accelerator.parameters["precision_mode"] == "FP16"
    with pytest.raises(ConfigError, match="--triton-kind is KIND_CPU or KIND_GPU"):
        triton.run(ctx, tmp_path / "repo", kind="KIND_TPU", overwrite=True)
