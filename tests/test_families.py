"""Every registered family runs every kind of task end to end on a tiny random model (a single
sentence, a sentence pair, question answering): exported, fused where ONNX Runtime's optimizer
can, and run by ONNX Runtime and OpenVINO with the predictions of PyTorch exactly. Every task runs
end to end on BERT in tests/tasks/test_glue.py."""

import json
from pathlib import Path

import onnx
import pytest

from encoderzoo.config import RunConfig
from encoderzoo.families import FAMILIES, WITH_SEGMENTS, WITHOUT_SEGMENTS, get_family
from encoderzoo.pipeline import run
from encoderzoo.quantize_token import float_weights, value_projections
from encoderzoo.recipes import RECIPES
from encoderzoo.tasks import TASKS
from tests.conftest import LOCAL_DATA

TASK_PRESETS = [recipe.name for recipe in RECIPES.values() if recipe.kind == "task"]
KINDS = ("sst2", "mnli", "squad")  # one task of each kind, with the real dev data in ../shared
SLIMMED = {"bert", "roberta", "xlm-roberta", "camembert", "electra", "distilbert"}  # encoderzoo.first_token
FUSED_QKV = {"deberta", "modernbert"}


def test_every_task_has_a_preset() -> None:
    assert set(TASK_PRESETS) == set(TASKS) and set(KINDS) == set(LOCAL_DATA)


@pytest.mark.slow
@pytest.mark.parametrize("task", KINDS)
@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_family_runs_every_task_end_to_end(
    family: str, task: str, family_tokenizers: dict[str, Path], tmp_path: Path
) -> None:
    assert family in family_tokenizers, f"no test tokenizer for family {family!r} (tests/tokenizers.py)"
    out = tmp_path / "run"
    config = RunConfig(
        recipe=task, out=out, random_weights="tiny", family=family, tokenizer=str(family_tokenizers[family]),
        data=(str(LOCAL_DATA[task]),), limit=5, batch_size=4, seq_len=64 if task != "squad" else 128,
        backends=("torch", "onnxruntime:fp32", "openvino:fp32"), bench=False, e2e_runs=0,
    )
    passed, _ = run(config)
    report = json.loads((out / "report.json").read_text())
    assert passed and report["recipe"]["family"] == family
    for row in report["accuracy"]:
        if row["backend"] != "torch":
            assert row["vs_torch"]["agreement"] == 1.0, row
    inputs = json.loads((out / "data" / "prepare.json").read_text())["options"]["inputs"]
    assert tuple(inputs) == get_family(family).inputs(_Config(out))
    # the last layer runs for the first token only where the head reads no other token and the
    # layer is of a structure encoderzoo slims; outputs equal all the same (agreement above)
    slimmed = family in SLIMMED and task != "squad"
    assert report["export"]["first_token"]["applied"] is slimmed, report["export"]["first_token"]
    # int8-token finds the attention's value projections by structure, in every family whose
    # export makes them MatMuls of their own (DeBERTa v1 and ModernBERT project Q, K, V at once)
    graph = onnx.load(str(out / "model" / "model.onnx")).graph
    values = value_projections(graph, float_weights(graph))
    assert bool(values) == (family not in FUSED_QKV), values
    assert all(n.split("/")[-2] in ("value", "value_proj", "v_lin", "v") for n in values), values


class _Config:
    """The random checkpoint's config.json as attributes."""

    def __init__(self, out: Path) -> None:
        self.__dict__.update(json.loads((out / "checkpoint" / "config.json").read_text()))


def test_segment_inputs_come_from_the_config_not_the_family_name() -> None:
    """DeBERTa v2 with segment embeddings (type_vocab_size 2) takes token_type_ids; v3 (0) does not."""
    deberta = get_family("deberta-v2")
    assert deberta.inputs(_Attrs(type_vocab_size=2)) == WITH_SEGMENTS
    assert deberta.inputs(_Attrs(type_vocab_size=0)) == WITHOUT_SEGMENTS
    assert get_family("deberta").inputs(_Attrs(type_vocab_size=0)) == WITHOUT_SEGMENTS
    assert get_family("distilbert").inputs(_Attrs(type_vocab_size=2)) == WITHOUT_SEGMENTS


class _Attrs:
    def __init__(self, **values: int) -> None:
        self.__dict__.update(values)
