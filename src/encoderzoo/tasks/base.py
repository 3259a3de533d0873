"""The task protocol: everything the pipeline needs to know about a dataset and its metric."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from encoderzoo.errors import DataError, InputError
from encoderzoo.features import Features
from encoderzoo.fileio import atomic_path


@dataclass
class ReadResult:
    examples: list[Any]
    skipped: int = 0  # rows without a gold label, left out as the dataset's convention says


@dataclass
class Score:
    metrics: dict[str, float]  # e.g. {"accuracy": 0.89} or {"matched.accuracy": ..., ...}
    breakdown: dict[str, dict[str, float]] = field(default_factory=dict)  # e.g. per genre


class Task(Protocol):
    name: str
    model_kind: str  # the kind of head, e.g. "sequence-classification"
    auto_class: str  # the transformers auto class that loads its models
    # model outputs in ONNX order, each with its dynamic axes, e.g. {"logits": {0: "batch"}}
    output_axes: dict[str, dict[int, str]]
    metric_names: tuple[str, ...]  # e.g. ("accuracy",)
    agreement_floor: float  # the gate's default share of predictions equal to torch fp32's

    def check(self, examples: list[Any], files: dict[str, Path] | None = None) -> list[Any]:
        """The examples, checked against the bound model (e.g. every gold label is a class)."""
        ...

    def agreement(self, found: list[Any], reference: list[Any]) -> float:
        """The share of predictions that agree with the reference run's (equal, or close for a
        regression)."""
        ...

    @property
    def output_names(self) -> tuple[str, ...]: ...

    def read(self, path: Path, *, split: str, limit: int | None = None) -> ReadResult:
        """Examples from a dataset file; a malformed file raises DataError naming file and row."""
        ...

    def for_model(self, config: Any, source: str, label_names: tuple[str, ...] | None = None) -> Task:
        """This task bound to a checkpoint (e.g. its label order); CheckpointError if it cannot
        serve the task."""
        ...

    def head_config(self) -> dict[str, Any]:
        """Config entries of a new model's task head (labels), for random weights."""
        ...

    def binding(self) -> dict[str, Any]:
        """What prepare records of this task's binding to the checkpoint (e.g. its label order)."""
        ...

    def gold_label(self, example: Any) -> str:
        """An example's gold answer as one line of text (for the device runners' labels.txt)."""
        ...

    def output_shapes(self, config: Any, seq_len: int) -> dict[str, tuple[int, ...]]:
        """The shape of each model output for one row, in output order."""
        ...

    def encode(
        self, examples: list[Any], tokenizer: Any, *, seq_len: int, input_names: tuple[str, ...]
    ) -> Features:
        """Tokenize examples into features, keeping each example's id."""
        ...

    def save_examples(self, examples: list[Any], path: Path) -> None: ...

    def load_examples(self, path: Path) -> list[Any]: ...

    predictions_suffix: str  # the predictions file's type, e.g. ".tsv" or ".json"

    def predict(self, examples: list[Any], features: Features, outputs: dict[str, np.ndarray]) -> list[Any]:
        """One prediction per example (a label, an answer text) from outputs aligned with the
        feature rows; predictions compare with ==."""
        ...

    def score(self, examples: list[Any], predictions: list[Any]) -> Score:
        """Metrics (fractions in [0, 1]); with several splits, each metric is keyed "split.metric"."""
        ...

    def write_predictions(
        self, examples: list[Any], predictions: list[Any], outputs: dict[str, np.ndarray], path: Path
    ) -> None:
        """One prediction per example, next to its id."""
        ...

    def read_predictions(self, path: Path, examples: list[Any]) -> list[Any]:
        """Predictions written by write_predictions (or by another tool in the same format), in
        `examples` order."""
        ...

    # -- raw inputs: what a loaded or served model reads and answers (see encoderzoo.api) ---------

    inputs_layout: str  # what one raw input is, for messages (e.g. "a text")

    def examples_from(self, inputs: Sequence[Any]) -> list[Any]:
        """Examples from raw inputs (InputError naming the input's index when one cannot be read)."""
        ...

    def present(self, inputs: Sequence[Any], examples: list[Any], features: Features,
                outputs: dict[str, np.ndarray]) -> list[Any]:
        """One answer per input, as a user reads it (JSON-able, or an array for embeddings), decoded
        by `predict`'s own code."""
        ...


def texts_of(value: Any, count: int, index: int, layout: str) -> tuple[str, ...]:
    """`count` non-empty texts from one raw input: a string (one text) or a list of strings."""
    texts = (value,) if isinstance(value, str) else tuple(value) if isinstance(value, list | tuple) else ()
    if len(texts) != count or not all(isinstance(t, str) and t.strip() for t in texts):
        raise InputError(f"inputs[{index}]: expected {layout}, got {str(value)[:60]!r}")
    return texts


def agreement_of(found: list[Any], reference: list[Any]) -> float:
    """The share of predictions equal to the reference's."""
    return float(np.mean([a == b for a, b in zip(found, reference, strict=True)])) if found else 1.0


def split_key(split: str, metric: str, splits: list[str]) -> str:
    """Metric names carry the split only when a run scores several: "matched.accuracy"."""
    return f"{split}.{metric}" if len(splits) > 1 else metric


def splits_of(examples: list[Any]) -> list[str]:
    return list(dict.fromkeys(e.split for e in examples))


def read_splits(task: Task, files: Mapping[str, Path], *, limit: int | None = None
                ) -> tuple[list[Any], dict[str, ReadResult]]:
    """Every split's examples, in order; with several splits, ids become "split/id" so that
    they stay unique."""
    examples: list[Any] = []
    results = {}
    for split, path in files.items():
        results[split] = task.read(path, split=split, limit=limit)
        seen: dict[str, Any] = {}
        for example in results[split].examples:
            if example.id in seen:
                where = f", line {example.line}" if hasattr(example, "line") else ""
                raise DataError(f"{path}{where}: example id {example.id!r} appears twice; ids must be "
                                "unique (fix the index column or the question ids)")
            seen[example.id] = example
        prefix = f"{split}/" if len(files) > 1 else ""
        examples += [replace(e, id=prefix + e.id) for e in results[split].examples]
    return examples, results


def save_jsonl(examples: list[Any], path: Path) -> None:
    """Example dataclasses, one JSON object per line."""
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as f:
        for example in examples:
            f.write(json.dumps(asdict(example), ensure_ascii=False) + "\n")


def load_jsonl(path: Path, example_type: Any) -> list[Any]:
    """The inverse of save_jsonl (JSON lists come back as the dataclasses' tuples)."""
    with path.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    return [example_type(**{k: tuple(v) if isinstance(v, list) else v for k, v in row.items()})
            for row in rows]
