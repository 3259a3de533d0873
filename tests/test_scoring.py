import numpy as np
import pytest

from encoderzoo.scoring import accuracy_rows, gate_passes, output_drift
from encoderzoo.tasks.base import Score

TORCH, ORT = ("torch", "fp32"), ("onnxruntime", "fp32")


def test_gate_boundary() -> None:
    assert gate_passes(0.99, 1.0, 0.99)
    assert gate_passes(0.8876 * 0.99, 0.8876, 0.99)  # exactly at the gate, despite rounding
    assert not gate_passes(0.9899, 1.0, 0.99)
    assert gate_passes(0.0, 0.9, 0.0)


def rows_by_backend(scores: dict, reference: dict | None, agreement: dict | None = None) -> dict:  # type: ignore[type-arg]
    rows = accuracy_rows(scores, agreement or {}, recipe_reference=reference, gate=0.99)
    return {(r.backend, r.precision): r for r in rows}


def test_torch_is_gated_on_the_recipe_and_others_on_torch() -> None:
    scores = {TORCH: Score({"accuracy": 0.90}), ORT: Score({"accuracy": 0.892})}
    agreement = {ORT: {"agreement": 0.98, "max_abs_diff": 0.01}}
    rows = rows_by_backend(scores, {"accuracy": 0.92}, agreement)
    torch, ort = rows[TORCH], rows[ORT]
    assert (torch.baseline, torch.gate_passed) == ("recipe", False)  # 0.90 < 0.99 x 0.92
    assert (ort.baseline, ort.gate_passed) == ("torch_fp32", True)  # 0.892 >= 0.99 x 0.90 = 0.891
    assert ort.reference == {"recipe": {"accuracy": 0.92}, "torch_fp32": {"accuracy": 0.90}}
    assert torch.vs_torch is None and ort.vs_torch == {"agreement": 0.98, "max_abs_diff": 0.01}


def test_without_torch_everything_is_gated_on_the_recipe() -> None:
    rows = rows_by_backend({ORT: Score({"accuracy": 0.5})}, {"accuracy": 0.92})
    assert rows[ORT].baseline == "recipe" and not rows[ORT].gate_passed


def test_every_split_must_pass() -> None:
    reference = {"matched.accuracy": 0.905, "mismatched.accuracy": 0.905}
    scores = {TORCH: Score({"matched.accuracy": 0.91, "mismatched.accuracy": 0.85})}
    assert not rows_by_backend(scores, reference)[TORCH].gate_passed  # mismatched misses the gate


def test_random_weights_have_no_published_baseline() -> None:
    scores = {TORCH: Score({"accuracy": 0.5}), ORT: Score({"accuracy": 0.4}, {"fiction": {"accuracy": 0.4}})}
    rows = rows_by_backend(scores, None)
    assert (rows[TORCH].baseline, rows[TORCH].gate_passed) == ("none", True)
    assert (rows[ORT].baseline, rows[ORT].gate_passed) == ("torch_fp32", False)  # still vs torch
    assert rows[ORT].to_json()["breakdown"] == {"fiction": {"accuracy": 0.4}}


def test_output_drift() -> None:
    a = {"logits": np.array([[1.0, 2.0]]), "extra": np.zeros(1)}
    b = {"logits": np.array([[1.5, 2.0]])}
    assert output_drift(a, b) == pytest.approx(0.5)
