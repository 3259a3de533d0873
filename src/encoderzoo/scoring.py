"""Accuracy per backend and precision, compared with the recipe's published reference and with
the PyTorch fp32 run, and the accuracy gate."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from encoderzoo.tasks.base import Score

REFERENCE_BACKEND = ("torch", "fp32")


@dataclass(frozen=True)
class AccuracyRow:
    backend: str
    precision: str
    metrics: dict[str, float]
    reference: dict[str, dict[str, float] | None]  # {"recipe": published, "torch_fp32": measured}
    baseline: str  # what the gate compares with: "torch_fp32", "recipe", or "none"
    gate: float  # required fraction of the baseline, per metric
    gate_passed: bool
    vs_torch: dict[str, float] | None  # agreement and max |Δ| of outputs against torch fp32
    breakdown: dict[str, dict[str, float]]  # e.g. accuracy per genre

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def gate_passes(value: float, baseline: float, gate: float) -> bool:
    """True when `value` keeps at least `gate` x `baseline` (1e-9 absorbs float rounding)."""
    return value >= gate * baseline - 1e-9


def output_drift(outputs: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> float:
    """Largest |Δ| over all outputs present in both."""
    diffs = [float(np.max(np.abs(outputs[k] - reference[k]), initial=0.0))
             for k in outputs.keys() & reference.keys()]
    return max(diffs, default=0.0)


def accuracy_rows(
    scores: dict[tuple[str, str], Score], agreement: dict[tuple[str, str], dict[str, float]],
    *, recipe_reference: dict[str, float] | None, gate: float,
) -> list[AccuracyRow]:
    """One row per (backend, precision). The torch fp32 run is gated against the recipe's
    published reference (none with random weights); every other run against the torch fp32 run,
    or the recipe's reference when torch did not run. Every metric the baseline has must pass."""
    torch_score = scores.get(REFERENCE_BACKEND)
    torch_metrics = torch_score.metrics if torch_score else None
    rows = []
    for (backend, precision), score in scores.items():
        is_reference = (backend, precision) == REFERENCE_BACKEND
        if not is_reference and torch_metrics is not None:
            baseline, values = "torch_fp32", torch_metrics
        elif recipe_reference:
            baseline, values = "recipe", recipe_reference
        else:
            baseline, values = "none", {}
        passed = all(gate_passes(score.metrics[k], v, gate) for k, v in values.items()
                     if k in score.metrics)
        rows.append(AccuracyRow(
            backend=backend, precision=precision, metrics=score.metrics,
            reference={"recipe": recipe_reference, "torch_fp32": torch_metrics},
            baseline=baseline, gate=gate, gate_passed=passed,
            vs_torch=None if is_reference else agreement.get((backend, precision)),
            breakdown=score.breakdown,
        ))
    return rows
