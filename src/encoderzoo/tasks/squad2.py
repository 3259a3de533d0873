"""SQuAD 2.0: extractive question answering where some questions have no answer in the context.
A question is answered with "" when its null score (the CLS token's start + end logits, the
lowest over its windows) beats its best span by more than `null_threshold`; scored with the
official v2.0 evaluation (exact and F1 overall, on the answerable and the unanswerable questions,
and the best no-answer threshold on the data)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from encoderzoo.errors import DataError
from encoderzoo.features import Features
from encoderzoo.fileio import atomic_path
from encoderzoo.tasks.base import Score, split_key, splits_of
from encoderzoo.tasks.squad import QAExample, QuestionAnswering
from encoderzoo.tasks.squad_eval import evaluate_v2


@dataclass(frozen=True)
class Answer:
    """A prediction: the answer text ("" for no answer) and its no-answer margin (null score
    minus best span score; higher means more surely unanswerable). Answers compare by text."""

    text: str
    null_margin: float = field(default=0.0, compare=False)


@dataclass(frozen=True)
class QuestionAnswering2(QuestionAnswering):
    unanswerable: bool = True
    null_threshold: float = 0.0  # answer "" when null score - best span score exceeds this
    metric_names: tuple[str, ...] = ("exact", "f1")

    def scoring_options(self) -> dict[str, Any]:
        """What the scores depend on besides the model outputs (shown beside them)."""
        return {"null threshold": self.null_threshold}

    def gold_label(self, example: QAExample) -> str:
        return example.answers[0] if example.answers else ""

    def predict(self, examples: list[QAExample], features: Features,
                outputs: dict[str, np.ndarray]) -> list[Any]:
        texts, best, null, _ = self.search(examples, features, outputs)
        return self.decide(texts, best, null)

    def decide(self, texts: list[str], best: np.ndarray, null: np.ndarray) -> list[Answer]:
        """Each best span, or "" where the null score wins by more than the threshold."""
        margins = null - best  # +inf where no window had a valid span
        return [Answer("" if margin > self.null_threshold else text,
                       float(margin) if math.isfinite(margin) else 1e9)
                for text, margin in zip(texts, margins, strict=True)]

    def present(self, inputs: Sequence[Any], examples: list[QAExample], features: Features,
                outputs: dict[str, np.ndarray]) -> list[Any]:
        """As SQuAD 1.1's, with "" (and no offsets) where the null score wins by more than the
        threshold; "null_margin" beside it."""
        texts, best, null, spans = self.search(examples, features, outputs)  # once, for both
        shown = self.answers(texts, best, spans)
        for answer, predicted in zip(shown, self.decide(texts, best, null), strict=True):
            answer["null_margin"] = predicted.null_margin
            if not predicted.text:
                answer |= {"answer": "", "start": None, "end": None}
        return shown

    def official(self, examples: list[QAExample], answers: list[Answer],
                 na_probs: Path | None = None) -> dict[str, float]:
        """What the official v2.0 script prints for `answers` (with --na-prob-file `na_probs` and
        its default --na-prob-thresh 1.0)."""
        return self.evaluate(examples, answers, read_na_probs(na_probs, examples) if na_probs else None)

    def evaluate(self, examples: list[QAExample], answers: list[Answer],
                 na_probs: dict[str, float] | None = None, threshold: float = 1.0) -> dict[str, float]:
        """The official v2.0 evaluation of `answers` (see squad_eval.evaluate_v2)."""
        golds = {e.id: e.answers for e in examples}
        return evaluate_v2(golds, {e.id: a.text for e, a in zip(examples, answers, strict=True)},
                           na_probs, threshold)

    def score(self, examples: list[QAExample], predictions: list[Any]) -> Score:
        """exact and f1 (fractions) per split, gated; HasAns / NoAns and the best threshold
        (found with the no-answer margins as no-answer probabilities) in the breakdown."""
        splits = splits_of(examples)
        metrics: dict[str, float] = {}
        breakdown: dict[str, dict[str, float]] = {}
        for split in splits:
            rows = [i for i, e in enumerate(examples) if e.split == split]
            mine = [examples[i] for i in rows]
            answers = [predictions[i] for i in rows]
            margins = {e.id: a.null_margin for e, a in zip(mine, answers, strict=True)}
            result = self.evaluate(mine, answers, margins, threshold=math.inf)
            for name in self.metric_names:
                metrics[split_key(split, name, splits)] = result[name] / 100
            prefix = f"{split} " if len(splits) > 1 else ""
            for group in ("HasAns", "NoAns"):
                if f"{group}_total" in result:
                    breakdown[prefix + group] = {"exact": result[f"{group}_exact"] / 100,
                                                 "f1": result[f"{group}_f1"] / 100,
                                                 "examples": float(result[f"{group}_total"])}
            breakdown[prefix + "best threshold"] = {
                "exact": result["best_exact"] / 100, "f1": result["best_f1"] / 100,
                "threshold": result["best_f1_thresh"], "examples": float(len(mine))}
        return Score(metrics, breakdown)

    def write_predictions(self, examples: list[QAExample], predictions: list[Any],
                          outputs: dict[str, np.ndarray], path: Path) -> None:
        """The official formats: {question id: answer text} and, beside it (…na_probs.json),
        {question id: no-answer margin} for the official script's --na-prob-file."""
        answers = {e.id: a.text for e, a in zip(examples, predictions, strict=True)}
        margins = {e.id: a.null_margin for e, a in zip(examples, predictions, strict=True)}
        for target, content in ((path, answers), (na_probs_path(path), margins)):
            with atomic_path(target) as tmp:
                tmp.write_text(json.dumps(content, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")

    def read_predictions(self, path: Path, examples: list[QAExample]) -> list[Any]:
        """Answers in the official format, every question answered ("" for no answer), as the
        official v2.0 evaluation needs."""
        answers = self.read_answers(path)
        missing = [e.id for e in examples if e.id not in answers]
        if missing:
            raise DataError(f"{path}: no prediction for {len(missing)} of {len(examples)} questions (e.g. "
                            f"{missing[0]}); SQuAD 2.0 predictions answer every one, \"\" for no answer")
        return [Answer(answers[e.id]) for e in examples]


def na_probs_path(predictions: Path) -> Path:
    return predictions.with_name(predictions.stem + ".na_probs.json")


def read_na_probs(path: Path, examples: list[QAExample]) -> dict[str, float]:
    """A --na-probs file: {question id: no-answer probability (any number)} for every question."""
    try:
        probs = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: unreadable no-answer probabilities ({err}); expected "
                        "{question id: number}") from None
    if not isinstance(probs, dict) or not all(isinstance(v, int | float) and not isinstance(v, bool)
                                              for v in probs.values()):
        raise DataError(f"{path}: expected a JSON object {{question id: number}}")
    missing = [e.id for e in examples if e.id not in probs]
    if missing:
        raise DataError(f"{path}: no no-answer probability for {len(missing)} questions (e.g. {missing[0]}); "
                        "give one per question")
    return {e.id: float(probs[e.id]) for e in examples}
