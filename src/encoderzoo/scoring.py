"""Accuracy per backend and precision, compared with the recipe's published reference and with
the PyTorch fp32 run, and the accuracy gate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

REFERENCE_BACKEND = ("torch", "fp32")


@dataclass(frozen=True)
class AccuracyRow:
    backend: str
    precision: str
    metrics: dict[str, float]
    reference: dict[str, float | None]  # {"recipe": published value, "torch_fp32": measured}
    baseline: str  # which reference the gate compares with: "recipe" or "torch_fp32"
    gate: float  # required fraction of the baseline
    gate_passed: bool
    vs_torch: dict[str, float] | None  # agreement and max |Δ| of outputs against torch fp32

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


def gate_passes(value: float, baseline: float, gate: float) -> bool:
    """True when `value` keeps at least `gate` x `baseline` (1e-9 absorbs float rounding)."""
    return value >= gate * baseline - 1e-9


def output_drift(outputs: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> float:
    """Largest |Δ| over all outputs present in both."""
    diffs = [float(np.max(np.abs(outputs[k] - reference[k]), initial=0.0))
             for k in outputs.keys() & reference.keys()]
    return max(diffs, default=0.0)


def accuracy_rows(
    results: dict[tuple[str, str], dict[str, float]],
    agreement: dict[tuple[str, str], dict[str, float]],
    *, metric: str, recipe_reference: float | None, gate: float,
) -> list[AccuracyRow]:
    """One row per (backend, precision). The torch fp32 run is gated against the recipe's
    published reference; every other run against the torch fp32 run (or the recipe's reference
    when torch did not run)."""
    torch_metrics = results.get(REFERENCE_BACKEND)
    torch_value = torch_metrics[metric] if torch_metrics else None
    rows = []
    for (backend, precision), metrics in results.items():
        is_reference = (backend, precision) == REFERENCE_BACKEND
        if not is_reference and torch_value is not None:
            baseline, base_value = "torch_fp32", torch_value
        else:
            baseline, base_value = "recipe", recipe_reference
        passed = True if base_value is None else gate_passes(metrics[metric], base_value, gate)
        rows.append(AccuracyRow(
            backend=backend, precision=precision, metrics=metrics,
            reference={"recipe": recipe_reference, "torch_fp32": torch_value},
            baseline=baseline, gate=gate, gate_passed=passed,
            vs_torch=None if is_reference else agreement.get((backend, precision)),
        ))
    return rows
