"""Extractive question answering on SQuAD v1.1: sliding windows over long contexts, n-best span
search over all of an example's windows, and the official v1.1 exact-match / F1 scoring."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from encoderzoo.errors import DataError, InputError
from encoderzoo.features import Features
from encoderzoo.fileio import atomic_path
from encoderzoo.tasks.base import (
    ReadResult,
    Score,
    agreement_of,
    load_jsonl,
    save_jsonl,
    split_key,
    splits_of,
)
from encoderzoo.tasks.squad_data import QAExample, read_squad
from encoderzoo.tasks.squad_eval import best_over_golds, exact_match, f1

__all__ = ["QAExample", "QuestionAnswering"]



# -- the task ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class QuestionAnswering:
    name: str
    doc_stride: int = 128  # tokens the window advances by over a long context (original BERT/SpanBERT)
    max_query_tokens: int = 64  # longer questions are cut
    n_best: int = 20  # start and end candidates per window
    max_answer_tokens: int = 30
    model_kind: str = "question-answering"
    auto_class: str = "AutoModelForQuestionAnswering"  # the transformers class that loads its models
    predictions_suffix: str = ".json"
    output_axes: dict[str, dict[int, str]] = field(default_factory=lambda: {
        "start_logits": {0: "batch", 1: "sequence"}, "end_logits": {0: "batch", 1: "sequence"}})
    metric_names: tuple[str, ...] = ("exact_match", "f1")
    agreement_floor: float = 0.90  # the gate's default share of answers equal to torch fp32's
    unanswerable: bool = False  # SQuAD 2.0: questions may have no answer (see tasks.squad2)
    windows: bool = True  # a long input is read in overlapping windows, never truncated

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(self.output_axes)

    # -- reading ------------------------------------------------------------------------------

    def read(self, path: Path, *, split: str = "dev", limit: int | None = None) -> ReadResult:
        return ReadResult(read_squad(path, split=split, limit=limit, unanswerable=self.unanswerable))

    def check(self, examples: list[Any], files: dict[str, Path] | None = None) -> list[Any]:
        return examples

    def agreement(self, found: list[Any], reference: list[Any]) -> float:
        """The share of answers equal to the reference's."""

        return agreement_of(found, reference)

    def for_model(
        self, config: Any, source: str, label_names: tuple[str, ...] | None = None
    ) -> QuestionAnswering:
        return self  # span heads have no label order to bind

    def head_config(self) -> dict[str, Any]:
        return {}

    def binding(self) -> dict[str, Any]:
        return {}  # span heads have no label order

    def gold_label(self, example: QAExample) -> str:
        return example.answers[0] if example.answers else ""

    def output_shapes(self, config: Any, seq_len: int) -> dict[str, tuple[int, ...]]:
        return {name: (seq_len,) for name in self.output_axes}

    # -- features -------------------------------------------------------------------------------

    def encode(self, examples: list[QAExample], tokenizer: Any, *, seq_len: int,
               input_names: tuple[str, ...]) -> Features:
        """Windows of [question, part of the context] per example. The window advances by
        `doc_stride` context tokens, as the original BERT/SpanBERT code does, so the overlap
        depends on the question's length: examples are tokenized in groups of equal question
        length. Extras: each token's character span in the context ((-1, -1) outside it) and
        each window's example index."""
        questions = self._cut_questions([e.question for e in examples], tokenizer)
        lengths = [len(ids) for ids in tokenizer(questions, add_special_tokens=False)["input_ids"]]
        specials = tokenizer.num_special_tokens_to_add(pair=True)
        groups: dict[int, list[int]] = {}
        for index, length in enumerate(lengths):
            groups.setdefault(length, []).append(index)
        parts = []
        for length, indices in groups.items():
            context_room = seq_len - length - specials
            if context_room < 1:
                raise DataError(
                    f"question {examples[indices[0]].id}: {length} question tokens leave "
                    f"{context_room} for the context at --seq-len {seq_len}; raise --seq-len")
            overlap = max(context_room - self.doc_stride, 0)
            group_questions = [questions[i] for i in indices]
            group_contexts = [examples[i].context for i in indices]
            parts.append(self._windows(group_questions, group_contexts, indices, tokenizer, seq_len,
                                       overlap, input_names))
        return _merge(parts, examples)

    def _cut_questions(self, questions: list[str], tokenizer: Any) -> list[str]:
        encoded = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)
        cut = []
        for question, offsets in zip(questions, encoded["offset_mapping"], strict=True):
            cut.append(question[:offsets[self.max_query_tokens - 1][1]]
                       if len(offsets) > self.max_query_tokens else question)
        return cut

    @staticmethod
    def _windows(questions: list[str], contexts: list[str], indices: list[int], tokenizer: Any,
                 seq_len: int, overlap: int, input_names: tuple[str, ...]) -> dict[str, np.ndarray]:
        encoded = tokenizer(
            questions, contexts, truncation="only_second", max_length=seq_len, stride=overlap,
            return_overflowing_tokens=True, return_offsets_mapping=True, padding="max_length",
            return_attention_mask=True, return_token_type_ids=True, return_tensors="np",
        )
        offsets = encoded["offset_mapping"].astype(np.int32)
        for row in range(len(offsets)):
            outside = np.array([s != 1 for s in encoded.sequence_ids(row)])
            offsets[row, outside] = -1
        mask = encoded["attention_mask"].astype(np.int64)
        arrays = {name: encoded[name].astype(np.int64) if encoded.get(name) is not None
                  else np.zeros_like(mask) for name in input_names}
        example_index = np.asarray(indices)[encoded["overflow_to_sample_mapping"]]
        inputs = {f"input.{k}": v for k, v in arrays.items()}
        return {"offsets": offsets, "example_index": example_index, **inputs}

    def save_examples(self, examples: list[QAExample], path: Path) -> None:
        save_jsonl(examples, path)

    def load_examples(self, path: Path) -> list[QAExample]:
        return load_jsonl(path, QAExample)

    # -- predictions and scores -----------------------------------------------------------------

    def predict(self, examples: list[QAExample], features: Features,
                outputs: dict[str, np.ndarray]) -> list[Any]:
        return self.search(examples, features, outputs)[0]

    def search(self, examples: list[QAExample], features: Features, outputs: dict[str, np.ndarray]
               ) -> tuple[list[str], np.ndarray, np.ndarray, list[tuple[int, int]]]:
        """(text, score) of the best valid span over all of each example's windows: start and
        end among the n-best of their window, both inside the context, end >= start, at most
        `max_answer_tokens` long; score = start logit + end logit (-inf when no window has a
        valid span). Also each example's null score (the lowest over its windows of the first
        token's (CLS) start + end logits) and its span's character offsets ((-1, -1): none)."""
        best_score = np.full(len(examples), -np.inf)
        null_score = np.full(len(examples), np.inf)
        best_text = [""] * len(examples)
        best_span = [(-1, -1)] * len(examples)
        offsets, owners = features.extras["offsets"], features.extras["example_index"]
        starts, ends = outputs["start_logits"], outputs["end_logits"]
        for row in range(len(features)):
            owner = int(owners[row])
            null_score[owner] = min(null_score[owner], float(starts[row, 0] + ends[row, 0]))
            inside = offsets[row, :, 0] >= 0
            if not inside.any():
                continue
            start_logits = np.where(inside, starts[row], -np.inf)
            end_logits = np.where(inside, ends[row], -np.inf)
            top_starts = np.argsort(start_logits)[::-1][: self.n_best]
            top_ends = np.argsort(end_logits)[::-1][: self.n_best]
            top_starts = top_starts[np.isfinite(start_logits[top_starts])]
            top_ends = top_ends[np.isfinite(end_logits[top_ends])]
            span = top_ends[None, :] - top_starts[:, None]  # (starts, ends) in tokens, minus one
            scores = start_logits[top_starts][:, None] + end_logits[top_ends][None, :]
            scores = np.where((span >= 0) & (span < self.max_answer_tokens), scores, -np.inf)
            if not np.isfinite(scores).any():
                continue
            s, e = np.unravel_index(int(np.argmax(scores)), scores.shape)
            if scores[s, e] > best_score[owner]:
                best_score[owner] = scores[s, e]
                start_char, end_char = offsets[row, top_starts[s], 0], offsets[row, top_ends[e], 1]
                best_text[owner] = examples[owner].context[start_char:end_char]
                best_span[owner] = (int(start_char), int(end_char))
        return best_text, best_score, null_score, best_span

    @property
    def inputs_layout(self) -> str:
        return 'an object {"question": text, "context": text}'

    def examples_from(self, inputs: Sequence[Any]) -> list[QAExample]:
        examples = []
        for i, value in enumerate(inputs):
            fields = value if isinstance(value, dict) else {}
            question, context = fields.get("question"), fields.get("context")
            if not all(isinstance(t, str) and t.strip() for t in (question, context)):
                raise InputError(f"inputs[{i}]: expected {self.inputs_layout}, got {str(value)[:60]!r}")
            examples.append(QAExample(str(i), str(question), str(context), (), (), split="input"))
        return examples

    def present(self, inputs: Sequence[Any], examples: list[QAExample], features: Features,
                outputs: dict[str, np.ndarray]) -> list[Any]:
        """{"answer", "start", "end" (characters of the context), "score" (start + end logits)}."""
        texts, best, _, spans = self.search(examples, features, outputs)
        return self.answers(texts, best, spans)

    @staticmethod
    def answers(texts: list[str], best: np.ndarray, spans: list[tuple[int, int]]) -> list[dict[str, Any]]:
        """`search`'s best spans as `present` shows them."""
        return [{"answer": text, "start": span[0], "end": span[1], "score": float(score)}
                for text, score, span in zip(texts, best, spans, strict=True)]

    def score(self, examples: list[QAExample], predictions: list[str]) -> Score:
        splits = splits_of(examples)
        metrics: dict[str, float] = {}
        for split in splits:
            pairs = [(p, e.answers) for p, e in zip(predictions, examples, strict=True) if e.split == split]
            metrics[split_key(split, "exact_match", splits)] = float(
                np.mean([best_over_golds(exact_match, p, golds) for p, golds in pairs]))
            metrics[split_key(split, "f1", splits)] = float(
                np.mean([best_over_golds(f1, p, golds) for p, golds in pairs]))
        return Score(metrics)

    def write_predictions(self, examples: list[QAExample], predictions: list[str],
                          outputs: dict[str, np.ndarray], path: Path) -> None:
        """The official format: {question id: answer text}."""
        answers = {e.id: p for e, p in zip(examples, predictions, strict=True)}
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(answers, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")

    def read_predictions(self, path: Path, examples: list[QAExample]) -> list[str]:
        """Predictions in the official format, in `examples` order; a question without one
        scores 0, as in the official evaluation."""
        answers = self.read_answers(path)
        return [answers.get(e.id, "") for e in examples]

    @staticmethod
    def read_answers(path: Path) -> dict[str, str]:
        """The official predictions file: {question id: answer text}."""
        try:
            answers = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise DataError(
                f"{path}: unreadable predictions ({err}); expected {{question id: answer}}") from None
        if not isinstance(answers, dict) or not all(isinstance(v, str) for v in answers.values()):
            raise DataError(f"{path}: expected a JSON object {{question id: answer text}}")
        return answers


def _merge(parts: list[dict[str, np.ndarray]], examples: list[QAExample]) -> Features:
    """Windows from all question-length groups, back in example order."""
    merged = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    order = np.argsort(merged["example_index"], kind="stable")
    merged = {key: value[order] for key, value in merged.items()}
    arrays = {k.removeprefix("input."): v for k, v in merged.items() if k.startswith("input.")}
    return Features(
        example_ids=np.array([examples[i].id for i in merged["example_index"]], dtype=str),
        arrays=arrays, lengths=arrays["attention_mask"].sum(axis=1).astype(np.int32),
        extras={"offsets": merged["offsets"], "example_index": merged["example_index"]},
    )
