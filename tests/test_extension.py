"""Each axis is one place: from inside this file alone, a backend (ONNX Runtime with its graph
optimizations off), the artifact kind it opens (a copy of the exported graph, with its builder),
a model family (Megatron-BERT), a task and its preset are registered, and the whole chain runs
through them — prepared, built, run, scored against torch fp32, benchmarked and reported. Every
registration is taken back."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from encoderzoo.artifacts import ARTIFACTS, ArtifactKind, BuildStep, register_artifact
from encoderzoo.backends import BACKENDS, BackendContext, BackendSpec, register_backend
from encoderzoo.config import RunConfig
from encoderzoo.families import FAMILIES, Family, register_family
from encoderzoo.fileio import atomic_path
from encoderzoo.pipeline import run
from encoderzoo.recipes import RECIPES, CheckpointSource, DataSource, Recipe, register_recipe
from encoderzoo.tasks import TASKS, register_task
from encoderzoo.tasks.classification import SequenceClassification
from tests.conftest import BERT_CASED_VOCAB, SST2_DEV


class PlainOnnxRuntime:
    """The backend: ONNX Runtime on the CPU with every graph optimization turned off."""

    name, precision = "ort-plain", "fp32"

    def __init__(self, context: BackendContext, precision: str) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.intra_op_num_threads = context.threads
        self.session = ort.InferenceSession(str(context.graph), options, providers=["CPUExecutionProvider"])
        self.outputs = list(context.output_names)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self.outputs, self.session.run(self.outputs, feeds), strict=True))

    def settings(self) -> dict[str, Any]:
        return {"graph_optimization": "none"}


def copy_graph(job: BuildStep) -> dict[str, Any]:
    """The artifact kind's builder: the exported graph, copied as it is."""
    assert job.source is not None
    with atomic_path(job.files[0]) as tmp:
        shutil.copyfile(job.source, tmp)
    return {"method": "a copy of the export", "source": job.source.name}


@pytest.fixture
def extended() -> Iterator[None]:
    register_artifact(ArtifactKind("onnx-plain", "the export, run without graph optimizations",
                                   ("model.plain.onnx",), made_from="onnx", build=copy_graph))
    register_backend(BackendSpec(name="ort-plain", description="ONNX Runtime, no graph optimizations",
                                 precisions=("fp32",), defaults=("fp32",), create=PlainOnnxRuntime,
                                 opens={"fp32": "onnx-plain"}))
    register_task(SequenceClassification(name="polarity", text_columns=("sentence",), label_column="label",
                                         labels=("0", "1"), label_names=("negative", "positive"),
                                         labels_are_indices=True))
    register_family(Family(name="megatron-bert", model_types=("megatron-bert",),
                           tokenizer_class="BertTokenizer", tokenizer_files=("vocab.txt",),
                           architecture="bert-base-cased", hub_tokenizer="bert-base-cased"))
    register_recipe(Recipe(name="polarity", description="Sentence polarity, SST-2's layout", task="polarity",
                           family="bert", checkpoint=CheckpointSource(),
                           data={"dev": DataSource(hint="sentence<TAB>label")}, seq_len=64, reference={},
                           architecture="bert-base-cased", tokenizer_hub_id="bert-base-cased"))
    try:
        yield
    finally:
        RECIPES.unregister("polarity")
        FAMILIES.unregister("megatron-bert")
        TASKS.unregister("polarity")
        BACKENDS.unregister("ort-plain")
        ARTIFACTS.unregister("onnx-plain")


def tiny_megatron_bert(folder: Path) -> Path:
    """A model of the family registered here: Megatron-BERT, random weights, BERT's vocabulary."""
    import torch
    from transformers import AutoTokenizer, MegatronBertConfig, MegatronBertForSequenceClassification

    torch.manual_seed(0)
    config = MegatronBertConfig(vocab_size=28996, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                intermediate_size=64, max_position_embeddings=128)
    MegatronBertForSequenceClassification(config).eval().save_pretrained(folder)
    AutoTokenizer.from_pretrained(BERT_CASED_VOCAB.parent, do_lower_case=False).save_pretrained(folder)
    return folder


@pytest.mark.slow
@pytest.mark.usefixtures("extended")
def test_a_backend_an_artifact_kind_a_family_and_a_task_preset_registered_here_run_the_chain(
    tmp_path: Path
) -> None:
    out = tmp_path / "run"
    checkpoint = tiny_megatron_bert(tmp_path / "megatron")
    passed, report_md = run(RunConfig(
        recipe="polarity", out=out, checkpoint=str(checkpoint), data=(str(SST2_DEV),), limit=16,
        backends=("ort-plain",), batch_sizes=(2,), seq_lens=(16,), warmup=0, min_runs=2, min_seconds=0,
        e2e_runs=1, ceiling=False))
    assert passed
    report = json.loads((out / "report.json").read_text())
    rows = {(r["backend"], r["precision"]): r for r in report["accuracy"]}
    assert set(rows) == {("torch", "fp32"), ("ort-plain", "fp32")}  # torch fp32: the baseline
    plain = rows[("ort-plain", "fp32")]
    assert plain["vs_torch"]["agreement"] == 1.0 and plain["vs_torch"]["max_abs_diff"] < 1e-4
    record = json.loads((out / "model" / "onnx-plain.json").read_text())
    assert record["method"] == "a copy of the export" and len(record["sha256"]) == 64
    assert (out / "model" / "model.plain.onnx").read_bytes() == (out / "model" / "model.onnx").read_bytes()
    assert {r["backend"] for r in report["benchmark"]} == {"torch", "ort-plain"}
    assert "ort-plain" in report_md.read_text() and report["recipe"]["family"] == "megatron-bert"
