import numpy as np
import pytest

from encoderzoo.scoring import Gate, Reference, accuracy_rows, agreement_of, gate_passes, output_drift
from encoderzoo.tasks.base import Score

TORCH, ORT = ("torch", "fp32"), ("onnxruntime", "fp32")
GATE = Gate(keep=0.99, min_agreement=0.95)


def test_gate_boundary() -> None:
    assert gate_passes(0.99, 1.0, 0.99)
    assert gate_passes(0.8876 * 0.99, 0.8876, 0.99)  # exactly at the gate, despite rounding
    assert not gate_passes(0.9899, 1.0, 0.99)
    assert gate_passes(0.0, 0.9, 0.0)


def rows_by_backend(scores: dict, reference: Reference | None, agreement: dict | None = None,  # type: ignore[type-arg]
                    gate: Gate = GATE) -> dict:  # type: ignore[type-arg]
    rows = accuracy_rows(scores, agreement or {}, reference=reference, gate=gate)
    return {(r.backend, r.precision): r for r in rows}


def test_torch_is_gated_on_the_reference_and_others_on_torch() -> None:
    scores = {TORCH: Score({"accuracy": 0.90}), ORT: Score({"accuracy": 0.892})}
    agreement = {ORT: {"agreement": 0.98, "max_abs_diff": 0.01}}
    rows = rows_by_backend(scores, Reference({"accuracy": 0.92}, "published"), agreement)
    torch, ort = rows[TORCH], rows[ORT]
    assert (torch.baseline, torch.gate_passed) == ("reference", False)  # 0.90 < 0.99 x 0.92
    assert torch.failures == ["accuracy 90.00 < 99 % of the published reference's 92.00"]
    assert (ort.baseline, ort.gate_passed) == ("torch_fp32", True)  # 0.892 >= 0.99 x 0.90 = 0.891
    assert ort.reference == {"reference": {"accuracy": 0.92}, "source": "published",
                             "torch_fp32": {"accuracy": 0.90}}
    assert torch.vs_torch is None and ort.vs_torch == {"agreement": 0.98, "max_abs_diff": 0.01}


def test_a_better_metric_does_not_pass_a_graph_that_disagrees_with_torch() -> None:
    """A graph of another model may score higher; it is still not this model."""
    scores = {TORCH: Score({"accuracy": 0.80}), ORT: Score({"accuracy": 0.90})}
    rows = rows_by_backend(scores, None, {ORT: {"agreement": 0.0, "max_abs_diff": 4.2}})
    assert not rows[ORT].gate_passed
    assert rows[ORT].failures == ["agreement with torch fp32 0.00 % < 95 %"]
    at_floor = rows_by_backend(scores, None, {ORT: {"agreement": 0.95, "max_abs_diff": 0.1}})
    assert at_floor[ORT].gate_passed


def test_without_a_reference_torch_fp32_is_the_reference() -> None:
    rows = rows_by_backend({TORCH: Score({"accuracy": 0.2})}, None)
    assert (rows[TORCH].baseline, rows[TORCH].gate_passed, rows[TORCH].failures) == ("none", True, [])


def test_without_torch_everything_is_gated_on_the_reference() -> None:
    rows = rows_by_backend({ORT: Score({"accuracy": 0.5})}, Reference({"accuracy": 0.92}, "--reference"))
    assert rows[ORT].baseline == "reference" and not rows[ORT].gate_passed


def test_every_split_must_pass() -> None:
    reference = Reference({"matched.accuracy": 0.905, "mismatched.accuracy": 0.905}, "published")
    scores = {TORCH: Score({"matched.accuracy": 0.91, "mismatched.accuracy": 0.85})}
    row = rows_by_backend(scores, reference)[TORCH]
    assert not row.gate_passed and len(row.failures) == 1 and row.failures[0].startswith("mismatched")


def test_random_weights_are_gated_on_the_agreement_of_fp32_variants_only() -> None:
    int8 = ("onnxruntime", "int8")
    scores = {TORCH: Score({"accuracy": 0.5}), ORT: Score({"accuracy": 0.4}, {"fiction": {"accuracy": 0.4}}),
              int8: Score({"accuracy": 0.1})}
    random = Gate(keep=0.99, min_agreement=0.95, random_weights=True)
    agreement = {ORT: {"agreement": 0.97, "max_abs_diff": 0.1}, int8: {"agreement": 0.0, "max_abs_diff": 0.1}}
    rows = rows_by_backend(scores, None, agreement, random)
    assert (rows[TORCH].baseline, rows[TORCH].gate_passed) == ("none", True)
    assert (rows[ORT].baseline, rows[ORT].gate_passed) == ("torch_fp32", True)  # 0.4 < 0.5: meaningless
    assert rows[ORT].to_json()["breakdown"] == {"fiction": {"accuracy": 0.4}}
    assert (rows[int8].gated, rows[int8].gate_passed, rows[int8].failures) == (False, True, [])
    rows = rows_by_backend(scores, None, {ORT: {"agreement": 0.9, "max_abs_diff": 0.1}}, random)
    assert not rows[ORT].gate_passed


def test_agreement_of() -> None:
    assert agreement_of(["a", "b", "c", "d"], ["a", "b", "x", "d"]) == 0.75
    assert agreement_of([], []) == 1.0


def test_output_drift() -> None:
    a = {"logits": np.array([[1.0, 2.0]]), "extra": np.zeros(1)}
    b = {"logits": np.array([[1.5, 2.0]])}
    assert output_drift(a, b) == pytest.approx(0.5)


def test_sequence_outputs_drift_over_the_real_tokens_only() -> None:
    """Batches padded to other widths leave the fill or pad-token logits beyond a row's tokens."""
    fill = np.finfo(np.float32).min
    a = {"start_logits": np.array([[1.0, 2.0, fill, fill], [1.0, 2.0, 3.0, fill]], dtype=np.float32)}
    b = {"start_logits": np.array([[1.0, 2.5, 7.0, fill], [1.0, 2.0, 3.25, 9.0]], dtype=np.float32)}
    lengths = np.array([2, 3])
    assert output_drift(a, b, lengths=lengths, sequence=frozenset({"start_logits"})) == pytest.approx(0.5)
    assert output_drift(a, b) > 1e30  # every position: the fill against a real logit
