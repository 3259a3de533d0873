"""`encoderzoo.load(run).predict(inputs)` runs the task's own encode → session → decode: on every
task's fixture, the run's own data given as raw inputs come back as the run's predictions, and
the raw outputs equal the ones infer saved (same batches, so bit for bit)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import encoderzoo
from encoderzoo.config import RunConfig
from encoderzoo.infer import load_outputs
from encoderzoo.pipeline import run
from tests.conftest import BERT_CASED_VOCAB, MNLI_MATCHED, SQUAD_DEV, SST2_DEV, build_tiny_bert
from tests.glue_fixtures import glue_dev
from tests.tasks.test_embed import minilm, stsb_pairs
from tests.tasks.test_multiple_choice import swag_val
from tests.tasks.test_ner import conll_file
from tests.tasks.test_squad2 import squad2_dev


def data_for(task: str, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if task == "classify":
        path = folder / "reviews.csv"
        rows = [r.split("\t") for r in SST2_DEV.read_text(encoding="utf-8").splitlines()[1:13]]
        with path.open("w", encoding="utf-8", newline="") as f:
            csv.writer(f).writerows([("text", "label"), *rows])
        return path
    return {"sst2": lambda: SST2_DEV, "mnli": lambda: MNLI_MATCHED.parent, "squad": lambda: SQUAD_DEV,
            "stsb": lambda: glue_dev("stsb", folder), "squad2": lambda: squad2_dev(folder / "dev-v2.0.json"),
            "ner": lambda: conll_file(folder / "valid.txt", long=1),
            "swag": lambda: swag_val(folder / "val.csv"),
            "embed": lambda: stsb_pairs(folder / "dev.tsv", pairs=12)}[task]()


def raw_inputs(task: str, examples: list[Any]) -> list[Any]:
    """The run's examples as a user would send them."""
    if task == "embed":
        return [text for e in examples for text in e.texts]
    if task in ("squad", "squad2"):
        return [{"question": e.question, "context": e.context} for e in examples]
    if task == "ner":
        return [list(e.tokens) for e in examples]
    if task == "swag":
        return [{"context": e.context, "header": e.header, "endings": list(e.endings)} for e in examples]
    return [e.texts[0] if len(e.texts) == 1 else list(e.texts) for e in examples]


def as_run_writes(task: str, model: Any, shown: list[Any]) -> list[Any]:
    """An answer of `predict` as the task's own prediction (what score read from the run)."""
    if task in ("squad", "squad2"):
        return [a["answer"] for a in shown]
    if task == "ner":
        return [tuple(a["tags"]) for a in shown]
    if task == "swag":
        return [str(a["choice"]) for a in shown]
    if task == "stsb":
        return [a["score"] for a in shown]
    names = dict(zip(model.task.label_names, model.task.labels, strict=True))
    return [names.get(a["label"], a["label"]) for a in shown]


TASKS = ["sst2", "mnli", "stsb", "classify", "squad", "squad2", "ner", "swag", "embed"]


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
def test_predict_gives_the_runs_predictions_on_every_tasks_fixture(task: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    model_options: dict[str, Any] = {"random_weights": "tiny", "tokenizer": str(BERT_CASED_VOCAB.parent)}
    if task == "embed":
        model_options = {"checkpoint": str(minilm())}
    if task == "classify":
        model_options = {"checkpoint": str(build_tiny_bert(tmp_path / "tiny")), "text_column": "text",
                         "label_column": "label"}
    run(RunConfig(recipe=task, out=out, data=(str(data_for(task, tmp_path / "data")),), limit=10,
                  seq_len=128 if task.startswith("squad") else 64, backends=("onnxruntime:fp32",),
                  bench=False, e2e_runs=0, gate=0.0, min_agreement=0.0, **model_options))
    model = encoderzoo.load(out, variant="onnxruntime:fp32")
    examples, features = model.ctx.examples(), model.ctx.features()
    inputs = raw_inputs(task, examples)
    outputs = model.outputs(inputs)
    _, saved = load_outputs(out / "outputs" / "onnxruntime-fp32.npz")
    for name, array in saved.items():
        np.testing.assert_allclose(outputs[name], array, atol=1e-5, err_msg=name)
    shown = model.predict(inputs)
    if task == "embed":
        np.testing.assert_allclose(np.stack(shown), saved["sentence_embedding"], atol=1e-5)
        assert model.embed(inputs[:2]).shape == (2, 384)
        return
    expected = model.task.predict(examples, features, saved)
    expected = [getattr(p, "text", p) for p in expected]  # SQuAD 2.0: the answer's text
    found = as_run_writes(task, model, shown)
    if task == "stsb":
        np.testing.assert_allclose(found, expected, atol=1e-5)
    else:
        assert found == expected
