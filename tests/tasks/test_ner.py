"""NER: the CoNLL-2003 layout as distributed, windows over long sentences, the first sub-token's
tag, and entity scores equal to seqeval's (its default mode follows conlleval; strict mode the
scheme) on bent predictions in IOB1, IOB2 and BIOES."""

import json
import random
from pathlib import Path

import numpy as np
import pytest
from seqeval.metrics import classification_report
from seqeval.scheme import IOB2, IOBES

from encoderzoo.config import RunConfig
from encoderzoo.errors import DataError
from encoderzoo.pipeline import run
from encoderzoo.stages.score import score_predictions
from encoderzoo.tasks import get_task
from encoderzoo.tasks.conll import detect_scheme, entity_scores
from tests.conftest import BERT_CASED_VOCAB

NER = get_task("ner")
TYPES = ("PER", "ORG", "LOC", "MISC")
WORDS = ("EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", "Peter", "Blackburn",
         "BRUSSELS", "1996-08-22", "The", "European", "Commission", "said", "on", "Thursday", ".")


def spans_to_tags(length: int, spans: list[tuple[int, int, str]], scheme: str) -> list[str]:
    tags = ["O"] * length
    previous_end, previous_kind = -2, ""
    for start, end, kind in spans:  # sorted, not overlapping; end inclusive
        for i in range(start, end + 1):
            if scheme == "iob2":
                tags[i] = ("B-" if i == start else "I-") + kind
            elif scheme == "iob1":
                opens = i == start and previous_end == start - 1 and previous_kind == kind
                tags[i] = ("B-" if opens else "I-") + kind
            else:
                prefix = "S-" if start == end else "B-" if i == start else "E-" if i == end else "I-"
                tags[i] = prefix + kind
        previous_end, previous_kind = end, kind
    return tags


def random_spans(rng: random.Random, length: int) -> list[tuple[int, int, str]]:
    spans, i = [], 0
    while i < length:
        if rng.random() < 0.35:
            end = min(i + rng.randint(0, 2), length - 1)
            spans.append((i, end, rng.choice(TYPES)))
            i = end + 1 + rng.choice((0, 0, 1))  # adjacent entities too
        else:
            i += 1
    return spans


