import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from encoderzoo.errors import ArtifactError
from encoderzoo.features import Batching, Features


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
       padding=st.sampled_from(["dynamic", "fixed"]), order=st.sampled_from(["length", "dataset"]),
       buckets=st.sampled_from([(), (4, 8), (2, 5, 16)]))
@settings(max_examples=150, deadline=None)
def test_batches_cover_every_row_once(lengths: list[int], batch: int, padding: str, order: str,
                                      buckets: tuple[int, ...]) -> None:
    if buckets and padding == "fixed":
        return
    features = make_features(lengths)
    batching = Batching(batch, order, padding, buckets)  # type: ignore[arg-type]
    seen: list[int] = []
    for rows, feeds in features.batches(batching):
        longest = max(lengths[r] for r in rows)
        width = feeds["input_ids"].shape[1]
        if padding == "fixed":
            assert width == 16
        elif buckets:
            assert width == min([b for b in buckets if b >= longest] or [16])
        else:
            assert width == longest
        assert len(rows) <= batch
        # nothing real is cut off: every token of every row is inside the batch's width
        assert (feeds["attention_mask"].sum(axis=1) == features.lengths[rows]).all()
        seen.extend(int(r) for r in rows)
    assert sorted(seen) == list(range(len(lengths)))  # each row exactly once
    if order == "dataset":
        assert seen == list(range(len(lengths)))
    else:  # sorted by length, ties in dataset order
        assert seen == sorted(range(len(lengths)), key=lambda r: (lengths[r], r))


@given(lengths=st.lists(st.integers(1, 16), min_size=1, max_size=40), batch=st.integers(1, 9))
@settings(max_examples=60, deadline=None)
def test_outputs_return_in_dataset_order(lengths: list[int], batch: int) -> None:
    from encoderzoo.infer import run_inference

    class Echo:
        """Returns each row's first token id, so the output says which row it came from."""

        name, precision = "echo", "fp32"

        def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            return {"logits": feeds["input_ids"][:, :1].astype(np.float32)}

    features = make_features(lengths)
    outputs = run_inference(Echo(), features, Batching(batch, "length"))  # type: ignore[arg-type]
    np.testing.assert_array_equal(outputs["logits"][:, 0], features.arrays["input_ids"][:, 0])


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


@given(lengths=st.lists(st.integers(1, 16), min_size=1, max_size=40), batch=st.integers(1, 9))
@settings(max_examples=40, deadline=None)
def test_batches_finishing_out_of_order_still_fill_dataset_order(lengths: list[int], batch: int) -> None:
    from encoderzoo.infer import run_inference

    class Shuffled:
        """Keeps every batch in flight and finishes them last first, like an async queue may."""

        name, precision = "shuffled", "fp32"

        def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            return {"logits": feeds["input_ids"][:, :1].astype(np.float32)}

        def run_all(self, batches, sink):  # type: ignore[no-untyped-def]
            for rows, feeds in reversed(list(batches)):
                sink(rows, self.run(feeds))

    features = make_features(lengths)
    outputs = run_inference(Shuffled(), features, Batching(batch, "length"))  # type: ignore[arg-type]
    np.testing.assert_array_equal(outputs["logits"][:, 0], features.arrays["input_ids"][:, 0])


@given(lengths=st.lists(st.integers(1, 16), min_size=1, max_size=60), budget=st.integers(1, 80),
       order=st.sampled_from(["length", "dataset"]), buckets=st.sampled_from([(), (4, 8), (2, 5, 16)]))
@settings(max_examples=150, deadline=None)
def test_token_budget_batches(lengths: list[int], budget: int, order: str, buckets: tuple[int, ...]) -> None:
    features = make_features(lengths)
    batching = Batching(batch_size=2, order=order, buckets=buckets, max_tokens=budget)  # type: ignore[arg-type]
    plan = features.plan(batching)
    seen = [int(r) for rows, _ in plan for r in rows]
    assert sorted(seen) == list(range(len(lengths)))  # each row exactly once
    for i, (rows, width) in enumerate(plan):
        assert width == batching.width(max(lengths[r] for r in rows), 16)
        assert len(rows) * width <= budget or len(rows) == 1  # within budget, or one row alone
        if i + 1 < len(plan):  # greedy: the next row did not fit
            nxt = plan[i + 1][0][0]
            wider = batching.width(max(width, lengths[nxt]), 16)
            assert (len(rows) + 1) * wider > budget


def test_token_budget_puts_short_rows_in_large_batches() -> None:
    features = make_features([2] * 10 + [16] * 4)
    plan = features.plan(Batching(batch_size=1, max_tokens=32))
    assert [(len(rows), width) for rows, width in plan] == [(10, 2), (2, 16), (2, 16)]


def test_widths_round_up_to_a_multiple_within_seq_len() -> None:
    features = make_features([3, 9, 14, 16])
    assert [w for _, w in features.plan(Batching(batch_size=1, multiple=8))] == [8, 16, 16, 16]
    assert [w for _, w in features.plan(Batching(batch_size=1, multiple=5))] == [5, 10, 15, 16]
    bucketed = Batching(batch_size=1, multiple=8, buckets=(4, 16))  # buckets decide the widths
    assert [w for _, w in features.plan(bucketed)] == [4, 16, 16, 16]


def test_a_batch_closes_before_rows_that_would_make_it_mostly_padding() -> None:
    # 20 rows of 16 tokens (320 >= TIGHT_FROM), then 4 of 60: one batch of 24 would be 78 % padding
    features = make_features([16] * 20 + [60] * 4, seq_len=64)
    assert [(len(r), w) for r, w in features.plan(Batching(batch_size=32))] == [(20, 16), (4, 60)]
    untight = Batching(batch_size=32, max_padding=0.0)  # the rule off: one batch
    assert [(len(r), w) for r, w in features.plan(untight)] == [(24, 60)]
    # below TIGHT_FROM tokens a batch never closes early (small batches run slower per token)
    assert [len(r) for r, _ in make_features([4] * 20 + [60] * 4, seq_len=64).plan(Batching(32))] == [24]


@given(lengths=st.lists(st.integers(1, 64), min_size=1, max_size=120), batch=st.integers(1, 40))
@settings(max_examples=100, deadline=None)
def test_batches_close_early_only_where_padding_would_pass_the_bound(lengths: list[int], batch: int) -> None:
    from encoderzoo.features import TIGHT_FROM

    features = make_features(lengths, seq_len=64)
    batching = Batching(batch_size=batch)
    plan = features.plan(batching)
    assert sorted(int(r) for rows, _ in plan for r in rows) == list(range(len(lengths)))
    for (rows, width), (following, _) in itertools.pairwise(plan):
        if len(rows) == batch:
            continue
        joined = [*rows, following[0]]  # the row it closed before
        wider = max(lengths[r] for r in joined)
        assert wider > width and len(rows) * width >= TIGHT_FROM
        padding = len(joined) * wider - sum(lengths[r] for r in joined)
        assert padding > batching.max_padding * len(joined) * wider
