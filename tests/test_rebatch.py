"""The measured batch-invariance check (encoderzoo.rebatch) and what the verdict makes of it: a
runtime that computes one width wrongly for a row run alone — as OpenVINO's int8 IR with bf16
float layers did on a Xeon with AMX at exactly 32 tokens — is caught and not deployed."""

from typing import Any

import numpy as np

from encoderzoo.features import Batching, Features
from encoderzoo.rebatch import TOLERANCE, Collector, measure, merged, sample_rows
from encoderzoo.session import Session
from encoderzoo.verdict import verdict


class Summing:
    """A backend whose logits are sums of a row's real tokens; `wrong_width` (batch 1 only)
    gives 0 instead, a shape-dependent kernel bug."""

    name, precision = "fake", "int8"

    def __init__(self, wrong_width: int | None = None) -> None:
        self.wrong_width = wrong_width

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ids, mask = feeds["input_ids"], feeds["attention_mask"]
        total = (ids * mask).sum(axis=1, dtype=np.float64) / 1000.0
        if len(ids) == 1 and ids.shape[1] == self.wrong_width:
            total = total * 0.0
        return {"logits": np.stack([total, -total], axis=1).astype(np.float32)}


def features(lengths: list[int], width: int = 40) -> Features:
    ids = np.zeros((len(lengths), width), np.int64)
    for row, length in enumerate(lengths):
        ids[row, :length] = np.arange(1, length + 1) * 7 + row
    arrays = {"input_ids": ids, "attention_mask": (ids > 0).astype(np.int64)}
    return Features(np.array([str(i) for i in range(len(lengths))]), arrays, np.array(lengths, np.int32))


def check(backend: Any, data: Features) -> dict[str, Any]:
    session = Session(backend, Batching(8))
    rows = np.arange(len(data))
    together = Collector(sample_rows(data, rows))
    session.run(data, rows=rows, on_batch=together, progress=False)
    assert set(together.seen) == set(sample_rows(data, rows).tolist())
    return measure(session, data, together.seen)


def test_one_row_per_width_spread_from_shortest_to_longest() -> None:
    data = features([5, 5, 7, 9, 9, 9, 30, 2])
    assert sample_rows(data, np.arange(8)).tolist() == [0, 2, 3, 6, 7]  # first row of each width
    assert sample_rows(data, np.arange(8), count=2).tolist() == [6, 7]  # the shortest and the longest
    assert sample_rows(data, np.array([1, 4, 6])).tolist() == [1, 4, 6]  # only rows the pass ran


def test_a_right_backend_passes_and_a_wrong_width_alone_is_caught() -> None:
    lengths = [3 + (i * 7) % 30 for i in range(40)]
    right = check(Summing(), features(lengths))
    assert right["within"] and right["max_abs_diff"] == 0.0 and right["rows"] == len(set(lengths))
    assert 32 in lengths
    wrong = check(Summing(wrong_width=32), features(lengths))
    assert not wrong["within"] and wrong["relative"] > TOLERANCE
    # checked in parts (a fresh session each), judged as one
    both = merged([right, wrong])
    assert both["rows"] == 2 * right["rows"] and both["relative"] == wrong["relative"] and not both["within"]
    assert merged([right, right])["within"]


def test_the_verdict_passes_over_a_variant_its_check_caught() -> None:
    accuracy = [{"backend": b, "precision": p, "gate_passed": True, "metrics": {"accuracy": 0.9},
                 "vs_torch": {"agreement": 1.0}} for b, p in (("openvino", "int8"), ("openvino", "fp32"))]
    caught = {"rows": 52, "max_abs_diff": 0.48, "relative": 0.17, "within": False, "tolerance": TOLERANCE}
    fine = {"rows": 52, "max_abs_diff": 0.0, "relative": 0.0, "within": True, "tolerance": TOLERANCE}
    runs = [{"backend": "openvino", "precision": "int8", "windows": 872, "timing": {"pass_s": 0.5},
             "batch_invariant": False, "rebatch": caught},
            {"backend": "openvino", "precision": "fp32", "windows": 872, "timing": {"pass_s": 2.0},
             "batch_invariant": True, "rebatch": fine}]
    chosen = verdict(accuracy, runs, "runs/demo")
    assert chosen is not None and chosen["variant"] == "openvino:fp32" and chosen["rebatch"] == fine
    assert chosen["passed_over"] == ["openvino:int8 (rows run alone moved by 0.17 of its largest output "
                                     "on this machine)"]
