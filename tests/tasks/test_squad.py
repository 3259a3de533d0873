import json
from pathlib import Path

import numpy as np
import pytest

from encoderzoo.errors import DataError
from encoderzoo.tasks import get_task
from encoderzoo.tasks.squad import QAExample, QuestionAnswering
from encoderzoo.tasks.squad_eval import best_over_golds, exact_match, f1, normalize_answer
from tests.conftest import SQUAD_DEV, needs_shared

SQUAD = get_task("squad")
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


# -- the official v1.1 scoring logic --------------------------------------------------------------

@pytest.mark.parametrize(("text", "normalized"), [
    ("The Denver Broncos!", "denver broncos"),
    ("  an   apple\t pie ", "apple pie"),  # articles and whitespace
    ("A.B.C. (1990s)", "abc 1990s"),  # punctuation goes, even inside words
    ("theater anthem", "theater anthem"),  # articles only as whole words
    ("The", ""),
])
def test_normalization(text: str, normalized: str) -> None:
    assert normalize_answer(text) == normalized


def test_exact_match_and_f1_follow_the_official_logic() -> None:
    assert exact_match("the Denver Broncos.", "Denver Broncos") == 1.0
    assert exact_match("Denver", "Denver Broncos") == 0.0
    assert f1("Denver Broncos team", "Denver Broncos") == pytest.approx(0.8)  # p 2/3, r 1
    assert f1("Broncos Broncos", "Broncos") == pytest.approx(2 / 3)  # token counts, not sets
    assert f1("", "Denver") == 0.0
    assert exact_match("", "the") == 1.0 and f1("", "the") == 0.0  # both normalize to nothing
    golds = ("Denver Broncos", "the Broncos", "Broncos")
    assert best_over_golds(exact_match, "broncos", golds) == 1.0
    assert best_over_golds(f1, "Denver", golds) == pytest.approx(2 / 3)


def test_scores_average_over_questions() -> None:
    examples = [QAExample("a", "q?", "c", ("Denver Broncos",), (0,)),
                QAExample("b", "q?", "c", ("Carolina Panthers", "Panthers"), (0, 9))]
    score = SQUAD.score(examples, ["Denver", "the panthers"])
    assert score.metrics == {"exact_match": 0.5, "f1": pytest.approx((2 / 3 + 1.0) / 2)}


@needs_shared(SQUAD_DEV)
def test_gold_answers_score_100() -> None:
    examples = SQUAD.read(SQUAD_DEV).examples
    assert len(examples) == 10570 and examples[0].id == "56be4db0acb8001400a502ec"
    assert examples[0].answers == ("Denver Broncos",) * 3 and examples[0].title == "Super_Bowl_50"
    score = SQUAD.score(examples, [e.answers[0] for e in examples])
    assert score.metrics == {"exact_match": 1.0, "f1": 1.0}


# -- reading -----------------------------------------------------------------------------------------

def squad_file(tmp_path: Path, document: object) -> Path:
    path = tmp_path / "dev.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document), encoding="utf-8")
    return path


def doc(qa: dict | None = None, paragraph: dict | None = None) -> dict:  # type: ignore[type-arg]
    qa = qa if qa is not None else {"id": "q1", "question": "Who won?",
                                    "answers": [{"text": "Denver", "answer_start": 0}]}
    paragraph = paragraph if paragraph is not None else {"context": "Denver won.", "qas": [qa]}
    return {"version": "1.1", "data": [{"title": "T", "paragraphs": [paragraph]}]}


MALFORMED = [
    ('{"data": [{"paragraphs": [', r"line 1, column 27: not valid JSON .*truncated"),
    ([1, 2], "no 'data' list at the top level"),
    ({"data": [{"title": "T"}]}, r"data\[0\] has no 'paragraphs'"),
    (doc(paragraph={"qas": []}), r"data\[0\]\.paragraphs\[0\] has no 'context'"),
    (doc(qa={"id": "q1", "question": "Who?"}),
     r"question q1 \(data\[0\]\.paragraphs\[0\]\.qas\[0\]\) has no 'answers'"),
    (doc(qa={"id": "q1", "question": "Who?", "answers": []}), "has no answers; .*SQuAD 2.0"),
    (doc(qa={"id": "q1", "question": "Who?", "answers": [{"text": "won", "answer_start": 0}]}),
     r"answer 'won' is not at answer_start 0 of its context \(found 'Den'\); fix answer_start"),
    (doc(qa={"id": "q1", "question": "Who?", "answers": [{"text": "won", "answer_start": "7"}]}),
     "'answer_start' is a str"),
    (doc(qa={"id": "q1", "question": " ", "answers": [{"text": "won", "answer_start": 7}]}),
     "empty question"),
]


