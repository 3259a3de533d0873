"""The official SQuAD evaluation logic, as the v1.1 script computes it: answers normalized
(lower case, no punctuation, no articles, single spaces), exact match and token F1, the best
over an example's gold answers."""

from __future__ import annotations

import re
import string
from collections import Counter
from typing import Any

_PUNCTUATION = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """Lower case, drop punctuation, drop the articles a/an/the, collapse whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1(prediction: str, gold: str) -> float:
    predicted, expected = normalize_answer(prediction).split(), normalize_answer(gold).split()
    same = sum((Counter(predicted) & Counter(expected)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(expected)
    return 2 * precision * recall / (precision + recall)


def best_over_golds(metric: Any, prediction: str, golds: tuple[str, ...]) -> float:
    return max(metric(prediction, gold) for gold in golds)


# -- SQuAD v2.0 (the official v2.0 script's logic) ------------------------------------------------

def _tokens(text: str) -> list[str]:
    return normalize_answer(text).split() if text else []


def exact_v2(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1_v2(prediction: str, gold: str) -> float:
    """Token F1; an empty answer on either side scores 1 only when both are empty."""
    predicted, expected = _tokens(prediction), _tokens(gold)
    if not predicted or not expected:
        return float(predicted == expected)
    same = sum((Counter(predicted) & Counter(expected)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(expected)
    return 2 * precision * recall / (precision + recall)


def raw_scores_v2(golds: dict[str, tuple[str, ...]], predictions: dict[str, str]
                  ) -> tuple[dict[str, float], dict[str, float]]:
    """(exact, f1) per question: the best over its gold answers that are not empty once
    normalized; a question without one (unanswerable) has the gold answer ""."""
    exact, f1_scores = {}, {}
    for qid, answers in golds.items():
        kept = [a for a in answers if normalize_answer(a)] or [""]
        prediction = predictions[qid]
        exact[qid] = max(exact_v2(prediction, a) for a in kept)
        f1_scores[qid] = max(f1_v2(prediction, a) for a in kept)
    return exact, f1_scores


def _thresholded(scores: dict[str, float], na_probs: dict[str, float], has_answer: dict[str, bool],
                 threshold: float) -> dict[str, float]:
    """A question whose no-answer probability exceeds the threshold is answered with "": right
    exactly when it has no answer."""
    return {qid: float(not has_answer[qid]) if na_probs[qid] > threshold else s for qid, s in scores.items()}


def _summary(exact: dict[str, float], f1_scores: dict[str, float], qids: list[str]) -> dict[str, float]:
    total = len(qids)
    return {"exact": 100.0 * sum(exact[q] for q in qids) / total,
            "f1": 100.0 * sum(f1_scores[q] for q in qids) / total, "total": total}


def _best_threshold(predictions: dict[str, str], scores: dict[str, float], na_probs: dict[str, float],
                    has_answer: dict[str, bool]) -> tuple[float, float]:
    """The no-answer threshold that maximizes the score: questions taken in order of rising
    no-answer probability, each answered as predicted (an unanswerable one then costs 1 if a
    text was predicted), the rest counted as "" (right for the unanswerable ones)."""
    current = best = float(sum(1 for qid in scores if not has_answer[qid]))
    best_threshold = 0.0
    for qid in sorted(na_probs, key=lambda q: na_probs[q]):
        if qid not in scores:
            continue
        if has_answer[qid]:
            current += scores[qid]
        elif predictions[qid]:
            current -= 1
        if current > best:
            best, best_threshold = current, na_probs[qid]
    return 100.0 * best / len(scores), best_threshold


def evaluate_v2(golds: dict[str, tuple[str, ...]], predictions: dict[str, str],
                na_probs: dict[str, float] | None = None, threshold: float = 1.0) -> dict[str, float]:
    """The official v2.0 evaluation's JSON: exact, f1, total, HasAns_* and NoAns_* (when there
    are such questions) and, with no-answer probabilities, best_exact / best_f1 with their
    thresholds. Percentages, at full precision."""
    has_answer = {qid: bool(answers) for qid, answers in golds.items()}  # as listed, not normalized
    exact, f1_scores = raw_scores_v2(golds, predictions)
    probs = na_probs if na_probs is not None else dict.fromkeys(golds, 0.0)
    exact_t = _thresholded(exact, probs, has_answer, threshold)
    f1_t = _thresholded(f1_scores, probs, has_answer, threshold)
    result = _summary(exact_t, f1_t, list(golds))
    for name, wanted in (("HasAns", True), ("NoAns", False)):
        qids = [q for q in golds if has_answer[q] == wanted]
        if qids:
            result |= {f"{name}_{k}": v for k, v in _summary(exact_t, f1_t, qids).items()}
    if na_probs is not None:
        best_exact, exact_threshold = _best_threshold(predictions, exact, probs, has_answer)
        best_f1, f1_threshold = _best_threshold(predictions, f1_scores, probs, has_answer)
        result |= {"best_exact": best_exact, "best_exact_thresh": exact_threshold,
                   "best_f1": best_f1, "best_f1_thresh": f1_threshold}
    return result
