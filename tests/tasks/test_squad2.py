"""SQuAD 2.0: the v2.0 file layout (is_impossible, empty answers, plausible_answers), the null
answer per window, and the official v2.0 evaluation, checked against the script's logic written
out in its own shape (raw scores, no-answer threshold, best threshold) on bent predictions."""

import collections
import json
import random
import re
import string
from pathlib import Path

import numpy as np
import pytest

from encoderzoo.config import RunConfig
from encoderzoo.errors import ConfigError, DataError
from encoderzoo.features import Features
from encoderzoo.pipeline import run
from encoderzoo.stages.score import score_predictions
from encoderzoo.tasks import get_task
from encoderzoo.tasks.squad import QAExample
from encoderzoo.tasks.squad2 import Answer
from tests.conftest import BERT_CASED_VOCAB

SQUAD2 = get_task("squad2")
CONTEXT = ("The Normans were the people who in the 10th and 11th centuries gave their name to "
           "Normandy, a region in France. They were descended from Norse raiders and pirates from "
           "Denmark, Iceland and Norway.")


def squad2_dev(path: Path, copies: int = 3) -> Path:
    """A dev-v2.0.json-shaped file: answerable questions, and unanswerable ones with their
    plausible (wrong) answers kept aside, as the distribution ships them."""
    qas = []
    for n in range(copies):
        qas += [
            {"question": "In what country is Normandy located?", "id": f"a{n}",
             "answers": [{"text": "France", "answer_start": CONTEXT.index("France")},
                         {"text": "France", "answer_start": CONTEXT.index("France")}],
             "is_impossible": False},
            {"question": "Where were the Norse raiders from?", "id": f"b{n}",
             "answers": [{"text": "Denmark, Iceland and Norway", "answer_start": CONTEXT.index("Denmark")}],
             "is_impossible": False},
            {"question": "Who gave their name to Normandy in the 1000's and 1100's", "id": f"c{n}",
             "answers": [], "is_impossible": True,
             "plausible_answers": [{"text": "Normans", "answer_start": 4}]},
            {"plausible_answers": [{"text": "10th and 11th centuries", "answer_start": 36}],
             "question": "When did France conquer Normandy?", "id": f"d{n}", "answers": [],
             "is_impossible": True},
        ]
    paragraphs = [{"qas": qas, "context": CONTEXT}]
    document = {"version": "v2.0", "data": [{"title": "Normans", "paragraphs": paragraphs}]}
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


# -- the official v2.0 logic, in the script's own shape -----------------------------------------

def _norm(s: str) -> str:
    s = "".join(ch for ch in s.lower() if ch not in set(string.punctuation))
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", s).split())


def _f1(gold: str, pred: str) -> float:
    g, p = (_norm(gold).split() if gold else []), (_norm(pred).split() if pred else [])
    if len(g) == 0 or len(p) == 0:
        return int(g == p)
    common = collections.Counter(g) & collections.Counter(p)
    same = sum(common.values())
    if same == 0:
        return 0
    precision, recall = 1.0 * same / len(p), 1.0 * same / len(g)
    return (2 * precision * recall) / (precision + recall)


def official_v2(dataset: list, preds: dict, na_probs: dict | None, thresh: float = 1.0) -> dict:  # type: ignore[type-arg]
    has_ans = {qa["id"]: bool(qa["answers"]) for a in dataset for p in a["paragraphs"] for qa in p["qas"]}
    exact_raw, f1_raw = {}, {}
    for article in dataset:
        for p in article["paragraphs"]:
            for qa in p["qas"]:
                golds = [a["text"] for a in qa["answers"] if _norm(a["text"])] or [""]
                exact_raw[qa["id"]] = max(int(_norm(a) == _norm(preds[qa["id"]])) for a in golds)
                f1_raw[qa["id"]] = max(_f1(a, preds[qa["id"]]) for a in golds)
    probs = na_probs if na_probs is not None else {k: 0.0 for k in preds}

    def apply(scores: dict) -> dict:  # type: ignore[type-arg]
        return {q: float(not has_ans[q]) if probs[q] > thresh else s for q, s in scores.items()}

    def summary(e: dict, f: dict, qids: list) -> dict:  # type: ignore[type-arg]
        return {"exact": 100.0 * sum(e[k] for k in qids) / len(qids),
                "f1": 100.0 * sum(f[k] for k in qids) / len(qids), "total": len(qids)}

    e_t, f_t = apply(exact_raw), apply(f1_raw)
    out = summary(e_t, f_t, list(e_t))
    for name, want in (("HasAns", True), ("NoAns", False)):
        qids = [k for k, v in has_ans.items() if v == want]
        if qids:
            out.update({f"{name}_{k}": v for k, v in summary(e_t, f_t, qids).items()})
    if na_probs is not None:
        for name, raw in (("exact", exact_raw), ("f1", f1_raw)):
            cur = best = sum(1 for k in has_ans if not has_ans[k])
            best_t = 0.0
            for qid in sorted(probs, key=lambda k: probs[k]):
                cur += raw[qid] if has_ans[qid] else (-1 if preds[qid] else 0)
                if cur > best:
                    best, best_t = cur, probs[qid]
            out[f"best_{name}"], out[f"best_{name}_thresh"] = 100.0 * best / len(raw), best_t
    return out


def test_reads_the_v2_layout_and_v1_refuses_it(tmp_path: Path) -> None:
    path = squad2_dev(tmp_path / "dev-v2.0.json", copies=1)
    examples = SQUAD2.read(path).examples
    assert [e.is_impossible for e in examples] == [False, False, True, True]
    assert examples[2].answers == () and examples[0].answers == ("France", "France")
    with pytest.raises(DataError, match=r"question c0 .* has no answers; .* use the squad2 task"):
        get_task("squad").read(path)
    document = json.loads(path.read_text())
    document["data"][0]["paragraphs"][0]["qas"][2]["answers"] = [{"text": "Normans", "answer_start": 4}]
    path.write_text(json.dumps(document))
    with pytest.raises(DataError, match="marked is_impossible but lists 1 answers"):
        SQUAD2.read(path)


