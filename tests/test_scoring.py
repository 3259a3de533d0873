import numpy as np
import pytest

from encoderzoo.scoring import accuracy_rows, gate_passes, output_drift


def test_gate_boundary() -> None:
    assert gate_passes(0.99, 1.0, 0.99)
    assert gate_passes(0.8876 * 0.99, 0.8876, 0.99)  # exactly at the gate, despite rounding
    assert not gate_passes(0.9899, 1.0, 0.99)
    assert gate_passes(0.0, 0.9, 0.0)


def test_torch_is_gated_on_the_recipe_and_others_on_torch() -> None:
    results = {("torch", "fp32"): {"accuracy": 0.90}, ("onnxruntime", "fp32"): {"accuracy": 0.892}}
    agreement = {("onnxruntime", "fp32"): {"agreement": 0.98, "max_abs_diff": 0.01}}
    rows = {(r.backend, r.precision): r for r in accuracy_rows(
        results, agreement, metric="accuracy", recipe_reference=0.92, gate=0.99)}
    torch, ort = rows[("torch", "fp32")], rows[("onnxruntime", "fp32")]
    assert (torch.baseline, torch.gate_passed) == ("recipe", False)  # 0.90 < 0.99 x 0.92
    assert (ort.baseline, ort.gate_passed) == ("torch_fp32", True)  # 0.892 >= 0.99 x 0.90 = 0.891
    assert ort.reference == {"recipe": 0.92, "torch_fp32": 0.90}
    assert torch.vs_torch is None and ort.vs_torch == {"agreement": 0.98, "max_abs_diff": 0.01}


def test_without_torch_everything_is_gated_on_the_recipe() -> None:
    rows = accuracy_rows({("onnxruntime", "fp32"): {"accuracy": 0.5}}, {},
                         metric="accuracy", recipe_reference=0.92, gate=0.99)
    assert rows[0].baseline == "recipe" and not rows[0].gate_passed


def test_output_drift() -> None:
    a = {"logits": np.array([[1.0, 2.0]]), "extra": np.zeros(1)}
    b = {"logits": np.array([[1.5, 2.0]])}
    assert output_drift(a, b) == pytest.approx(0.5)
