"""Property-based tests of the data path: reading TSV files and tokenizing examples into
features lose, duplicate or reorder no example. (Batching and bucketing: tests/test_features.py.)"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from encoderzoo.assets import asset_path
from encoderzoo.tasks import get_task
from encoderzoo.tasks.squad import QAExample

SST2 = get_task("sst2")
# printable text without the characters that structure a TSV file
TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40).filter(
    lambda t: t.strip() != "")
VOCABULARY = ("the", "cat", "sat", "on", "a", "mat", "while", "12", "dogs", "ran", ",", "quickly", "!",
              "über", "naïve")
WORDS = st.lists(st.sampled_from(VOCABULARY), min_size=1, max_size=60).map(" ".join)
INPUTS = ("input_ids", "attention_mask")


@cache
def tokenizer() -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(asset_path("demo/model"))


@given(rows=st.lists(st.tuples(TEXT, st.sampled_from(["0", "1"])), min_size=1, max_size=30),
       indexed=st.booleans(), newline=st.sampled_from(["\n", "\r\n"]), bom=st.booleans(),
       limit=st.one_of(st.none(), st.integers(1, 35)))
@settings(max_examples=120, deadline=None)
def test_tsv_reading_keeps_every_row_once_in_order(rows: list[tuple[str, str]], indexed: bool, newline: str,
                                                   bom: bool, limit: int | None) -> None:
    header = ["index", "sentence", "label"] if indexed else ["sentence", "label"]
    body = [[str(1000 + i), text, label] if indexed else [text, label]
            for i, (text, label) in enumerate(rows)]
    lines = ["\t".join(fields) for fields in [header, *body]]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "dev.tsv"
        path.write_bytes((("\ufeff" if bom else "") + newline.join(lines) + newline).encode("utf-8"))
        examples = SST2.read(path, split="dev", limit=limit).examples
    expected = rows[:limit]
    assert [(e.texts[0], e.label) for e in examples] == expected
    assert [e.id for e in examples] == [str(1000 + i) if indexed else str(i) for i in range(len(expected))]
    assert [e.line for e in examples] == list(range(2, 2 + len(expected)))


@given(texts=st.lists(WORDS | TEXT, min_size=1, max_size=25), seq_len=st.integers(4, 48))
@settings(max_examples=60, deadline=None)
def test_tokenization_gives_one_row_per_example_in_order(texts: list[str], seq_len: int) -> None:
    from encoderzoo.tasks.classification import ClassificationExample

    config = type("Config", (), {"num_labels": 2, "id2label": {0: "negative", 1: "positive"}})()
    task = SST2.for_model(config, "test")
    examples = [ClassificationExample(f"id{i}", i + 2, (t,), "1") for i, t in enumerate(texts)]
    features = task.encode(examples, tokenizer(), seq_len=seq_len, input_names=INPUTS)
    assert features.example_ids.tolist() == [e.id for e in examples]
    ids, mask = features.arrays["input_ids"], features.arrays["attention_mask"]
    assert ids.shape == (len(examples), seq_len)
    assert (features.lengths == mask.sum(axis=1)).all() and (features.lengths <= seq_len).all()
    cls, sep = tokenizer().cls_token_id, tokenizer().sep_token_id
    for row, length in zip(ids, features.lengths, strict=True):
        assert row[0] == cls and row[length - 1] == sep and (row[length:] == 0).all()
    alone = task.encode(examples[-1:], tokenizer(), seq_len=seq_len, input_names=INPUTS)
    assert (alone.arrays["input_ids"][0] == ids[-1]).all()  # no example leaks into another's row


@given(contexts=st.lists(WORDS, min_size=1, max_size=8), questions=st.lists(WORDS, min_size=8, max_size=8),
       stride=st.integers(2, 24))
@settings(max_examples=40, deadline=None)
def test_squad_windows_cover_every_context_token_in_example_order(contexts: list[str], questions: list[str],
                                                                  stride: int) -> None:
    task = replace(get_task("squad"), doc_stride=stride, max_query_tokens=12)
    examples = [QAExample(f"q{i}", questions[i], context, (context.split()[0],), (0,))
                for i, context in enumerate(contexts)]
    features = task.encode(examples, tokenizer(), seq_len=40, input_names=INPUTS)
    index = features.extras["example_index"]
    assert (np.diff(index) >= 0).all()  # an example's windows together, examples in order
    assert set(index.tolist()) == set(range(len(examples)))
    assert features.example_ids.tolist() == [examples[i].id for i in index]
    for i, example in enumerate(examples):
        spans = features.extras["offsets"][index == i].reshape(-1, 2)
        covered = {int(start) for start, end in spans if start >= 0 and end > start}
        wanted = tokenizer()(example.context, add_special_tokens=False, return_offsets_mapping=True)
        assert covered == {start for start, end in wanted["offset_mapping"] if end > start}
