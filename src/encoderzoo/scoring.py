"""Metrics per backend and precision, compared with the reference and with the PyTorch fp32 run,
and the gate.

A row passes its gate when every metric keeps at least `keep` x its baseline (torch fp32 for
every other backend; the reference for torch fp32 itself) and, for every backend but torch fp32,
when its predictions agree with torch fp32's on at least `min_agreement` of the examples: a
graph of another model can score well on a metric and still be the wrong model. With random
weights only the agreement of the fp32 variants is gated: their metrics mean nothing, and a
random model has no margins for a reduced precision to keep (a tiny random DeBERTa gives every
example the same near-tie, which int8 flips for all of them), so those rows are shown ungated."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from encoderzoo.errors import ConfigError
from encoderzoo.tasks.base import Score, agreement_of

__all__ = [
    "AccuracyRow",
    "Gate",
    "Reference",
    "accuracy_rows",
    "agreement_of",
    "gate_failures",
    "gate_passes",
    "output_drift",
    "parse_reference",
]

REFERENCE_BACKEND = ("torch", "fp32")


@dataclass(frozen=True)
class Reference:
    """What torch fp32 is gated against: metric fractions and where they come from."""

    metrics: dict[str, float]
    source: str  # "published" (the recipe's own checkpoint), "eval_results.json" or "--reference"


@dataclass(frozen=True)
class Gate:
    keep: float  # fraction of the baseline metric each backend must keep
    min_agreement: float  # share of predictions equal to torch fp32's
    random_weights: bool = False  # only the agreement of fp32 variants is gated

    def gates(self, precision: str) -> bool:
        return not self.random_weights or precision == "fp32"


@dataclass(frozen=True)
class AccuracyRow:
    backend: str
    precision: str
    metrics: dict[str, float]
    reference: dict[str, Any]  # {"reference": metrics or None, "source": ..., "torch_fp32": metrics}
    baseline: str  # what the metrics are compared with: "torch_fp32", "reference" or "none"
    gate: float  # required fraction of the baseline, per metric
    min_agreement: float | None  # required agreement with torch fp32 (None for torch fp32 itself)
    gate_passed: bool
    gated: bool  # False: shown only (a reduced precision of random weights)
    failures: list[str]  # why the gate failed, one phrase per reason
    vs_torch: dict[str, float] | None  # agreement and max |Δ| of outputs against torch fp32
    breakdown: dict[str, dict[str, float]] = field(default_factory=dict)  # e.g. accuracy per genre

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def parse_reference(values: tuple[str, ...]) -> dict[str, float]:
    """--reference METRIC=VALUE values as fractions: 92.4 and 0.924 both mean 92.4 %."""

    found = {}
    for value in values:
        metric, sep, number = value.partition("=")
        try:
            fraction = float(number)
        except ValueError:
            fraction = -1.0
        if not sep or not metric.strip() or not 0.0 <= fraction <= 100.0:
            raise ConfigError(f"--reference takes METRIC=VALUE, e.g. accuracy=92.4 or f1=0.924; "
                              f"got {value!r}")
        found[metric.strip()] = fraction / 100 if fraction > 1.0 else fraction
    return found


def gate_passes(value: float, baseline: float, gate: float) -> bool:
    """True when `value` keeps at least `gate` x `baseline` (1e-9 absorbs float rounding)."""
    return value >= gate * baseline - 1e-9


def output_drift(outputs: dict[str, np.ndarray], reference: dict[str, np.ndarray], *,
                 lengths: np.ndarray | None = None, sequence: frozenset[str] = frozenset()) -> float:
    """Largest |Δ| over all outputs present in both; outputs named in `sequence` (axis 1 =
    tokens) only over each row's real tokens (`lengths`): what lies beyond depends on how wide
    each backend's batch was padded, not on the model."""
    diffs = []
    for name in outputs.keys() & reference.keys():
        delta = np.abs(outputs[name] - reference[name])
        if name in sequence and lengths is not None:
            real = np.arange(delta.shape[1])[None, :] < np.asarray(lengths)[:, None]  # (N, S)
            delta = delta[real]
        diffs.append(float(np.max(delta, initial=0.0)))
    return max(diffs, default=0.0)


def gate_failures(metrics: dict[str, float], baseline: dict[str, float], baseline_name: str,
                  vs_torch: dict[str, float] | None, gate: Gate,
                  compared_with: str = "torch fp32") -> list[str]:
    """Why a row misses its gate (empty: it passes)."""
    failures = []
    if not gate.random_weights:
        for key, value in baseline.items():
            if key in metrics and not gate_passes(metrics[key], value, gate.keep):
                failures.append(f"{key} {100 * metrics[key]:.2f} < {100 * gate.keep:g} % of "
                                f"{baseline_name}'s {100 * value:.2f}")
    if vs_torch is not None and vs_torch["agreement"] < gate.min_agreement - 1e-9:
        failures.append(f"agreement with {compared_with} {100 * vs_torch['agreement']:.2f} % < "
                        f"{100 * gate.min_agreement:g} %")
    return failures


def accuracy_rows(
    scores: dict[tuple[str, str], Score], agreement: dict[tuple[str, str], dict[str, float]],
    *, reference: Reference | None, gate: Gate, reference_run: tuple[str, str] = REFERENCE_BACKEND,
    failures: dict[tuple[str, str], list[str]] | None = None,
) -> list[AccuracyRow]:
    """One row per (backend, precision). torch fp32 (or `reference_run`, a graph's fp32 run when
    there is no PyTorch model) is gated against the reference (it is the reference when there is
    none); every other run against it, or the reference when it did not run."""
    torch_score = scores.get(reference_run)
    compared_with = " ".join(reference_run)
    torch_metrics = torch_score.metrics if torch_score else None
    references = {"reference": reference.metrics if reference else None,
                  "source": reference.source if reference else None, "torch_fp32": torch_metrics}
    rows = []
    for key, score in scores.items():
        is_torch = key == reference_run
        if not is_torch and torch_metrics is not None:
            baseline, values, label = "_".join(reference_run), torch_metrics, compared_with
        elif reference is not None:
            baseline, values, label = "reference", reference.metrics, f"the {reference.source} reference"
        else:
            baseline, values, label = "none", {}, ""
        vs_torch = None if is_torch else agreement.get(key)
        gated = gate.gates(key[1])
        found = gate_failures(score.metrics, values, label, vs_torch, gate, compared_with) if gated else []
        found += (failures or {}).get(key, [])  # e.g. an imported graph that is not its PyTorch model
        rows.append(AccuracyRow(
            backend=key[0], precision=key[1], metrics=score.metrics, reference=references,
            baseline=baseline, gate=gate.keep, min_agreement=None if is_torch else gate.min_agreement,
            gate_passed=not found, gated=gated, failures=found, vs_torch=vs_torch,
            breakdown=score.breakdown,
        ))
    return rows