@pytest.mark.parametrize(("document", "message"), MALFORMED)
def test_malformed_squad_files(tmp_path: Path, document: object, message: str) -> None:
    path = squad_file(tmp_path, document)
    with pytest.raises(DataError, match=message) as caught:
        SQUAD.read(path)
    assert str(caught.value).startswith(str(path)) and "\n" not in str(caught.value)


def test_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "dev.json").write_bytes(b'{"data": "\xff"}')
    with pytest.raises(DataError, match="not UTF-8 at byte 10"):
        SQUAD.read(tmp_path / "dev.json")


# -- windows, spans -------------------------------------------------------------------------------

def long_example(words: int = 300) -> QAExample:
    context = " ".join(f"word{i}" for i in range(words)) + " The answer is Denver Broncos here."
    start = context.index("Denver Broncos")
    return QAExample("q", "What is the answer?", context, ("Denver Broncos",), (start,))


def test_windows_advance_by_doc_stride_and_map_back_to_the_context(tiny_tokenizer) -> None:  # type: ignore[no-untyped-def]
    task = QuestionAnswering(name="t", doc_stride=32)
    example = long_example()
    features = task.encode([example], tiny_tokenizer, seq_len=96, input_names=INPUTS)
    offsets = features.extras["offsets"]
    assert len(features) > 3 and set(features.example_ids) == {"q"}
    assert (features.extras["example_index"] == 0).all()
    context_tokens = [np.flatnonzero(offsets[r, :, 0] >= 0) for r in range(len(features))]
    starts = [int(offsets[r, tokens[0], 0]) for r, tokens in enumerate(context_tokens)]
    all_starts = sorted({int(s) for r in range(len(features)) for s in offsets[r, :, 0] if s >= 0})
    assert [all_starts.index(s) for s in starts[:3]] == [0, 32, 64]  # 32 context tokens further each time
    for r, tokens in enumerate(context_tokens):  # question tokens and specials are outside the context
        assert features.arrays["token_type_ids"][r, tokens].all()
    last = context_tokens[-1][-1]
    assert example.context[offsets[-1, last, 0]:offsets[-1, last, 1]] == "."


def test_questions_are_cut_at_max_query_tokens(tiny_tokenizer) -> None:  # type: ignore[no-untyped-def]
    task = QuestionAnswering(name="t", max_query_tokens=5)
    example = QAExample("q", "one two three four five six seven", "Denver won.", ("Denver",), (0,))
    features = task.encode([example], tiny_tokenizer, seq_len=32, input_names=INPUTS)
    question_tokens = int((features.arrays["token_type_ids"][0] == 0).sum() - (32 - features.lengths[0]))
    assert question_tokens == 5 + 2  # [CLS] five question tokens [SEP]


def peaked(features, example: QAExample, answer: int = 0) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    """Start/end logits peaking on the tokens of an example's gold answer, in every window that
    holds it whole."""
    offsets = features.extras["offsets"]
    start = np.full(offsets.shape[:2], -10.0, np.float32)
    end = start.copy()
    a0 = example.answer_starts[answer]
    a1 = a0 + len(example.answers[answer])
    for r in range(len(features)):
        inside = offsets[r, :, 0] >= 0
        first = np.flatnonzero(inside & (offsets[r, :, 0] <= a0) & (offsets[r, :, 1] > a0))
        last = np.flatnonzero(inside & (offsets[r, :, 0] < a1) & (offsets[r, :, 1] >= a1))
        if len(first) and len(last):
            start[r, first[0]], end[r, last[-1]] = 10.0, 10.0
    return {"start_logits": start, "end_logits": end}


def test_best_span_over_all_windows(tiny_tokenizer) -> None:  # type: ignore[no-untyped-def]
    task = QuestionAnswering(name="t", doc_stride=32)
    example = long_example()
    features = task.encode([example], tiny_tokenizer, seq_len=96, input_names=INPUTS)
    outputs = peaked(features, example)
    assert task.predict([example], features, outputs) == ["Denver Broncos"]
    # peaks on question tokens or outside the context never win
    outputs["start_logits"][:, 1] = outputs["end_logits"][:, 2] = 50.0
    assert task.predict([example], features, outputs) == ["Denver Broncos"]


