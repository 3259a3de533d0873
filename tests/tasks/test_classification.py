from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from encoderzoo.errors import CheckpointError, DataError
from encoderzoo.tasks import get_task
from encoderzoo.tasks.classification import ClassificationExample
from tests.conftest import MNLI_MATCHED, SST2_DEV, needs_shared

SST2, MNLI = get_task("sst2"), get_task("mnli")


def write(tmp_path: Path, content: str | bytes, name: str = "dev.tsv") -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def model_config(*names: str) -> SimpleNamespace:
    return SimpleNamespace(num_labels=len(names), id2label=dict(enumerate(names)))


def score_logits(task, examples, logits):  # type: ignore[no-untyped-def]
    """Classification predictions need no features beyond the logits."""
    return task.score(examples, task.predict(examples, None, {"logits": logits}))


@needs_shared(SST2_DEV)
def test_reads_the_real_sst2_dev_set() -> None:
    examples = SST2.read(SST2_DEV).examples
    assert len(examples) == 872
    assert examples[0].texts == ("it 's a charming and often affecting journey . ",)
    assert (examples[0].id, examples[0].line, examples[0].label) == ("0", 2, "1")
    assert sum(e.label == "1" for e in examples) == 444
    assert [e.id for e in examples] == [str(i) for i in range(872)]


@needs_shared(MNLI_MATCHED)
def test_reads_the_compact_mnli_file() -> None:
    result = MNLI.read(MNLI_MATCHED, split="matched")
    examples = result.examples
    assert len(examples) == 9815 and result.skipped == 0
    counts = {label: sum(e.label == label for e in examples) for label in MNLI.labels}
    assert counts == {"entailment": 3479, "neutral": 3123, "contradiction": 3213}
    first = examples[0]
    assert first.texts == ("The new rights are nice enough", "Everyone really likes the newest benefits ")
    assert (first.id, first.split, first.group) == ("0", "matched", None)


GLUE_MNLI = ("index\tpromptID\tpairID\tgenre\tsentence1\tsentence2\tgold_label\n"
             "0\t1\t1n\tfiction\tA man sleeps.\tA man rests.\tentailment\n"
             "1\t2\t2c\tgovernment\tThe law passed.\tThe law failed.\tcontradiction\n"
             "2\t3\t3x\tfiction\tIt rained.\tIt was wet.\t-\n"
             "3\t4\t4n\tfiction\tShe sang.\tShe sang well.\tneutral\n")


def test_glue_mnli_layout_with_genre_and_unlabeled_rows(tmp_path: Path) -> None:
    result = MNLI.read(write(tmp_path, GLUE_MNLI), split="mismatched")
    assert result.skipped == 1  # the '-' row, as GLUE leaves it out
    assert [(e.id, e.group, e.label) for e in result.examples] == [
        ("0", "fiction", "entailment"), ("1", "government", "contradiction"), ("3", "fiction", "neutral")]


def test_limit_and_index_column(tmp_path: Path) -> None:
    path = write(tmp_path, "index\tsentence\tlabel\n7\tgood\t1\n9\tbad\t0\n11\tmeh\t0\n")
    examples = SST2.read(path, limit=2).examples
    assert [(e.id, e.line, e.label) for e in examples] == [("7", 2, "1"), ("9", 3, "0")]


def test_windows_line_endings_and_bom(tmp_path: Path) -> None:
    path = write(tmp_path, "\ufeffsentence\tlabel\r\ngood\t1\r\nbad\t0\r\n")
    assert [(e.texts, e.label) for e in SST2.read(path).examples] == [(("good",), "1"), (("bad",), "0")]


BAD_FILES = [
    ("", "the file is empty"),
    ("sentence\tlabel\n", "a header but no data rows"),
    ("text\tlabel\ngood\t1\n", r"line 1: no column 'sentence' in the header \(found: text, label\)"),
    ("sentence\tlabel\ngood\t1\nbad\tnegative\n", r"line 3: label 'negative' is not one of 0, 1"),
    ("sentence\tlabel\ngood\t1\nbad\t0\textra\n", "line 3: 3 tab-separated fields, the header has 2"),
    ("sentence\tlabel\ngood\t1\n \t0\n", "line 3: empty 'sentence'"),
    ("sentence\tlabel\ngood\t1\n\nbad\t0\n", "line 3: empty line inside the data"),
    (b"sentence\tlabel\ngood\t1\nbad \xff\t0\n", "line 3: bytes that are not UTF-8"),
]