def test_score_squad2_equals_the_official_logic_on_bent_predictions(tmp_path: Path) -> None:
    data = squad2_dev(tmp_path / "dev-v2.0.json", copies=25)
    dataset = json.loads(data.read_text())["data"]
    rng = random.Random(7)
    bends = ["", "France", "the France.", "Denmark", "Iceland and Norway", "Normans", "in France", "a"]
    ids = [qa["id"] for qa in dataset[0]["paragraphs"][0]["qas"]]
    preds = {q: rng.choice(bends) for q in ids}
    na_probs = {q: round(rng.uniform(-3, 3), 1) for q in ids}  # ties too, as real margins have
    (tmp_path / "p.json").write_text(json.dumps(preds))
    (tmp_path / "na.json").write_text(json.dumps(na_probs))
    plain = score_predictions("squad2", tmp_path / "p.json", (str(data),))
    assert plain == official_v2(dataset, preds, None)
    assert list(plain) == ["exact", "f1", "total", "HasAns_exact", "HasAns_f1", "HasAns_total",
                           "NoAns_exact", "NoAns_f1", "NoAns_total"]
    full = score_predictions("squad2", tmp_path / "p.json", (str(data),), na_probs=tmp_path / "na.json")
    expected = official_v2(dataset, preds, na_probs)
    assert full == expected and {"best_exact", "best_exact_thresh", "best_f1", "best_f1_thresh"} <= set(full)
    assert full["exact"] != plain["exact"]  # probabilities above 1.0 answer "" at the default threshold
    for other in ("squad", "ner"):  # tasks without a null answer refuse them instead of ignoring them
        with pytest.raises(ConfigError, match="--na-probs is for squad2"):
            score_predictions(other, tmp_path / "p.json", (str(data),), na_probs=tmp_path / "na.json")
    del preds[ids[3]]
    (tmp_path / "p.json").write_text(json.dumps(preds))
    with pytest.raises(DataError, match=r"no prediction for 1 of 100 questions \(e.g. d0\)"):
        score_predictions("squad2", tmp_path / "p.json", (str(data),))


def test_null_answer_beats_the_best_span_by_the_threshold(tiny_tokenizer) -> None:  # type: ignore[no-untyped-def]
    example = QAExample("q", "Where?", CONTEXT, ("France",), (CONTEXT.index("France"),))
    features: Features = SQUAD2.encode([example], tiny_tokenizer, seq_len=64,
                                       input_names=("input_ids", "attention_mask", "token_type_ids"))
    starts = np.zeros((len(features), 64), np.float32)
    ends = np.zeros_like(starts)
    inside = np.flatnonzero(features.extras["offsets"][0, :, 0] >= 0)
    starts[0, inside[3]], ends[0, inside[3]] = 2.0, 2.0  # best span: 4.0
    starts[:, 0], ends[:, 0] = 2.5, 2.0  # null score 4.5: margin 0.5
    outputs = {"start_logits": starts, "end_logits": ends}
    answer, = SQUAD2.predict([example], features, outputs)
    assert answer.text == "" and answer.null_margin == pytest.approx(0.5)
    from dataclasses import replace

    kept, = replace(SQUAD2, null_threshold=1.0).predict([example], features, outputs)
    assert kept.text != "" and kept == Answer(kept.text, 99.0)  # answers compare by text


@pytest.mark.slow
def test_squad2_runs_end_to_end_with_the_official_scores(tmp_path: Path) -> None:
    data = squad2_dev(tmp_path / "dev-v2.0.json")
    out = tmp_path / "run"
    passed, _ = run(RunConfig(
        recipe="squad2", out=out, random_weights="tiny", tokenizer=str(BERT_CASED_VOCAB.parent),
        data=(str(data),), seq_len=64, backends=("torch", "onnxruntime", "openvino:fp32"), bench=False,
        e2e_runs=0, null_threshold=-0.01))
    assert passed
    report = json.loads((out / "report.json").read_text())
    rows = {(r["backend"], r["precision"]): r for r in report["accuracy"]}
    assert rows[("onnxruntime", "fp32")]["vs_torch"]["agreement"] == 1.0
    assert ("onnxruntime", "int8") in rows and "agreement" in rows[("onnxruntime", "int8")]["vs_torch"]
    predictions = out / "predictions" / "onnxruntime-fp32.json"
    na_probs = out / "predictions" / "onnxruntime-fp32.na_probs.json"
    dataset = json.loads(data.read_text())["data"]
    preds, probs = json.loads(predictions.read_text()), json.loads(na_probs.read_text())
    official = official_v2(dataset, preds, probs, thresh=float("inf"))
    ort = rows[("onnxruntime", "fp32")]
    metrics, breakdown = ort["metrics"], ort["breakdown"]
    assert metrics == {"exact": pytest.approx(official["exact"] / 100),
                       "f1": pytest.approx(official["f1"] / 100)}
    assert breakdown["NoAns"]["examples"] == 6
    assert breakdown["HasAns"]["f1"] == pytest.approx(official["HasAns_f1"] / 100)
    assert breakdown["best threshold"]["f1"] == pytest.approx(official["best_f1"] / 100)
    # a null margin above -0.01 answers "": the predictions say so
    assert all((preds[q] == "") == (probs[q] > -0.01) for q in preds)
    assert "| NoAns exact | 6 |" in (out / "report.md").read_text()
    assert "Scored with null threshold: -0.01." in (out / "report.md").read_text()
