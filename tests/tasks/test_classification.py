from pathlib import Path

import numpy as np
import pytest

from encoderzoo.errors import DataError
from encoderzoo.tasks import get_task
from encoderzoo.tasks.classification import ClassificationExample
from tests.conftest import SST2_DEV, needs_shared

SST2 = get_task("sst2")


def write(tmp_path: Path, content: str | bytes, name: str = "dev.tsv") -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


@needs_shared(SST2_DEV)
def test_reads_the_real_sst2_dev_set() -> None:
    examples = SST2.read(SST2_DEV)
    assert len(examples) == 872
    assert examples[0].texts == ("it 's a charming and often affecting journey . ",)
    assert (examples[0].id, examples[0].line, examples[0].label) == ("0", 2, 1)
    assert sum(e.label for e in examples) == 444
    assert [e.id for e in examples] == [str(i) for i in range(872)]


def test_limit_and_index_column(tmp_path: Path) -> None:
    path = write(tmp_path, "index\tsentence\tlabel\n7\tgood\t1\n9\tbad\t0\n11\tmeh\t0\n")
    examples = SST2.read(path, limit=2)
    assert [(e.id, e.line, e.label) for e in examples] == [("7", 2, 1), ("9", 3, 0)]


def test_windows_line_endings_and_bom(tmp_path: Path) -> None:
    path = write(tmp_path, "\ufeffsentence\tlabel\r\ngood\t1\r\nbad\t0\r\n")
    assert [(e.texts, e.label) for e in SST2.read(path)] == [(("good",), 1), (("bad",), 0)]


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


def test_encode_uses_the_checkpoint_tokenizer(tiny_tokenizer) -> None:  # type: ignore[no-untyped-def]
    texts = [("Hello world", 1), ("a " * 40, 0)]
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


def test_score_agreement_and_predictions(tmp_path: Path) -> None:
    examples = [ClassificationExample(str(i), i + 2, ("x",), y) for i, y in enumerate([1, 0, 1, 0])]
    logits = np.array([[0, 1], [1, 0], [1, 0], [0.2, 0.1]], dtype=np.float32)
    assert SST2.score(examples, {"logits": logits}) == {"accuracy": 0.75}
    flipped = logits.copy()
    flipped[0] = [1, 0]
    assert SST2.agreement({"logits": flipped}, {"logits": logits}) == 0.75
    out = tmp_path / "p.tsv"
    SST2.write_predictions(examples, {"logits": logits}, out)
    lines = out.read_text().splitlines()
    assert lines[0] == "id\tline\tlabel\tprediction\tlogit_0\tlogit_1"
    assert lines[3].split("\t")[:4] == ["2", "4", "1", "0"]
    assert len(lines) == 5
