"""Sequence classification on GLUE-style TSV files: single sentences (SST-2, CoLA) or pairs
(MNLI, MRPC, QQP, QNLI, RTE, WNLI), scored with each task's official metrics as scikit-learn
computes them.

Dataset labels are matched to a checkpoint's classes by name through `config.id2label`, never
by assumed order."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from encoderzoo.errors import CheckpointError, ConfigError, DataError
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
    texts_of,
)
from encoderzoo.tasks.metrics import METRICS, softmax
from encoderzoo.tasks.tokenize import encode_fixed
from encoderzoo.tasks.tsv import TsvRow, read_tsv


@dataclass(frozen=True)
class ClassificationExample:
    id: str  # the file's index column if it has one, else the 0-based data row
    line: int  # line number in the source file
    texts: tuple[str, ...]  # one text, or a sentence pair
    label: str  # the dataset's gold label
    split: str = "dev"  # which dataset file it came from
    group: str | None = None  # e.g. the MNLI genre, when the file has one




@dataclass(frozen=True)
class SequenceClassification:
    name: str
    text_columns: tuple[str, ...]
    label_column: str
    labels: tuple[str, ...]  # dataset label values
    label_names: tuple[str, ...]  # what config.id2label calls each of `labels`, same order
    labels_are_indices: bool = False  # dataset labels are class indices (GLUE SST-2: 0, 1)
    skip_labels: tuple[str, ...] = ()  # rows without a gold label (MNLI "-"): skipped, counted
    group_column: str | None = None  # accuracy per group when the file has this column
    id_columns: tuple[str, ...] = ("idx", "index", "id")
    columns: tuple[str, ...] | None = None  # the columns of a file without a header row (CoLA)
    user_columns: bool = False  # text and label columns come from the user (see tasks.generic)
    model_labels: tuple[str, ...] | None = None  # dataset labels in the model's class order
    model_kind: str = "sequence-classification"
    auto_class: str = "AutoModelForSequenceClassification"  # the transformers class that loads its models
    predictions_suffix: str = ".tsv"
    output_axes: dict[str, dict[int, str]] = field(default_factory=lambda: {"logits": {0: "batch"}})
    metric_names: tuple[str, ...] = ("accuracy",)  # of METRICS below
    # the gate's default share of predictions equal to torch fp32's: the demo's int8 variants agree
    # on 96-99 %, a graph of another model on about as many as chance gives
    agreement_floor: float = 0.95

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(self.output_axes)

    @property
    def layout(self) -> str:
        if self.columns is not None:
            return f"'{'<TAB>'.join(self.columns)}' without a header row, labels {'/'.join(self.labels)}"
        columns = "<TAB>".join((*self.text_columns, self.label_column))
        return f"'{columns}' with a header row, labels {'/'.join(self.labels)}"

    # -- reading --------------------------------------------------------------------------------

    def rows(self, path: Path) -> Iterator[TsvRow]:
        """The file's rows: GLUE's TSV layout."""
        return read_tsv(path, (*self.text_columns, self.label_column), self.layout, self.columns)

    def check(self, examples: list[ClassificationExample], files: dict[str, Path] | None = None
              ) -> list[ClassificationExample]:
        return examples  # labels were checked against the task's when read

    def gold(self, label: str, path: Path, line: int) -> str:
        """The row's gold label, checked."""
        if label not in self.labels:
            raise DataError(f"{path}, line {line}: label {label!r} is not one of {', '.join(self.labels)}; "
                            "fix or remove the row")
        return label

    def agreement(self, found: list[Any], reference: list[Any]) -> float:
        """The share of predictions equal to the reference's."""

        return agreement_of(found, reference)

    def read(self, path: Path, *, split: str = "dev", limit: int | None = None) -> ReadResult:
        examples: list[ClassificationExample] = []
        skipped = 0
        for i, row in enumerate(self.rows(path)):
            if limit is not None and len(examples) >= limit:
                break
            values = row.values
            label = values[self.label_column].strip()
            if label in self.skip_labels:
                skipped += 1
                continue
            label = self.gold(label, path, row.line)
            texts = tuple(values[c] for c in self.text_columns)
            for column, text in zip(self.text_columns, texts, strict=True):
                if not text.strip():
                    raise DataError(
                        f"{path}, line {row.line}: empty '{column}'; remove the row or fill it in")
            example_id = next((values[c].strip() for c in self.id_columns if c in values), str(i))
            group = values.get(self.group_column) if self.group_column else None
            examples.append(ClassificationExample(example_id, row.line, texts, label, split, group))
        return ReadResult(examples, skipped)

    # -- the model's labels -----------------------------------------------------------------------

    def for_model(
        self, config: Any, source: str, label_names: tuple[str, ...] | None = None
    ) -> SequenceClassification:
        """Bind to the checkpoint's label order, read by name from `config.id2label` (or from
        `label_names`, the user's override, in class order)."""
        count = int(config.num_labels)
        if count != len(self.labels):
            raise CheckpointError(
                f"{source}: the model has {count} output classes, task '{self.name}' has "
                f"{len(self.labels)} ({', '.join(self.labels)}); use a checkpoint fine-tuned for it"
            )
        names = label_names or tuple(str(config.id2label[i]) for i in range(count))
        if len(names) != count:
            raise CheckpointError(f"--label-names gives {len(names)} names for {count} classes")
        order = tuple(self._dataset_label(name, i, source) for i, name in enumerate(names))
        if len(set(order)) != count:
            raise CheckpointError(
                f"{source}: config.id2label {dict(enumerate(names))} names a label twice; "
                "fix id2label in config.json or pass --label-names"
            )
        return replace(self, model_labels=order)

    def _dataset_label(self, name: str, index: int, source: str) -> str:
        key = name.strip().lower()
        for label, label_name in zip(self.labels, self.label_names, strict=True):
            if key in (label.lower(), label_name.lower(), label_name[:3].lower()):
                return label
        if self.labels_are_indices and key == f"label_{index}":
            return self.labels[index]
        raise CheckpointError(
            f"{source}: class {index} is called {name!r} in config.id2label, which is none of "
            f"{', '.join(self.label_names)}; fix id2label in config.json or pass --label-names "
            f"{','.join(self.label_names)} in the model's class order"
        )

    def binding(self) -> dict[str, Any]:
        """What prepare records of the binding to the model: the dataset labels in class order."""
        return {"model_labels": list(self.model_labels or [])}

    def gold_label(self, example: ClassificationExample) -> str:
        return example.label

    def output_shapes(self, config: Any, seq_len: int) -> dict[str, tuple[int, ...]]:
        """Each output's shape for one row (what a device runner writes per sample)."""
        return {"logits": (int(config.num_labels),)}

    def head_config(self) -> dict[str, Any]:
        return {
            "num_labels": len(self.labels),
            "id2label": dict(enumerate(self.label_names)),
            "label2id": {name: i for i, name in enumerate(self.label_names)},
        }

    # -- features, scores, predictions --------------------------------------------------------

    def encode(
        self, examples: list[ClassificationExample], tokenizer: Any, *, seq_len: int,
        input_names: tuple[str, ...],
    ) -> Features:
        texts = len(self.text_columns)
        needed = tokenizer.num_special_tokens_to_add(pair=texts > 1) + texts  # a token of each text
        if seq_len < needed:
            raise ConfigError(
                f"--seq-len {seq_len} leaves no room for the text: the tokenizer adds "
                f"{needed - texts} special tokens around {texts} text{'s' * (texts > 1)}; use --seq-len "
                f"{needed} or more (the recipe's default is usually 128)")
        columns = [[e.texts[c] for e in examples] for c in range(texts)]
        encoded = encode_fixed(tokenizer, columns, seq_len)
        mask = encoded["attention_mask"]
        arrays = {name: encoded[name] for name in input_names}
        return Features(
            example_ids=np.array([e.id for e in examples], dtype=str),
            arrays=arrays,
            lengths=mask.sum(axis=1).astype(np.int32),
        )

    def save_examples(self, examples: list[ClassificationExample], path: Path) -> None:
        save_jsonl(examples, path)

    def load_examples(self, path: Path) -> list[ClassificationExample]:
        return load_jsonl(path, ClassificationExample)

    def predict(self, examples: list[ClassificationExample], features: Features,
                outputs: dict[str, np.ndarray]) -> list[str]:
        if self.model_labels is None:
            raise RuntimeError(f"task {self.name!r} is not bound to a model; call for_model first")
        return [self.model_labels[i] for i in outputs["logits"].argmax(axis=-1)]

    @property
    def inputs_layout(self) -> str:
        count = max(len(self.text_columns), 1)
        return "a text" if count == 1 else f"a list of {count} texts ({', '.join(self.text_columns)})"

    def examples_from(self, inputs: Sequence[Any]) -> list[ClassificationExample]:
        count = max(len(self.text_columns), 1)
        return [ClassificationExample(id=str(i), line=i, texts=texts_of(value, count, i, self.inputs_layout),
                                      label="", split="input") for i, value in enumerate(inputs)]

    def present(self, inputs: Sequence[Any], examples: list[ClassificationExample], features: Features,
                outputs: dict[str, np.ndarray]) -> list[Any]:
        """{"label": the class's name, "score": its probability} per input."""
        found = self.predict(examples, features, outputs)
        probabilities = softmax(outputs["logits"].reshape(len(examples), -1))
        names = dict(zip(self.labels, self.label_names, strict=True))
        return [{"label": names.get(label, label), "score": float(p.max())}
                for label, p in zip(found, probabilities, strict=True)]

    def score(self, examples: list[ClassificationExample], predictions: list[str]) -> Score:
        correct = np.array([p == e.label for p, e in zip(predictions, examples, strict=True)])
        splits = splits_of(examples)
        metrics, breakdown = {}, {}
        for split in splits:
            in_split = [i for i, e in enumerate(examples) if e.split == split]
            gold, found = [examples[i].label for i in in_split], [predictions[i] for i in in_split]
            for name in self.metric_names:
                metrics[split_key(split, name, splits)] = METRICS[name](gold, found, self.labels)
            groups: dict[str, list[bool]] = defaultdict(list)
            for e, ok in zip(examples, correct, strict=True):
                if e.split == split and e.group is not None:
                    groups[e.group].append(bool(ok))
            for group, oks in sorted(groups.items()):
                key = f"{split}/{group}" if len(splits) > 1 else group
                breakdown[key] = {"accuracy": float(np.mean(oks)), "examples": float(len(oks))}
        return Score(metrics, breakdown)

    def write_predictions(
        self, examples: list[ClassificationExample], predictions: list[str],
        outputs: dict[str, np.ndarray], path: Path,
    ) -> None:
        logits = outputs["logits"]
        if self.model_labels is None:
            raise RuntimeError(f"task {self.name!r} is not bound to a model; call for_model first")
        with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as f:
            f.write("id\tsplit\tline\tlabel\tprediction\t"
                    + "\t".join(f"logit_{label}" for label in self.model_labels) + "\n")
            for example, prediction, row in zip(examples, predictions, logits, strict=True):
                values = "\t".join(f"{v:.6g}" for v in row)
                f.write(f"{example.id}\t{example.split}\t{example.line}\t{example.label}\t"
                        f"{prediction}\t{values}\n")

    def read_predictions(self, path: Path, examples: list[ClassificationExample]) -> list[str]:
        """The `prediction` column of a predictions TSV, matched to examples by id (and split), as
        a run writes it; or GLUE's submission format (`index<TAB>prediction`, index = the 0-based
        position of the example among the dev file's rows). A missing example counts as wrong."""
        layout = "'id<TAB>prediction' (a run's) or 'index<TAB>prediction' (GLUE's) with a header row"
        rows = list(read_tsv(path, ("prediction",), layout))
        if rows and "id" not in rows[0].values and "index" in rows[0].values:
            first = 1 if self.columns is not None else 2  # the line of the file's first data row
            by_position = {r.values["index"].strip(): r.values["prediction"].strip() for r in rows}
            return [by_position.get(str(e.line - first), "") for e in examples]
        if rows and "id" not in rows[0].values:
            raise DataError(f"{path}, line 1: no column 'id' or 'index' in the header; expected {layout}")
        found = {(r.values.get("split", ""), r.values["id"]): r.values["prediction"].strip() for r in rows}
        return [found.get((e.split, e.id), found.get(("", e.id), "")) for e in examples]