def test_span_rules(tiny_tokenizer) -> None:  # type: ignore[no-untyped-def]
    task = QuestionAnswering(name="t", max_answer_tokens=2)
    context = "one two three four five six"
    example = QAExample("q", "Which?", context, ("two",), (4,))
    features = task.encode([example], tiny_tokenizer, seq_len=32, input_names=INPUTS)
    token = {context[s:e]: i for i, (s, e) in enumerate(features.extras["offsets"][0]) if s >= 0}
    assert len(token) == 6  # one token per word
    start = np.full((1, 32), -5.0, np.float32)
    end = start.copy()
    start[0, token["one"]], start[0, token["four"]] = 8.0, 9.0
    end[0, token["two"]], end[0, token["six"]], end[0, token["five"]] = 9.0, 8.0, 1.0
    # four..two (18) ends before it starts; one..six (16) and four..six (17) exceed 2 tokens
    outputs = {"start_logits": start, "end_logits": end}
    assert task.predict([example], features, outputs) == ["one two"]


@pytest.mark.slow
@needs_shared(SQUAD_DEV)
def test_round_trip_of_gold_spans_through_features_and_postprocessing(tiny_tokenizer) -> None:  # type: ignore[no-untyped-def]
    """Every first gold answer turned into start/end logits that peak on its tokens, through the
    project's own windows and span search, on all 10,570 dev questions at 512 tokens."""
    examples = SQUAD.read(SQUAD_DEV).examples
    features = SQUAD.encode(examples, tiny_tokenizer, seq_len=512, input_names=INPUTS)
    assert set(features.extras["example_index"]) == set(range(len(examples)))  # none lost
    owners = features.extras["example_index"]
    start = np.full(features.extras["offsets"].shape[:2], -10.0, np.float32)
    end = start.copy()
    for example_index in np.unique(owners):
        rows = np.flatnonzero(owners == example_index)
        sub = peaked(_rows(features, rows), examples[example_index])
        start[rows], end[rows] = sub["start_logits"], sub["end_logits"]
    predictions = SQUAD.predict(examples, features, {"start_logits": start, "end_logits": end})
    metrics = SQUAD.score(examples, predictions).metrics
    assert metrics["exact_match"] >= 0.99 and metrics["f1"] >= 0.995, metrics


def _rows(features, rows):  # type: ignore[no-untyped-def]
    from encoderzoo.features import Features

    return Features(features.example_ids[rows], {k: v[rows] for k, v in features.arrays.items()},
                    features.lengths[rows], {k: v[rows] for k, v in features.extras.items()})


def test_predictions_file_round_trip(tmp_path: Path) -> None:
    examples = [QAExample("a", "q?", "c", ("x",), (0,)), QAExample("b", "q?", "c", ("y",), (0,))]
    path = tmp_path / "predictions.json"
    SQUAD.write_predictions(examples, ["x", "z"], {}, path)
    assert json.loads(path.read_text()) == {"a": "x", "b": "z"}
    path.write_text(json.dumps({"a": "x"}))
    assert SQUAD.read_predictions(path, examples) == ["x", ""]  # unanswered scores 0
    path.write_text("[1]")
    with pytest.raises(DataError, match=r"expected a JSON object \{question id: answer text\}"):
        SQUAD.read_predictions(path, examples)


def test_a_share_of_the_examples_decodes_as_it_does_among_all(tiny_tokenizer) -> None:  # type: ignore[no-untyped-def]
    """Triage scores its trials on a share of the examples: their windows alone
    (Features.subset, example_index renumbered) give the answers they get among all."""
    rng = np.random.default_rng(0)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]
    examples = [QAExample(str(i), f"which {words[i]}?", "alpha " + " ".join(rng.choice(words, 30 + 15 * i)),
                          ("alpha",), (0,)) for i in range(6)]
    features = SQUAD.encode(examples, tiny_tokenizer, seq_len=48, input_names=INPUTS)
    outputs = {k: rng.normal(size=(len(features), 48)).astype(np.float32)
               for k in ("start_logits", "end_logits")}
    everything = SQUAD.predict(examples, features, outputs)
    share = [1, 4, 5]
    rows = np.flatnonzero(np.isin(features.example_ids, [examples[i].id for i in share]))
    assert len(rows) > 2 * len(share)  # several windows each
    found = SQUAD.predict([examples[i] for i in share], features.subset(rows),
                          {k: v[rows] for k, v in outputs.items()})
    assert found == [everything[i] for i in share]