@pytest.mark.parametrize(("content", "message"), BAD_FILES)
def test_malformed_files_give_one_line_errors_naming_file_and_row(
    tmp_path: Path, content: str | bytes, message: str
) -> None:
    path = write(tmp_path, content)
    with pytest.raises(DataError, match=message) as caught:
        SST2.read(path)
    assert str(caught.value).startswith(str(path))
    assert "\n" not in str(caught.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file; pass --data"):
        SST2.read(tmp_path / "nope.tsv")


# -- labels are matched by name, never by assumed order ------------------------------------------

def test_mnli_labels_follow_the_checkpoints_id2label() -> None:
    bound = MNLI.for_model(model_config("CONTRADICTION", "entailment", "Neutral"), "ckpt")
    assert bound.model_labels == ("contradiction", "entailment", "neutral")
    examples = [ClassificationExample("0", 2, ("a", "b"), "contradiction"),
                ClassificationExample("1", 3, ("a", "b"), "neutral")]
    logits = np.array([[5.0, 0, 0], [0, 5.0, 0]])  # class 0 = contradiction, class 1 = entailment
    assert score_logits(bound, examples, logits).metrics == {"accuracy": 0.5}


def test_generic_label_names_are_an_error_for_named_labels() -> None:
    with pytest.raises(CheckpointError, match=r"class 0 is called 'LABEL_0'.*--label-names"):
        MNLI.for_model(model_config("LABEL_0", "LABEL_1", "LABEL_2"), "ckpt")


def test_label_names_override_config() -> None:
    bound = MNLI.for_model(model_config("LABEL_0", "LABEL_1", "LABEL_2"), "ckpt",
                           ("neutral", "contradiction", "entailment"))
    assert bound.model_labels == ("neutral", "contradiction", "entailment")


def test_index_labels_accept_generic_and_sentiment_names() -> None:
    assert SST2.for_model(model_config("LABEL_0", "LABEL_1"), "c").model_labels == ("0", "1")
    assert SST2.for_model(model_config("positive", "negative"), "c").model_labels == ("1", "0")
    assert SST2.for_model(model_config("NEG", "POS"), "c").model_labels == ("0", "1")


@pytest.mark.parametrize(("names", "message"), [
    (("negative", "negative"), "names a label twice"),
    (("a", "b", "c"), "3 output classes, task 'sst2' has 2"),
])
def test_unusable_label_configs(names: tuple[str, ...], message: str) -> None:
    with pytest.raises(CheckpointError, match=message):
        SST2.for_model(model_config(*names), "ckpt")


def test_unbound_task_refuses_to_predict() -> None:
    with pytest.raises(RuntimeError, match="not bound to a model"):
        score_logits(SST2, [ClassificationExample("0", 2, ("x",), "1")], np.zeros((1, 2)))


# -- features, scores, predictions -------------------------------------------------------------

def test_encode_uses_the_checkpoint_tokenizer(tiny_tokenizer) -> None:  # type: ignore[no-untyped-def]
    texts = [("Hello world", "1"), ("a " * 40, "0")]
    examples = [ClassificationExample(str(i), i + 2, (t,), y) for i, (t, y) in enumerate(texts)]
    features = SST2.encode(examples, tiny_tokenizer, seq_len=16,
                           input_names=("input_ids", "attention_mask", "token_type_ids"))
    assert features.input_names == ("input_ids", "attention_mask", "token_type_ids")
    assert features.arrays["input_ids"].shape == (2, 16)
    assert features.arrays["input_ids"][0, :4].tolist() == [101, 8667, 1362, 102]  # real vocab ids
    assert features.lengths.tolist() == [4, 16]  # the second is truncated to seq_len
    assert features.arrays["attention_mask"][0].tolist() == [1] * 4 + [0] * 12
    assert not features.arrays["token_type_ids"].any()
    assert features.example_ids.tolist() == ["0", "1"]


def test_pairs_get_segment_ids(tiny_tokenizer) -> None:  # type: ignore[no-untyped-def]
    examples = [ClassificationExample("0", 2, ("Hello", "world"), "neutral")]
    features = MNLI.encode(examples, tiny_tokenizer, seq_len=8,
                           input_names=("input_ids", "attention_mask", "token_type_ids"))
    assert features.arrays["input_ids"][0, :5].tolist() == [101, 8667, 102, 1362, 102]
    assert features.arrays["token_type_ids"][0, :5].tolist() == [0, 0, 0, 1, 1]


def test_score_agreement_and_predictions(tmp_path: Path) -> None:
    bound = SST2.for_model(model_config("negative", "positive"), "ckpt")
    examples = [ClassificationExample(str(i), i + 2, ("x",), y) for i, y in enumerate("1010")]
    logits = np.array([[0, 1], [1, 0], [1, 0], [0.2, 0.1]], dtype=np.float32)
    predictions = bound.predict(examples, None, {"logits": logits})  # type: ignore[arg-type]
    assert predictions == ["1", "0", "0", "0"]
    assert bound.score(examples, predictions).metrics == {"accuracy": 0.75}
    out = tmp_path / "p.tsv"
    bound.write_predictions(examples, predictions, {"logits": logits}, out)
    lines = out.read_text().splitlines()
    assert lines[0] == "id\tsplit\tline\tlabel\tprediction\tlogit_0\tlogit_1"
    assert lines[3].split("\t")[:5] == ["2", "dev", "4", "1", "0"]
    assert len(lines) == 5
    assert bound.read_predictions(out, examples) == predictions  # what `score --predictions` reads


def test_several_splits_are_scored_apart_with_groups() -> None:
    bound = MNLI.for_model(model_config("entailment", "neutral", "contradiction"), "ckpt")
    examples = [
        ClassificationExample("matched/0", 2, ("a", "b"), "entailment", "matched", "fiction"),
        ClassificationExample("matched/1", 3, ("a", "b"), "neutral", "matched", "travel"),
        ClassificationExample("mismatched/0", 2, ("a", "b"), "contradiction", "mismatched", "letters"),
    ]
    logits = np.array([[1.0, 0, 0], [1.0, 0, 0], [0, 0, 1.0]])
    score = score_logits(bound, examples, logits)
    assert score.metrics == {"matched.accuracy": 0.5, "mismatched.accuracy": 1.0}
    assert score.breakdown == {
        "matched/fiction": {"accuracy": 1.0, "examples": 1.0},
        "matched/travel": {"accuracy": 0.0, "examples": 1.0},
        "mismatched/letters": {"accuracy": 1.0, "examples": 1.0},
    }


def test_head_config_names_the_labels() -> None:
    assert MNLI.head_config() == {
        "num_labels": 3, "id2label": {0: "entailment", 1: "neutral", 2: "contradiction"},
        "label2id": {"entailment": 0, "neutral": 1, "contradiction": 2}}


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_fast_encoding_equals_transformers_padding(family: str, family_tokenizers) -> None:  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer, RobertaTokenizer

    from encoderzoo.tasks.tokenize import encode_fixed

    folder = family_tokenizers[family]
    tokenizer = (RobertaTokenizer.from_pretrained(folder) if family == "roberta"
                 else AutoTokenizer.from_pretrained(folder, do_lower_case=False))
    sst2 = SST2.read(SST2_DEV, limit=300).examples
    mnli = MNLI.read(MNLI_MATCHED, limit=300).examples
    for columns in ([[e.texts[0] for e in sst2]], [[e.texts[0] for e in mnli], [e.texts[1] for e in mnli]]):
        want = tokenizer(*columns, truncation=True, max_length=24, padding="max_length",
                         return_token_type_ids=True, return_tensors="np")
        got = encode_fixed(tokenizer, columns, 24)
        for name in ("input_ids", "token_type_ids", "attention_mask"):
            np.testing.assert_array_equal(got[name], want[name])
    # the tokenizer's own settings are left as they were
    assert tokenizer("a b c")["input_ids"] == tokenizer.backend_tokenizer.encode("a b c").ids
    assert tokenizer.backend_tokenizer.truncation is None
