"""Multiple choice (SWAG): read as distributed, encoded as choices x tokens, exported with a
choices axis, run on every backend and precision of this machine with fp32 equal to PyTorch, and
scored as scikit-learn scores accuracy."""

import csv
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from sklearn.metrics import accuracy_score

from encoderzoo.config import RunConfig
from encoderzoo.errors import DataError
from encoderzoo.pipeline import run
from encoderzoo.tasks import get_task
from tests.conftest import build_tiny_bert
from tests.glue_fixtures import _sentences

HEADER = ["", "video-id", "fold-ind", "startphrase", "sent1", "sent2", "gold-source", "ending0", "ending1",
          "ending2", "ending3", "label"]  # SWAG's val.csv, as distributed


def swag_val(path: Path, rows: int = 12, label: str | None = None) -> Path:
    """`rows` examples in SWAG's layout: real SST-2 sentences as contexts and endings, quoted as
    the csv module writes them (the endings hold commas)."""
    s = _sentences()
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        for i in range(rows):
            endings = [s[40 + 4 * i + k] for k in range(4)]
            writer.writerow([i, f"lsmdc{i}", str(i), f"{s[i]} {s[20 + i]}", s[i], "Then, someone",
                             "gold", *endings, label if label is not None and i == rows - 1 else i % 4])
    return path


@pytest.fixture(scope="module")
def tiny_choice_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert-mc"), head="multiple-choice")


def test_swag_is_read_as_distributed_and_encoded_choice_by_choice(tiny_choice_model: Path,
                                                                  tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    task = get_task("swag")
    examples = task.read(swag_val(tmp_path / "val.csv"), split="dev").examples
    assert len(examples) == 12 and examples[1].label == "1" and len(examples[0].endings) == 4
    assert examples[0].header == "Then, someone" and examples[0].line == 2
    tokenizer = AutoTokenizer.from_pretrained(tiny_choice_model)
    features = task.encode(examples, tokenizer, seq_len=48, input_names=("input_ids", "attention_mask"))
    assert features.arrays["input_ids"].shape == (12, 4, 48) and features.row_shape == (4,)
    first = tokenizer(examples[0].context, f"Then, someone {examples[0].endings[2]}", truncation=True,
                      max_length=48)["input_ids"]
    assert features.arrays["input_ids"][0, 2, :len(first)].tolist() == first  # context, then header + ending
    assert features.lengths[0] == features.arrays["attention_mask"][0].sum(axis=-1).max()
    with pytest.raises(DataError, match=r"val\.csv, line 13: 'label' is '4', not the index of one of the 4"):
        task.read(swag_val(tmp_path / "val.csv", label="4"))


@pytest.mark.slow
def test_swag_runs_on_every_backend_with_fp32_equal_to_torch(tiny_choice_model: Path, tmp_path: Path) -> None:
    data = swag_val(tmp_path / "val.csv")
    out = tmp_path / "run"
    backends = ("torch", "onnxruntime", "openvino", "onnxruntime:int8-block", "onnxruntime:int8-static")
    run(RunConfig(recipe="swag", out=out, checkpoint=str(tiny_choice_model), data=(str(data),), seq_len=48,
                  backends=backends, bench=False, e2e_runs=0, gate=0.0, min_agreement=0.0,
                  calibration_size=8))
    report = json.loads((out / "report.json").read_text())
    rows = {(r["backend"], r["precision"]): r for r in report["accuracy"]}
    assert {("torch", "fp32"), ("onnxruntime", "fp32"), ("onnxruntime", "int8"),
            ("onnxruntime", "int8-block"), ("onnxruntime", "int8-static"), ("openvino", "fp32"),
            ("openvino", "int8")} <= set(rows)
    for fp32 in (("onnxruntime", "fp32"), ("openvino", "fp32")):
        assert rows[fp32]["vs_torch"]["agreement"] == 1.0 and rows[fp32]["vs_torch"]["max_abs_diff"] < 1e-4
    graph = onnx.load(str(out / "model" / "model.onnx"), load_external_data=False)
    dims = [d.dim_param for d in graph.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", "choices", "sequence"]
    with (out / "predictions" / "openvino-int8.tsv").open(encoding="utf-8") as f:
        found = list(csv.DictReader(f, delimiter="\t"))
    assert len(found) == 12 and all(len(r["scores"].split(",")) == 4 for r in found)
    accuracy = accuracy_score([r["label"] for r in found], [r["prediction"] for r in found])
    assert rows[("openvino", "int8")]["metrics"]["accuracy"] == pytest.approx(accuracy)
    assert np.isfinite([r["metrics"]["accuracy"] for r in rows.values()]).all()
