"""A labelled file of the user's (CSV, TSV, JSONL, Parquet) through `classify` and `regress`:
columns named on the command line, labels by name or index, metrics by scikit-learn/scipy."""

import csv
import json
from pathlib import Path

import pytest

from encoderzoo.config import RunConfig
from encoderzoo.context import RunContext
from encoderzoo.errors import ConfigError, DataError
from encoderzoo.pipeline import run
from encoderzoo.tasks import get_task
from encoderzoo.tasks.generic import configure
from encoderzoo.tasks.records import read_records
from tests.conftest import BERT_CASED_VOCAB, MNLI_MATCHED

NLI = ("entailment", "neutral", "contradiction")


def mnli_rows(count: int) -> list[dict[str, str]]:
    with MNLI_MATCHED.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [r for r in rows if r["gold_label"] in NLI][:count]


def test_every_format_reads_the_same_rows(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"text": 'a "quoted", comma', "label": "neutral"}, {"text": "plain", "label": "2"}]
    with (tmp_path / "d.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, ["text", "label"])
        writer.writeheader()
        writer.writerows(rows)
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "d.parquet")
    for name in ("d.csv", "d.jsonl", "d.parquet"):
        found = [r.values for r in read_records(tmp_path / name, ("text", "label"), "text, label")]
        assert found == rows, name
    with pytest.raises(DataError, match=r"d.jsonl, line 1: no column 'sentence'"):
        list(read_records(tmp_path / "d.jsonl", ("sentence",), "sentence"))
    (tmp_path / "bad.jsonl").write_text('{"text": "a"}\n{"text": \n')
    with pytest.raises(DataError, match=r"bad.jsonl, line 2: not valid JSON"):
        list(read_records(tmp_path / "bad.jsonl", ("text",), "text"))


def test_columns_and_metrics_are_checked() -> None:
    task = get_task("classify")
    with pytest.raises(ConfigError, match="pass --text-column NAME and --label-column"):
        configure(task, text=None, pair=None, label=None, metrics=())
    with pytest.raises(ConfigError, match="--metric auc: not a metric of task 'classify'"):
        configure(task, text="t", pair=None, label="l", metrics=("auc",))
    with pytest.raises(ConfigError, match="--text-column, --label-column and --metric are for `classify`"):
        _ = RunContext(RunConfig(recipe="sst2", out=Path("/tmp/x"), text_column="t")).task_spec


@pytest.mark.slow
def test_a_csv_pair_file_and_a_jsonl_file_with_named_labels_run_end_to_end(tmp_path: Path) -> None:
    from sklearn.metrics import accuracy_score, f1_score

    rows = mnli_rows(15)
    pairs = tmp_path / "pairs.csv"
    with pairs.open("w", newline="", encoding="utf-8") as f:  # quoted as csv writes it
        writer = csv.writer(f)
        writer.writerow(["premise", "hypothesis", "relation"])
        for i, r in enumerate(rows):  # labels by name (any case) and by index
            label = str(NLI.index(r["gold_label"])) if i % 3 == 0 else r["gold_label"].upper()
            writer.writerow([r["sentence1"] + ', "so"', r["sentence2"], label])
    common = {"random_weights": "tiny", "tokenizer": str(BERT_CASED_VOCAB.parent), "label_names": NLI,
              "backends": ("torch", "onnxruntime:fp32"), "bench": False, "e2e_runs": 0, "seq_len": 64}
    out = tmp_path / "pairs"
    passed, _ = run(RunConfig(recipe="classify", out=out, data=(str(pairs),), text_column="premise",
                              text_pair_column="hypothesis", label_column="relation",
                              metric=("accuracy", "f1-macro"), **common))
    report = json.loads((out / "report.json").read_text())
    assert passed and report["data"]["examples"] == 15
    with (out / "predictions" / "onnxruntime-fp32.tsv").open(encoding="utf-8") as f:
        written = list(csv.DictReader(f, delimiter="\t"))
    assert {r["label"] for r in written} <= set(NLI)  # indices and upper case read as the classes
    gold, found = [r["label"] for r in written], [r["prediction"] for r in written]
    ort = next(r for r in report["accuracy"] if r["backend"] == "onnxruntime")
    assert ort["metrics"]["accuracy"] == pytest.approx(accuracy_score(gold, found))
    macro = f1_score(gold, found, average="macro", labels=list(NLI), zero_division=0.0)
    assert ort["metrics"]["f1-macro"] == pytest.approx(macro)
    assert ort["vs_torch"]["agreement"] == 1.0

    single = tmp_path / "single.jsonl"
    lines = [json.dumps({"text": r["sentence1"], "y": r["gold_label"]}) + "\n" for r in rows]
    single.write_text("".join(lines))
    passed, _ = run(RunConfig(recipe="classify", out=tmp_path / "single", data=(str(single),),
                              text_column="text", label_column="y", **common))
    assert passed

    single.write_text(json.dumps({"text": "a", "y": "maybe"}) + "\n")
    with pytest.raises(DataError, match=r"single.jsonl, line 1: label 'maybe' in 'y' is none of the model's"):
        run(RunConfig(recipe="classify", out=tmp_path / "bad", data=(str(single),), text_column="text",
                      label_column="y", **common))


@pytest.mark.slow
def test_a_parquet_regression_file_runs_on_every_backend_with_fp32_equal_to_torch(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"a": r["sentence1"], "b": r["sentence2"], "score": i * 0.3}
            for i, r in enumerate(mnli_rows(12))]
    data = tmp_path / "sim.parquet"
    pq.write_table(pa.Table.from_pylist(rows), data)
    out = tmp_path / "run"
    passed, _ = run(RunConfig(
        recipe="regress", out=out, data=(str(data),), text_column="a", text_pair_column="b",
        label_column="score", random_weights="tiny", tokenizer=str(BERT_CASED_VOCAB.parent),
        backends=("torch", "onnxruntime:fp32", "openvino:fp32"), bench=False, e2e_runs=0, seq_len=64))
    report = json.loads((out / "report.json").read_text())
    rows_by = {(r["backend"], r["precision"]): r for r in report["accuracy"]}
    assert passed and set(rows_by[("torch", "fp32")]["metrics"]) == {"pearson", "spearman"}
    assert "rmse" in rows_by[("torch", "fp32")]["breakdown"]["dev"]
    for key in (("onnxruntime", "fp32"), ("openvino", "fp32")):
        vs_torch = rows_by[key]["vs_torch"]
        assert vs_torch["agreement"] == 1.0 and vs_torch["max_abs_diff"] < 1e-4
