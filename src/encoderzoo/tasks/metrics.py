"""Classification metrics as GLUE reports them, computed by scikit-learn: accuracy, F1 of the
positive class, macro F1, Matthews correlation. Each takes (gold, found, the task's labels)."""

from __future__ import annotations

import numpy as np


def _accuracy(gold: list[str], found: list[str], labels: tuple[str, ...]) -> float:
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(gold, found))


def _f1(gold: list[str], found: list[str], labels: tuple[str, ...]) -> float:
    """F1 of the positive class (the second label: MRPC's and QQP's "1"), as GLUE reports it."""
    from sklearn.metrics import f1_score

    return float(f1_score(gold, found, pos_label=labels[1], labels=list(labels), zero_division=0.0))


def _f1_macro(gold: list[str], found: list[str], labels: tuple[str, ...]) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(gold, found, average="macro", labels=list(labels), zero_division=0.0))


def _mcc(gold: list[str], found: list[str], labels: tuple[str, ...]) -> float:
    """Matthews correlation (CoLA); 0 when every prediction is one class."""
    from sklearn.metrics import matthews_corrcoef

    return float(matthews_corrcoef(gold, found))


METRICS = {"accuracy": _accuracy, "f1": _f1, "f1-macro": _f1_macro, "mcc": _mcc}


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities along the last axis (shifted by the maximum: no overflow)."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


__all__ = ["METRICS", "softmax"]
