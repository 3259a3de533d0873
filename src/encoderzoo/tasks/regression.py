"""Sentence(-pair) regression (GLUE STS-B): a one-output head (num_labels = 1) whose value is the
prediction, scored with Pearson and Spearman correlation as scipy computes them. Two runs agree
on an example when their predictions differ by at most `tolerance` x the spread of the compared
run's predictions."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from encoderzoo.errors import CheckpointError, DataError
from encoderzoo.features import Features
from encoderzoo.fileio import atomic_path
from encoderzoo.tasks.base import Score, split_key, splits_of
from encoderzoo.tasks.classification import ClassificationExample, SequenceClassification


def _pearson(gold: np.ndarray, found: np.ndarray) -> float:
    from scipy.stats import pearsonr

    return float(pearsonr(gold, found).statistic) if np.ptp(found) > 0 else 0.0


def _spearman(gold: np.ndarray, found: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(gold, found).statistic) if np.ptp(found) > 0 else 0.0


def _rmse(gold: np.ndarray, found: np.ndarray) -> float:
    from sklearn.metrics import mean_squared_error

    return math.sqrt(float(mean_squared_error(gold, found)))


REGRESSION_METRICS = {"pearson": _pearson, "spearman": _spearman, "rmse": _rmse}


@dataclass(frozen=True)
class Regression(SequenceClassification):
    labels: tuple[str, ...] = ()  # a numeric target: no label set
    label_names: tuple[str, ...] = ()
    metric_names: tuple[str, ...] = ("pearson", "spearman")  # higher is better: these are gated
    # |Δ| of two predictions that still agree, as a share of the spread (standard deviation) of the
    # compared run's predictions: a fixed |Δ| cannot see a shift or a rescaling of a model whose
    # predictions span little (STS-B's spread ~1.4: |Δ| <= 0.14)
    tolerance: float = 0.1
    agreement_floor: float = 0.9

    @property
    def layout(self) -> str:
        columns = "<TAB>".join(self.columns or (*self.text_columns, self.label_column))
        header = "without" if self.columns else "with"
        return f"'{columns}' {header} a header row, a number in '{self.label_column}'"

    def gold(self, label: str, path: Path, line: int) -> str:
        try:
            value = float(label)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise DataError(f"{path}, line {line}: '{self.label_column}' is {label!r}, not a number; fix or "
                            "remove the row")
        return label

    def allowed(self, reference: list[Any]) -> float:
        """The |Δ| two predictions may differ by and still agree (see `tolerance`)."""
        return self.tolerance * float(np.std(np.asarray(reference, dtype=float))) if reference else 0.0

    def agreement(self, found: list[Any], reference: list[Any]) -> float:
        if not found:
            return 1.0
        delta = np.abs(np.asarray(found, dtype=float) - np.asarray(reference, dtype=float))
        return float(np.mean(delta <= self.allowed(reference) * (1 + 1e-9) + 1e-12))

    def similarity(self, found: list[Any], reference: list[Any]) -> dict[str, float]:
        """Beside the agreement: the |Δ| it allowed, and the mean shift of the predictions."""
        if not found:
            return {}
        delta = np.asarray(found, dtype=float) - np.asarray(reference, dtype=float)
        return {"tolerance": self.allowed(reference), "mean_shift": float(np.mean(delta))}

    def scoring_options(self) -> dict[str, Any]:
        """What the scores depend on besides the model outputs (shown beside them)."""
        return {"agreement": f"|Δ| of the predictions ≤ {100 * self.tolerance:g} % of the standard deviation "
                             "of the compared run's predictions"}

    def for_model(self, config: Any, source: str, label_names: tuple[str, ...] | None = None) -> Regression:
        if int(config.num_labels) != 1:
            raise CheckpointError(f"{source}: the model has {config.num_labels} output classes; task "
                                  f"'{self.name}' needs a regression head (num_labels = 1)")
        return self

    def binding(self) -> dict[str, Any]:
        return {}

    def head_config(self) -> dict[str, Any]:
        return {"num_labels": 1, "problem_type": "regression"}

    def output_shapes(self, config: Any, seq_len: int) -> dict[str, tuple[int, ...]]:
        return {"logits": (1,)}

    def predict(self, examples: list[ClassificationExample], features: Features,
                outputs: dict[str, np.ndarray]) -> list[float]:
        return [float(v) for v in outputs["logits"].reshape(len(examples), -1)[:, 0]]

    def present(self, inputs: Sequence[Any], examples: list[ClassificationExample], features: Features,
                outputs: dict[str, np.ndarray]) -> list[Any]:
        """{"score": the predicted number} per input."""
        return [{"score": value} for value in self.predict(examples, features, outputs)]

    def score(self, examples: list[ClassificationExample], predictions: list[Any]) -> Score:
        missing = sum(1 for p in predictions if p is None)
        if missing:
            raise DataError(f"no prediction for {missing} of {len(examples)} examples; predict every one")
        splits = splits_of(examples)
        metrics = {}
        for split in splits:
            rows = [i for i, e in enumerate(examples) if e.split == split]
            gold = np.array([float(examples[i].label) for i in rows])
            found = np.array([float(predictions[i]) for i in rows])
            for name in self.metric_names:
                metrics[split_key(split, name, splits)] = REGRESSION_METRICS[name](gold, found)
        return Score(metrics)

    def write_predictions(self, examples: list[ClassificationExample], predictions: list[Any],
                          outputs: dict[str, np.ndarray], path: Path) -> None:
        with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as f:
            f.write("id\tsplit\tline\tlabel\tprediction\n")
            for example, prediction in zip(examples, predictions, strict=True):
                f.write(f"{example.id}\t{example.split}\t{example.line}\t{example.label}\t{prediction:.6g}\n")

    def read_predictions(self, path: Path, examples: list[ClassificationExample]) -> list[Any]:
        """Numbers from a run's predictions TSV or GLUE's submission format (see the classes')."""
        found = super().read_predictions(path, examples)
        values = []
        for example, text in zip(examples, found, strict=True):
            try:
                values.append(float(text) if text != "" else None)
            except ValueError:
                raise DataError(f"{path}: the prediction for example {example.id} is {text!r}, not a "
                                "number") from None
        return values

