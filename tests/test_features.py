from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from encoderzoo.errors import ArtifactError
from encoderzoo.features import Features


def make_features(lengths: list[int], seq_len: int = 16) -> Features:
    n = len(lengths)
    ids = np.zeros((n, seq_len), dtype=np.int64)
    for i, length in enumerate(lengths):
        ids[i, :length] = np.arange(1, length + 1) + 100 * i
    return Features(
        example_ids=np.array([f"ex{i}" for i in range(n)]),
        arrays={"input_ids": ids, "attention_mask": (ids > 0).astype(np.int64)},
        lengths=np.array(lengths, dtype=np.int32),
    )


@given(lengths=st.lists(st.integers(1, 16), min_size=1, max_size=60), batch=st.integers(1, 17),
       padding=st.sampled_from(["dynamic", "fixed"]))
@settings(max_examples=60, deadline=None)
def test_batches_cover_every_row_once_in_order(lengths: list[int], batch: int, padding: str) -> None:
    features = make_features(lengths)
    seen = []
    for rows, feeds in features.batches(batch, padding):  # type: ignore[arg-type]
        width = feeds["input_ids"].shape[1]
        expected_width = max(lengths[rows]) if padding == "dynamic" else 16
        assert width == expected_width
        assert len(feeds["input_ids"]) <= batch
        # nothing real is cut off: every token of every row is inside the batch's width
        assert (feeds["attention_mask"].sum(axis=1) == features.lengths[rows]).all()
        seen.extend(range(rows.start, rows.stop))
    assert seen == list(range(len(lengths)))


def test_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="expected"):
        Features(np.array(["a", "b"]), {"input_ids": np.zeros((3, 4), np.int64)}, np.ones(2, np.int32))


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    features = make_features([3, 16, 1])
    features.save(tmp_path / "f.npz")
    loaded = Features.load(tmp_path / "f.npz")
    assert loaded.example_ids.tolist() == ["ex0", "ex1", "ex2"]
    assert loaded.input_names == ("input_ids", "attention_mask")
    np.testing.assert_array_equal(loaded.arrays["input_ids"], features.arrays["input_ids"])
    assert [p.name for p in tmp_path.iterdir()] == ["f.npz"]  # no temporary file left


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="run `encoderzoo prepare` first"):
        Features.load(tmp_path / "missing.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ArtifactError, match="unreadable features file"):
        Features.load(tmp_path / "bad.npz")
