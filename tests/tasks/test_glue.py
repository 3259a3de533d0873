"""Every registered task runs end to end on a tiny random BERT, on a file in its distributed
layout, and its metrics equal scikit-learn's / scipy's on the predictions the run wrote; GLUE's
submission format scores the same."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from encoderzoo.config import RunConfig
from encoderzoo.pipeline import run
from encoderzoo.stages.score import score_predictions
from encoderzoo.tasks import TASKS
from tests.conftest import BERT_CASED_VOCAB, LOCAL_DATA
from tests.glue_fixtures import glue_dev

GLUE_FIXTURES = ("cola", "mrpc", "qqp", "qnli", "rte", "wnli", "stsb")
OFFICIAL = {  # what GLUE reports, computed by the kept libraries
    "accuracy": lambda g, p: accuracy_score(g, p),
    "f1": lambda g, p: f1_score(g, p, pos_label="1"),
    "mcc": lambda g, p: matthews_corrcoef(g, p),
    "pearson": lambda g, p: pearsonr(np.array(g, float), np.array(p, float)).statistic,
    "spearman": lambda g, p: spearmanr(np.array(g, float), np.array(p, float)).statistic,
}


def test_every_task_has_an_end_to_end_run() -> None:
    """Here, in test_families.py (sst2, mnli, squad: every family), test_files.py, test_squad2.py,
    test_ner.py, test_embed.py or test_multiple_choice.py."""
    others = {"classify", "regress", "squad2", "ner", "embed", "swag"}
    assert set(TASKS) == set(GLUE_FIXTURES) | set(LOCAL_DATA) | others


@pytest.mark.slow
@pytest.mark.parametrize("task", GLUE_FIXTURES)
def test_a_glue_task_runs_end_to_end_scored_as_glue_scores_it(task: str, tmp_path: Path) -> None:
    data = glue_dev(task, tmp_path / "glue")
    out = tmp_path / "run"
    passed, _ = run(RunConfig(
        recipe=task, out=out, random_weights="tiny", tokenizer=str(BERT_CASED_VOCAB.parent),
        data=(str(data),), seq_len=64, backends=("torch", "onnxruntime:fp32", "openvino:fp32"), bench=False,
        e2e_runs=0))
    report = json.loads((out / "report.json").read_text())
    assert passed and report["data"]["examples"] == 12  # CoLA: its first line is data, not a header
    with (out / "predictions" / "onnxruntime-fp32.tsv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    gold, found = [r["label"] for r in rows], [r["prediction"] for r in rows]
    ort = next(r for r in report["accuracy"] if r["backend"] == "onnxruntime")
    assert set(ort["metrics"]) == set(TASKS[task].metric_names)
    for name, value in ort["metrics"].items():
        # the predictions file keeps 6 significant digits of a regression's predictions
        assert value == pytest.approx(OFFICIAL[name](gold, found), abs=1e-6 if task != "stsb" else 1e-4), name
    assert ort["vs_torch"]["agreement"] == 1.0

    # GLUE's submission format: index (0-based position in the dev file) and prediction
    order = sorted(rows, key=lambda r: int(r["line"]))
    submission = tmp_path / f"{task}.tsv"
    lines = "".join(f"{i}\t{r['prediction']}\n" for i, r in enumerate(order))
    submission.write_text("index\tprediction\n" + lines)
    scored = score_predictions(task, submission, (str(data),))
    for name, value in ort["metrics"].items():
        assert scored[name] == pytest.approx(100 * value, abs=1e-4 if task != "stsb" else 1e-2), name
