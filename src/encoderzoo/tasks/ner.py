"""Token classification (named entities) on CoNLL files: each sentence's words tokenized into
sub-tokens, a long sentence split into overlapping windows so that no word is lost, a word's tag
taken from its first sub-token (from the window where that sub-token has the most context), and
entity-level precision / recall / F1 overall and per type as conlleval computes them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from encoderzoo.errors import CheckpointError, DataError, InputError
from encoderzoo.features import Features
from encoderzoo.fileio import atomic_path
from encoderzoo.tasks.base import ReadResult, Score, load_jsonl, save_jsonl, split_key, splits_of
from encoderzoo.tasks.conll import (
    ConllSentence,
    chunks,
    detect_scheme,
    entity_scores,
    read_conll,
    split_tag,
    strict_chunks,
    valid_tag,
)

WORD = re.compile(r"\S+")  # a word of a raw input text
# CoNLL-2003's tags (IOB2), in the order the common fine-tuned checkpoints use: random models' head
CONLL2003_TAGS = ("O", "B-MISC", "I-MISC", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")


@dataclass(frozen=True)
class TaggedSentence:
    id: str  # the sentence's 0-based position in the file
    line: int  # the line of its first token
    tokens: tuple[str, ...]
    tags: tuple[str, ...]  # gold tags
    lines: tuple[str, ...]  # the file's lines (conlleval's output echoes them)
    split: str = "dev"


@dataclass(frozen=True)
class TokenClassification:
    name: str
    strict: bool = False  # entities only as the scheme allows (seqeval's strict mode); else conlleval's
    windows: bool = True  # a long sentence is read in overlapping windows, never truncated
    model_tags: tuple[str, ...] = CONLL2003_TAGS  # the model's tags in class order (bound by for_model)
    model_kind: str = "token-classification"
    auto_class: str = "AutoModelForTokenClassification"
    predictions_suffix: str = ".conll"
    output_axes: dict[str, dict[int, str]] = field(
        default_factory=lambda: {"logits": {0: "batch", 1: "sequence"}})
    metric_names: tuple[str, ...] = ("f1",)  # entity F1: gated; precision and recall beside it
    agreement_floor: float = 0.98  # share of words tagged as torch fp32 tags them

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(self.output_axes)

    def read(self, path: Path, *, split: str = "dev", limit: int | None = None) -> ReadResult:
        sentences = read_conll(path, limit=limit)
        return ReadResult([_sentence(i, s, split) for i, s in enumerate(sentences)])

    def check(self, examples: list[Any], files: dict[str, Path] | None = None) -> list[Any]:
        """Every entity type of the data is one the model tags."""
        known = {split_tag(t)[1] for t in self.model_tags}
        for example in examples:
            for offset, tag in enumerate(example.tags):
                if split_tag(tag)[1] not in known:
                    where = (files or {}).get(example.split, example.split)
                    raise DataError(f"{where}, line {example.line + offset}: entity type of {tag!r} is not "
                                    "one "
                                    f"the model tags ({', '.join(self.model_tags)}); pass --labels with the "
                                    "model's tags, or fix the data")
        return examples

    def agreement(self, found: list[Any], reference: list[Any]) -> float:
        """The share of words tagged as the reference tags them."""
        pairs = [(a, b) for f, r in zip(found, reference, strict=True) for a, b in zip(f, r, strict=True)]
        return float(np.mean([a == b for a, b in pairs])) if pairs else 1.0

    def for_model(self, config: Any, source: str, label_names: tuple[str, ...] | None = None
                  ) -> TokenClassification:
        from dataclasses import replace

        names = label_names or tuple(config.id2label[i] for i in range(int(config.num_labels)))
        bad = [n for n in names if not valid_tag(n)]
        if bad:
            raise CheckpointError(f"{source}: label {bad[0]!r} is not a tag (O, B-/I-/E-/S-TYPE); is this a "
                                  "token-classification model? Pass --labels with its tags in class order")
        if len(names) != int(config.num_labels):
            raise CheckpointError(f"{source}: --labels names {len(names)} tags, the model has "
                                  f"{config.num_labels} classes")
        return replace(self, model_tags=tuple(names))

    def scoring_options(self) -> dict[str, Any]:
        """What the scores depend on besides the model outputs (shown beside them)."""
        return {"entities": "strict (as the tag scheme allows)" if self.strict else "conlleval's chunk rules",
                "agreement": "share of words tagged as the compared run tags them"}

    def head_config(self) -> dict[str, Any]:
        return {"num_labels": len(self.model_tags), "id2label": dict(enumerate(self.model_tags)),
                "label2id": {t: i for i, t in enumerate(self.model_tags)}}

    def binding(self) -> dict[str, Any]:
        return {"model_tags": list(self.model_tags)}

    def gold_label(self, example: TaggedSentence) -> str:
        return " ".join(example.tags)

    def output_shapes(self, config: Any, seq_len: int) -> dict[str, tuple[int, ...]]:
        return {"logits": (seq_len, int(config.num_labels))}

    def encode(self, examples: list[TaggedSentence], tokenizer: Any, *, seq_len: int,
               input_names: tuple[str, ...]) -> Features:
        """Windows of sub-tokens per sentence, overlapping by a quarter of `seq_len`; extras: per
        token the word it is the first sub-token of (-1 otherwise) and each window's sentence."""
        overlap = max(min(32, seq_len // 4), 0)
        encoded = tokenizer([list(e.tokens) for e in examples], is_split_into_words=True, truncation=True,
                            max_length=seq_len, stride=overlap, return_overflowing_tokens=True,
                            padding="max_length", return_attention_mask=True, return_token_type_ids=True,
                            return_tensors="np")
        owners = encoded["overflow_to_sample_mapping"].astype(np.int64)
        first_of = np.full(encoded["input_ids"].shape, -1, dtype=np.int32)
        for row in range(len(owners)):
            previous = None
            for position, word in enumerate(encoded.word_ids(row)):
                if word is not None and word != previous:
                    first_of[row, position] = word
                previous = word
        mask = encoded["attention_mask"].astype(np.int64)
        arrays = {name: encoded[name].astype(np.int64) if encoded.get(name) is not None
                  else np.zeros_like(mask) for name in input_names}
        return Features(example_ids=np.array([examples[i].id for i in owners], dtype=str), arrays=arrays,
                        lengths=mask.sum(axis=1).astype(np.int32),
                        extras={"word_index": first_of, "example_index": owners})

    def save_examples(self, examples: list[TaggedSentence], path: Path) -> None:
        save_jsonl(examples, path)

    def load_examples(self, path: Path) -> list[TaggedSentence]:
        return load_jsonl(path, TaggedSentence)

    def predict(self, examples: list[TaggedSentence], features: Features,
                outputs: dict[str, np.ndarray]) -> list[tuple[str, ...]]:
        """One tag per word: the arg-max class at its first sub-token, taken from the window in
        which that sub-token is farthest from a window edge; a word the tokenizer drops (no
        sub-token) is tagged O."""
        best = [np.full(len(e.tokens), -1.0) for e in examples]
        tags = [["O"] * len(e.tokens) for e in examples]
        classes = outputs["logits"].argmax(axis=-1)
        words, owners = features.extras["word_index"], features.extras["example_index"]
        for row in range(len(features)):
            owner, length = int(owners[row]), int(features.lengths[row])
            for position in np.flatnonzero(words[row] >= 0):
                word, room = int(words[row, position]), float(min(position, length - 1 - position))
                if room > best[owner][word]:
                    best[owner][word] = room
                    tags[owner][word] = self.model_tags[int(classes[row, position])]
        return [tuple(t) for t in tags]

    @property
    def inputs_layout(self) -> str:
        return "a text (split into words at white space) or a list of words"

    def examples_from(self, inputs: Sequence[Any]) -> list[TaggedSentence]:
        examples = []
        for i, value in enumerate(inputs):
            words = tuple(m.group() for m in WORD.finditer(value)) if isinstance(value, str) else \
                tuple(value) if isinstance(value, list | tuple) else ()
            if not words or not all(isinstance(w, str) and w.strip() and WORD.fullmatch(w) is not None
                                    for w in words):
                raise InputError(f"inputs[{i}]: expected {self.inputs_layout}, got {str(value)[:60]!r}")
            examples.append(TaggedSentence(id=str(i), line=i, tokens=words, tags=("O",) * len(words),
                                           lines=words, split="input"))
        return examples

    def present(self, inputs: Sequence[Any], examples: list[TaggedSentence], features: Features,
                outputs: dict[str, np.ndarray]) -> list[Any]:
        """{"entities": [{"type", "text", "start", "end" (characters), "words": [first, last]}],
        "tags": one per word}: the entities by the task's rules (conlleval's, or the scheme's)."""
        shown = []
        for value, example, tags in zip(inputs, examples, self.predict(examples, features, outputs),
                                        strict=True):
            text = value if isinstance(value, str) else " ".join(example.tokens)
            spans = [m.span() for m in WORD.finditer(text)]
            found = strict_chunks(tags, detect_scheme([tags])) if self.strict else chunks(tags)
            entities = [{"type": kind, "text": text[spans[first][0]:spans[last][1]], "start": spans[first][0],
                         "end": spans[last][1], "words": [first, last]}
                        for kind, first, last in sorted(found, key=lambda c: c[1])]
            shown.append({"entities": entities, "tags": list(tags)})
        return shown

    def score(self, examples: list[TaggedSentence], predictions: list[Any]) -> Score:
        splits = splits_of(examples)
        metrics: dict[str, float] = {}
        breakdown: dict[str, dict[str, float]] = {}
        for split in splits:
            rows = [i for i, e in enumerate(examples) if e.split == split]
            scores = self.entity_scores([examples[i] for i in rows], [predictions[i] for i in rows])
            metrics[split_key(split, "f1", splits)] = scores["overall"]["f1"]
            prefix = f"{split} " if len(splits) > 1 else ""
            for kind, values in scores.items():
                breakdown[prefix + kind] = {"f1": values["f1"], "precision": values["precision"],
                                            "recall": values["recall"], "examples": values["support"]}
        return Score(metrics, breakdown)

    def entity_scores(self, examples: list[TaggedSentence], predictions: list[Any]
                      ) -> dict[str, dict[str, float]]:
        gold = [e.tags for e in examples]
        return entity_scores(gold, predictions, strict=self.strict, scheme=detect_scheme(gold))

    def official(self, examples: list[TaggedSentence], predictions: list[Any],
                 na_probs: None = None) -> dict[str, Any]:
        """conlleval's figures: precision, recall, FB1 overall (and per type), accuracy; percentages."""
        scores = self.entity_scores(examples, predictions)
        overall = scores.pop("overall")
        pct = {k: 100 * overall[k] for k in ("precision", "recall", "f1", "accuracy")}
        return pct | {"entities": int(overall["support"]), "found": int(overall["predicted"]),
                      "per_type": {k: {m: 100 * v[m] for m in ("precision", "recall", "f1")} | {
                          "entities": int(v["support"])} for k, v in scores.items()}}

    def write_predictions(self, examples: list[TaggedSentence], predictions: list[Any],
                          outputs: dict[str, np.ndarray], path: Path) -> None:
        """conlleval's input: the data file's lines, each with the predicted tag appended, and a
        blank line after each sentence."""
        with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as f:
            for example, tags in zip(examples, predictions, strict=True):
                f.writelines(f"{line} {tag}\n" for line, tag in zip(example.lines, tags, strict=True))
                f.write("\n")

    def read_predictions(self, path: Path, examples: list[TaggedSentence]) -> list[Any]:
        """Tags from a conlleval input file (the data's lines with the predicted tag last), its
        sentences in the data's order; -DOCSTART- lines are skipped."""
        sentences = read_conll(path, min_columns=3)
        if len(sentences) != len(examples):
            raise DataError(f"{path}: {len(sentences)} sentences, the data has {len(examples)}; predict "
                            "every sentence, in the data's order")
        found = []
        for sentence, example in zip(sentences, examples, strict=True):
            if sentence.tokens != example.tokens:
                raise DataError(f"{path}, line {sentence.line}: sentence {sentence.tokens[:5]} is not the "
                                f"data's sentence {example.id} {example.tokens[:5]}; keep the data's order")
            found.append(sentence.tags)
        return found


def _sentence(index: int, sentence: ConllSentence, split: str) -> TaggedSentence:
    return TaggedSentence(str(index), sentence.line, sentence.tokens, sentence.tags, sentence.lines, split)