def conll_file(path: Path, scheme: str = "iob2", sentences: int = 12, seed: int = 0, long: int = 0) -> Path:
    """A CoNLL-2003 file: -DOCSTART- lines, token POS chunk NER per line, blank lines between."""
    rng = random.Random(seed)
    lines = ["-DOCSTART- -X- -X- O", ""]
    for n in range(sentences):
        length = long if n == 0 and long else rng.randint(3, 12)
        tags = spans_to_tags(length, random_spans(rng, length), scheme)
        lines += [f"{rng.choice(WORDS)} NNP I-NP {tag}" for tag in tags] + [""]
        if n == sentences // 2:
            lines += ["-DOCSTART- -X- -X- O", ""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def bent(rng: random.Random, tags: list[str], scheme: str) -> list[str]:
    """Predictions a model might make: some spans moved, retyped, cut, or tags in the wrong scheme."""
    out = list(tags)
    prefixes = {"iob1": "IB", "iob2": "IB", "bioes": "BIES"}[scheme]
    for i in range(len(out)):
        if rng.random() < 0.25:
            out[i] = "O" if rng.random() < 0.4 else f"{rng.choice(prefixes)}-{rng.choice(TYPES)}"
    return out


@pytest.mark.parametrize("scheme", ["iob1", "iob2", "bioes"])
def test_entity_scores_equal_seqeval_on_bent_predictions(scheme: str) -> None:
    rng = random.Random(len(scheme))
    gold = [spans_to_tags(n, random_spans(rng, n), scheme) for n in (rng.randint(1, 15) for _ in range(300))]
    found = [bent(rng, tags, scheme) for tags in gold]
    assert detect_scheme(gold) == scheme
    modes = [(False, {})]
    if scheme != "iob1":  # seqeval's strict mode knows IOB2 and IOBES
        modes.append((True, {"mode": "strict", "scheme": IOB2 if scheme == "iob2" else IOBES}))
    for strict, options in modes:
        ours = entity_scores(gold, found, strict=strict)
        theirs = classification_report(gold, found, output_dict=True, zero_division=0, **options)
        for kind in TYPES:
            for metric, key in (("precision", "precision"), ("recall", "recall"), ("f1", "f1-score")):
                assert ours[kind][metric] == pytest.approx(theirs[kind][key], abs=1e-12), (strict, kind)
            assert ours[kind]["support"] == theirs[kind]["support"]
        for metric, key in (("precision", "precision"), ("recall", "recall"), ("f1", "f1-score")):
            assert ours["overall"][metric] == pytest.approx(theirs["micro avg"][key], abs=1e-12)
        # the predictions do move the scores: not a test that passes on identical input
        assert 0.2 < ours["overall"]["f1"] < 0.9


def test_conlleval_chunk_rules_by_hand() -> None:
    gold = [["I-PER", "I-PER", "O", "I-LOC", "I-LOC", "B-LOC"]]  # IOB1: two adjacent LOCs
    assert entity_scores(gold, gold)["overall"]["f1"] == 1.0
    assert entity_scores(gold, gold)["LOC"]["support"] == 2
    # an I- after O opens a chunk in conlleval's rules, not in strict IOB2
    found = [["B-PER", "I-PER", "O", "I-LOC", "I-LOC", "O"]]
    expected = [["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "O"]]
    loose = entity_scores(expected, found, scheme="iob2")
    strict = entity_scores(expected, found, strict=True, scheme="iob2")
    assert loose["overall"]["f1"] == 1.0 and strict["overall"]["recall"] == 0.5
    with pytest.raises(DataError, match="strict entity matching reads IOB2 or BIOES"):
        entity_scores(gold, gold, strict=True)


def test_reads_conll_2003_as_distributed(tmp_path: Path) -> None:
    path = conll_file(tmp_path / "valid.txt", "iob1")
    examples = NER.read(path).examples
    assert len(examples) == 12 and examples[0].id == "0" and examples[0].line == 3
    assert all(len(e.tokens) == len(e.tags) == len(e.lines) for e in examples)
    assert detect_scheme([e.tags for e in examples]) == "iob1"
    path.write_text("-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP X-VERB\n")
    with pytest.raises(DataError, match=r"valid.txt, line 4: tag 'X-VERB' is not O or B-/I-/E-/S-TYPE"):
        NER.read(path)
    path.write_text("EU B-ORG\nrejects\n")
    with pytest.raises(DataError, match=r"line 2: 1 column\(s\)"):
        NER.read(path)
    path.write_text("EU B-ORG\nlamb B-FOOD\n")
    with pytest.raises(DataError, match=r"line 2: entity type of 'B-FOOD' is not one the model tags"):
        NER.check(NER.read(path).examples, {"dev": path})


def test_long_sentences_split_into_windows_lose_no_word(tiny_tokenizer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    examples = NER.read(conll_file(tmp_path / "d.txt", long=90)).examples
    features = NER.encode(examples, tiny_tokenizer, seq_len=32, input_names=("input_ids", "attention_mask",
                                                                                "token_type_ids"))
    owners, words = features.extras["example_index"], features.extras["word_index"]
    assert (owners == 0).sum() > 3  # the long sentence needs several windows
    for index, example in enumerate(examples):
        seen = set(words[owners == index].ravel()) - {-1}
        assert seen == set(range(len(example.tokens)))
    # logits that point at the gold tag of each word's first sub-token give the gold tags back
    logits = np.zeros((len(features), 32, len(NER.model_tags)), np.float32)
    for row in range(len(features)):
        for position in np.flatnonzero(words[row] >= 0):
            tag = examples[owners[row]].tags[words[row, position]]
            logits[row, position, NER.model_tags.index(tag)] = 1.0
    assert NER.predict(examples, features, {"logits": logits}) == [e.tags for e in examples]


@pytest.mark.slow
def test_ner_runs_end_to_end_and_scores_as_conlleval(tmp_path: Path) -> None:
    data = conll_file(tmp_path / "valid.txt", "iob2", sentences=20, long=70)
    out = tmp_path / "run"
    passed, _ = run(RunConfig(
        recipe="ner", out=out, random_weights="tiny", tokenizer=str(BERT_CASED_VOCAB.parent),
        data=(str(data),), seq_len=32, backends=("torch", "onnxruntime", "openvino:fp32"), bench=False,
        e2e_runs=0))
    assert passed
    report = json.loads((out / "report.json").read_text())
    rows = {(r["backend"], r["precision"]): r for r in report["accuracy"]}
    assert rows[("onnxruntime", "fp32")]["vs_torch"]["agreement"] == 1.0
    assert rows[("openvino", "fp32")]["vs_torch"]["agreement"] == 1.0
    int8 = rows[("onnxruntime", "int8")]
    assert "f1" in int8["metrics"] and 0.0 <= int8["vs_torch"]["agreement"] <= 1.0
    predictions = out / "predictions" / "onnxruntime-fp32.conll"
    lines = [line for line in predictions.read_text().splitlines() if line]
    assert len(lines[0].split()) == 5  # the data's four columns and the predicted tag
    scored = score_predictions("ner", predictions, (str(data),))
    assert scored["f1"] == pytest.approx(100 * rows[("onnxruntime", "fp32")]["metrics"]["f1"])
    assert set(scored["per_type"]) <= set(TYPES) and scored["entities"] > 0
    assert "| overall f1 |" in (out / "report.md").read_text()


def test_a_share_of_the_examples_decodes_as_it_does_among_all(tiny_tokenizer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Triage scores its trials on a share of the sentences: their windows alone
    (Features.subset, example_index renumbered) give the tags they get among all."""
    examples = NER.read(conll_file(tmp_path / "d.txt", sentences=8, long=90)).examples
    features = NER.encode(examples, tiny_tokenizer, seq_len=32, input_names=("input_ids", "attention_mask",
                                                                                "token_type_ids"))
    logits = np.random.default_rng(0).normal(size=(len(features), 32, len(NER.model_tags))).astype(np.float32)
    everything = NER.predict(examples, features, {"logits": logits})
    share = [0, 3, 6]
    rows = np.flatnonzero(np.isin(features.example_ids, [examples[i].id for i in share]))
    found = NER.predict([examples[i] for i in share], features.subset(rows), {"logits": logits[rows]})
    assert found == [everything[i] for i in share]
