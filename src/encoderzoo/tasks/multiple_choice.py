"""Multiple choice (SWAG as distributed: `val.csv` with `sent1, sent2, ending0..3, label`): each
example pairs its context with every ending (the second sentence's start, then the ending, as
transformers' run_swag builds them), encoded as one row of choices x tokens; the model
(AutoModelForMultipleChoice) gives each choice a score, the highest is the prediction; accuracy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from encoderzoo.errors import ConfigError, DataError, InputError
from encoderzoo.features import Features
from encoderzoo.fileio import atomic_path
from encoderzoo.options import whole_number
from encoderzoo.tasks.base import (
    ReadResult,
    Score,
    agreement_of,
    load_jsonl,
    save_jsonl,
    split_key,
    splits_of,
)
from encoderzoo.tasks.metrics import softmax
from encoderzoo.tasks.records import read_records
from encoderzoo.tasks.tokenize import encode_fixed


@dataclass(frozen=True)
class ChoiceExample:
    id: str
    context: str  # the first sentence
    header: str  # the start of the second, which every ending completes
    endings: tuple[str, ...]
    label: str  # the index of the right ending, as written in the file
    line: int = 0
    split: str = "dev"


@dataclass(frozen=True)
class MultipleChoice:
    name: str
    choices: int = 4  # endings per example (SWAG: 4)
    context_column: str = "sent1"
    header_column: str = "sent2"
    ending_prefix: str = "ending"  # ending0, ending1, ...
    label_column: str = "label"
    model_kind: str = "multiple-choice"
    auto_class: str = "AutoModelForMultipleChoice"
    predictions_suffix: str = ".tsv"
    output_axes: dict[str, dict[int, str]] = field(
        default_factory=lambda: {"logits": {0: "batch", 1: "choices"}})
    metric_names: tuple[str, ...] = ("accuracy",)
    agreement_floor: float = 0.95  # the share of examples whose chosen ending equals torch fp32's

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(self.output_axes)

    @property
    def row_shape(self) -> tuple[int, ...]:
        """What a row holds before its tokens: one sequence per choice."""
        return (self.choices,)

    @property
    def columns(self) -> tuple[str, ...]:
        endings = tuple(f"{self.ending_prefix}{i}" for i in range(self.choices))
        return (self.context_column, self.header_column, *endings, self.label_column)

    @property
    def layout(self) -> str:
        return f"SWAG's CSV with a header row and the columns {', '.join(self.columns)}"

    def read(self, path: Path, *, split: str = "dev", limit: int | None = None) -> ReadResult:
        examples = []
        for row in read_records(path, self.columns, self.layout):
            values = row.values
            label = whole_number(values[self.label_column])
            if label is None or label >= self.choices:
                raise DataError(f"{path}, line {row.line}: '{self.label_column}' is "
                                f"{values[self.label_column]!r}, not the index of one of the {self.choices} "
                                "endings (0, 1, ...); fix the row")
            endings = tuple(values[f"{self.ending_prefix}{i}"] for i in range(self.choices))
            if not values[self.context_column].strip() or not all(e.strip() for e in endings):
                raise DataError(f"{path}, line {row.line}: an empty context or ending; fill it in or remove "
                                "the row")
            examples.append(ChoiceExample(id=f"{split}-{row.line}", context=values[self.context_column],
                                          header=values[self.header_column], endings=endings,
                                          label=str(label), line=row.line, split=split))
            if limit is not None and len(examples) >= limit:
                break
        return ReadResult(examples)

    def check(self, examples: list[Any], files: dict[str, Path] | None = None) -> list[Any]:
        return examples

    def agreement(self, found: list[Any], reference: list[Any]) -> float:
        return agreement_of(found, reference)

    def for_model(self, config: Any, source: str, label_names: tuple[str, ...] | None = None
                  ) -> MultipleChoice:
        if label_names:
            raise ConfigError(f"--labels: task '{self.name}' chooses among each example's endings; it has no "
                              "class names")
        return self  # a choice head scores each ending: no label order to bind

    def head_config(self) -> dict[str, Any]:
        return {}

    def binding(self) -> dict[str, Any]:
        return {}

    def gold_label(self, example: ChoiceExample) -> str:
        return example.label

    def output_shapes(self, config: Any, seq_len: int) -> dict[str, tuple[int, ...]]:
        return {"logits": (self.choices,)}

    def encode(self, examples: list[ChoiceExample], tokenizer: Any, *, seq_len: int,
               input_names: tuple[str, ...]) -> Features:
        """(examples, choices, seq_len) arrays: the context, then the second sentence's start and
        one ending, truncated longest-first; a row's length is its longest choice's."""
        firsts = [e.context for e in examples for _ in range(self.choices)]
        seconds = [f"{e.header} {ending}".strip() for e in examples for ending in e.endings]
        encoded = encode_fixed(tokenizer, [firsts, seconds], seq_len)
        arrays = {name: encoded[name].reshape(len(examples), self.choices, seq_len) for name in input_names}
        mask = encoded["attention_mask"].reshape(len(examples), self.choices, seq_len)
        return Features(example_ids=np.array([e.id for e in examples], dtype=str), arrays=arrays,
                        lengths=mask.sum(axis=-1).max(axis=-1).astype(np.int32))

    def save_examples(self, examples: list[ChoiceExample], path: Path) -> None:
        save_jsonl(examples, path)

    def load_examples(self, path: Path) -> list[ChoiceExample]:
        return [ChoiceExample(**{**e.__dict__, "endings": tuple(e.endings)})
                for e in load_jsonl(path, ChoiceExample)]

    def predict(self, examples: list[ChoiceExample], features: Features,
                outputs: dict[str, np.ndarray]) -> list[str]:
        return [str(int(i)) for i in outputs["logits"].reshape(len(examples), -1).argmax(axis=-1)]

    @property
    def inputs_layout(self) -> str:
        return (f'an object {{"context": text, "endings": [{self.choices} texts]}} (and "header": the start '
                "every ending completes)")

    def examples_from(self, inputs: Sequence[Any]) -> list[ChoiceExample]:
        examples = []
        for i, value in enumerate(inputs):
            fields = value if isinstance(value, dict) else {}
            context, header, endings = fields.get("context"), fields.get("header", ""), fields.get("endings")
            texts = [context, *(endings if isinstance(endings, list) else [])]
            if not (isinstance(endings, list) and len(endings) == self.choices and isinstance(header, str)
                    and all(isinstance(t, str) and t.strip() for t in texts)):
                raise InputError(f"inputs[{i}]: expected {self.inputs_layout}, got {str(value)[:60]!r}")
            examples.append(ChoiceExample(id=str(i), context=str(context), header=header,
                                          endings=tuple(endings), label="0", line=i, split="input"))
        return examples

    def present(self, inputs: Sequence[Any], examples: list[ChoiceExample], features: Features,
                outputs: dict[str, np.ndarray]) -> list[Any]:
        """{"choice": the index of the chosen ending, "score": its probability among them}."""
        probabilities = softmax(outputs["logits"].reshape(len(examples), -1))
        return [{"choice": int(p.argmax()), "score": float(p.max())} for p in probabilities]

    def score(self, examples: list[ChoiceExample], predictions: list[str]) -> Score:
        from sklearn.metrics import accuracy_score

        splits = splits_of(examples)
        metrics = {}
        for split in splits:
            rows = [i for i, e in enumerate(examples) if e.split == split]
            gold, found = [examples[i].label for i in rows], [predictions[i] for i in rows]
            metrics[split_key(split, "accuracy", splits)] = float(accuracy_score(gold, found))
        return Score(metrics)

    def write_predictions(self, examples: list[ChoiceExample], predictions: list[str],
                          outputs: dict[str, np.ndarray], path: Path) -> None:
        scores = outputs["logits"].reshape(len(examples), -1)
        with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as f:
            f.write("id\tsplit\tline\tlabel\tprediction\tscores\n")
            for example, prediction, row in zip(examples, predictions, scores, strict=True):
                shown = ",".join(f"{v:.6g}" for v in row)
                f.write(f"{example.id}\t{example.split}\t{example.line}\t{example.label}\t{prediction}\t{shown}\n")

    def read_predictions(self, path: Path, examples: list[ChoiceExample]) -> list[str]:
        """The `prediction` column of a run's predictions TSV, by example id."""
        found: dict[str, str] = {}
        for row in read_records(path, ("id", "prediction"), "id<TAB>...<TAB>prediction with a header row"):
            found[row.values["id"]] = row.values["prediction"]
        missing = [e.id for e in examples if e.id not in found]
        if missing:
            raise DataError(f"{path}: no prediction for {len(missing)} examples (e.g. {missing[0]}); predict "
                            "every one")
        return [found[e.id] for e in examples]
