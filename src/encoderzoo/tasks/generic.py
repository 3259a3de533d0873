"""Any labelled file (`encoderzoo run classify|regress --data FILE --text-column C
[--text-pair-column C2] --label-column L`): CSV, TSV, JSON Lines or Parquet. The classes are the
model's (`config.id2label`, or --labels in class order); a gold label is a class name (any case)
or a class index. Regression targets are numbers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from encoderzoo.errors import CheckpointError, ConfigError, DataError
from encoderzoo.options import whole_number
from encoderzoo.tasks.base import Score, splits_of
from encoderzoo.tasks.classification import ClassificationExample, SequenceClassification
from encoderzoo.tasks.metrics import METRICS
from encoderzoo.tasks.records import read_records
from encoderzoo.tasks.regression import REGRESSION_METRICS, Regression
from encoderzoo.tasks.tsv import TsvRow


def task_for(task: Any, cfg: Any) -> Any:
    """The task a run reads its data with: a file of the user's with its columns (RunConfig's
    --text-column ...), any other task as registered."""
    if getattr(task, "user_columns", False):
        return configure(task, text=cfg.text_column, pair=cfg.text_pair_column, label=cfg.label_column,
                         metrics=cfg.metric, labels=cfg.label_names)
    if getattr(cfg, "null_threshold", None) is not None:
        if not hasattr(task, "null_threshold"):
            raise ConfigError(f"--null-threshold is for squad2; task '{task.name}' has no null answer")
        task = replace(task, null_threshold=float(cfg.null_threshold))
    if getattr(cfg, "strict_entities", False):
        if not hasattr(task, "strict"):
            raise ConfigError(f"--strict-entities is for ner; task '{task.name}' has no entities")
        task = replace(task, strict=True)
    if cfg.text_column or cfg.text_pair_column or cfg.label_column or cfg.metric:
        raise ConfigError("--text-column, --label-column and --metric are for `classify` and `regress`; "
                          f"task '{task.name}' reads its own layout")
    return task


def configure(task: Any, *, text: str | None, pair: str | None, label: str | None,
              metrics: tuple[str, ...], labels: tuple[str, ...] | None = None) -> Any:
    """The task with the user's columns and metrics (checked)."""
    if text is None or label is None:
        raise ConfigError(f"task '{task.name}' reads your file: pass --text-column NAME and --label-column "
                          "NAME (and --text-pair-column NAME for sentence pairs)")
    known = REGRESSION_METRICS if isinstance(task, Regression) else METRICS
    unknown = [m for m in metrics if m not in known]
    if unknown:
        raise ConfigError(f"--metric {unknown[0]}: not a metric of task '{task.name}' (its metrics: "
                          f"{', '.join(known)})")
    if "rmse" in metrics:
        raise ConfigError("--metric rmse: lower is better, so it cannot be gated; it is reported beside the "
                          "correlations anyway")
    columns = (text, pair) if pair else (text,)
    task = replace(task, text_columns=columns, label_column=label, metric_names=metrics or task.metric_names)
    if labels and not isinstance(task, Regression):  # --labels: the classes, in the model's order
        task = replace(task, labels=labels, label_names=labels)
    return task


@dataclass(frozen=True)
class FileClassification(SequenceClassification):
    """Classes named by the model; labels by name or index."""

    user_columns: bool = True

    @property
    def layout(self) -> str:
        return f"columns {', '.join(repr(c) for c in (*self.text_columns, self.label_column))}"

    def rows(self, path: Path) -> Iterator[TsvRow]:
        return read_records(path, (*self.text_columns, self.label_column), self.layout)

    def gold(self, label: str, path: Path, line: int) -> str:
        if not label:
            raise DataError(f"{path}, line {line}: empty '{self.label_column}'; fill it in or remove the row")
        if self.labels and self.canonical(label) is None:
            raise DataError(f"{path}, line {line}: label {label!r} in '{self.label_column}' is none of "
                            f"the model's classes ({', '.join(self.labels)}) nor a class index; fix the row "
                            "or pass --labels")
        return label

    def canonical(self, label: str) -> str | None:
        """The class a gold label names: by name (any case) or by index."""
        for name in self.labels:
            if label.strip().lower() == name.lower():
                return name
        index = whole_number(label)
        return self.labels[index] if index is not None and index < len(self.labels) else None

    def for_model(self, config: Any, source: str, label_names: tuple[str, ...] | None = None
                  ) -> FileClassification:
        count = int(config.num_labels)
        names = label_names or tuple(str(config.id2label[i]) for i in range(count))
        if len(names) != count:
            raise CheckpointError(f"--labels gives {len(names)} names for {count} classes")
        return replace(self, labels=names, label_names=names, model_labels=names)

    def head_config(self) -> dict[str, Any]:
        if not self.labels:
            raise ConfigError(f"task '{self.name}' with --random-weights: pass --labels a,b,c (the classes)")
        return super().head_config()

    def check(self, examples: list[ClassificationExample], files: dict[str, Path] | None = None
              ) -> list[ClassificationExample]:
        """The examples with gold labels as the model's class names (after binding)."""
        bound = []
        for e in examples:
            name = self.canonical(e.label)
            if name is None:
                where = (files or {}).get(e.split, e.split)
                self.gold(e.label, Path(str(where)), e.line)  # raises, naming the file and line
            bound.append(replace(e, label=name or e.label))
        return bound

    def score(self, examples: list[ClassificationExample], predictions: list[str]) -> Score:
        return super().score(self.check(examples), predictions)


@dataclass(frozen=True)
class FileRegression(Regression):
    user_columns: bool = True

    def rows(self, path: Path) -> Iterator[TsvRow]:
        return read_records(path, (*self.text_columns, self.label_column), self.layout)

    @property
    def layout(self) -> str:
        columns = ", ".join(repr(c) for c in (*self.text_columns, self.label_column))
        return f"columns {columns}, a number in '{self.label_column}'"

    def score(self, examples: list[ClassificationExample], predictions: list[Any]) -> Score:
        """The correlations (gated), and the RMSE beside them."""
        scored = super().score(examples, predictions)
        for split in splits_of(examples):
            rows = [i for i, e in enumerate(examples) if e.split == split]
            gold = np.array([float(examples[i].label) for i in rows])
            found = np.array([float(predictions[i]) for i in rows])
            rmse = REGRESSION_METRICS["rmse"](gold, found)
            scored.breakdown[split] = {"rmse": rmse, "examples": float(len(rows))}
        return scored
