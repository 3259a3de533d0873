"""Sequence classification on GLUE-style TSV files (SST-2 today; sentence pairs declare two
text columns)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from encoderzoo.errors import CheckpointError, DataError
from encoderzoo.features import Features
from encoderzoo.fileio import atomic_path
from encoderzoo.tasks.tsv import read_tsv


@dataclass(frozen=True)
class ClassificationExample:
    id: str  # the file's index column if it has one, else the 0-based data row
    line: int  # line number in the source file
    texts: tuple[str, ...]  # one text, or a sentence pair
    label: int  # index into the task's labels


@dataclass(frozen=True)
class SequenceClassification:
    name: str
    text_columns: tuple[str, ...]
    label_column: str
    labels: tuple[str, ...]  # dataset label values, in the model's class order
    id_columns: tuple[str, ...] = ("idx", "index")
    model_kind: str = "sequence-classification"
    output_axes: dict[str, dict[int, str]] = field(default_factory=lambda: {"logits": {0: "batch"}})
    metric_names: tuple[str, ...] = ("accuracy",)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(self.output_axes)

    @property
    def layout(self) -> str:
        columns = "<TAB>".join((*self.text_columns, self.label_column))
        return f"'{columns}' with a header row, labels {'/'.join(self.labels)}"

    def read(self, path: Path, *, limit: int | None = None) -> list[ClassificationExample]:
        label_index = {label: i for i, label in enumerate(self.labels)}
        examples: list[ClassificationExample] = []
        for i, row in enumerate(read_tsv(path, (*self.text_columns, self.label_column), self.layout)):
            if limit is not None and i >= limit:
                break
            values = row.values
            texts = tuple(values[c] for c in self.text_columns)
            for column, text in zip(self.text_columns, texts, strict=True):
                if not text.strip():
                    raise DataError(
                        f"{path}, line {row.line}: empty '{column}'; remove the row or fill it in"
                    )
            label = values[self.label_column].strip()
            if label not in label_index:
                raise DataError(
                    f"{path}, line {row.line}: label {label!r} is not one of "
                    f"{', '.join(self.labels)}; fix or remove the row"
                )
            example_id = next((values[c].strip() for c in self.id_columns if c in values), str(i))
            examples.append(ClassificationExample(example_id, row.line, texts, label_index[label]))
        return examples

    def encode(
        self, examples: list[ClassificationExample], tokenizer: Any, *, seq_len: int,
        input_names: tuple[str, ...],
    ) -> Features:
        columns = [[e.texts[c] for e in examples] for c in range(len(self.text_columns))]
        encoded = tokenizer(
            *columns, truncation=True, max_length=seq_len, padding="max_length",
            return_attention_mask=True, return_token_type_ids=True, return_tensors="np",
        )
        mask = encoded["attention_mask"].astype(np.int64)
        arrays = {}
        for name in input_names:
            array = encoded.get(name)
            arrays[name] = np.zeros_like(mask) if array is None else array.astype(np.int64)
        return Features(
            example_ids=np.array([e.id for e in examples], dtype=str),
            arrays=arrays,
            lengths=mask.sum(axis=1).astype(np.int32),
        )

    def check_model_config(self, config: Any, source: str) -> None:
        if config.num_labels != len(self.labels):
            raise CheckpointError(
                f"{source}: the model has {config.num_labels} output classes, task '{self.name}' "
                f"has {len(self.labels)} ({', '.join(self.labels)}); use a checkpoint fine-tuned "
                "for this task"
            )

    def save_examples(self, examples: list[ClassificationExample], path: Path) -> None:
        with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as f:
            for e in examples:
                f.write(json.dumps(asdict(e), ensure_ascii=False) + "\n")

    def load_examples(self, path: Path) -> list[ClassificationExample]:
        with path.open(encoding="utf-8") as f:
            rows = [json.loads(line) for line in f]
        return [
            ClassificationExample(r["id"], r["line"], tuple(r["texts"]), r["label"]) for r in rows
        ]

    def score(
        self, examples: list[ClassificationExample], outputs: dict[str, np.ndarray]
    ) -> dict[str, float]:
        predicted = outputs["logits"].argmax(axis=-1)
        gold = np.array([e.label for e in examples])
        return {"accuracy": float((predicted == gold).mean())}

    def agreement(self, outputs: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> float:
        same = outputs["logits"].argmax(axis=-1) == reference["logits"].argmax(axis=-1)
        return float(same.mean())

    def write_predictions(
        self, examples: list[ClassificationExample], outputs: dict[str, np.ndarray], path: Path
    ) -> None:
        logits = outputs["logits"]
        with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as f:
            f.write("id\tline\tlabel\tprediction\t" + "\t".join(
                f"logit_{label}" for label in self.labels) + "\n")
            for example, row in zip(examples, logits, strict=True):
                values = "\t".join(f"{v:.6g}" for v in row)
                f.write(f"{example.id}\t{example.line}\t{self.labels[example.label]}\t"
                        f"{self.labels[int(row.argmax())]}\t{values}\n")
