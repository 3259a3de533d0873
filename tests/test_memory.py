"""A run within its memory: each backend is closed and dropped before the next one loads, NNCF
calibrates one row per item, the report records the run's peak resident memory."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from encoderzoo import inference
from encoderzoo import quantize as quantize_lib
from encoderzoo.artifacts import ARTIFACTS
from encoderzoo.backends.openvino_backend import OpenVinoBackend
from encoderzoo.builders import quantized
from encoderzoo.config import RunConfig
from encoderzoo.context import RunContext
from encoderzoo.fileio import read_json
from encoderzoo.stages import infer, prepare, report, score
from tests.conftest import SST2_DEV

BACKENDS = ("torch:fp32", "onnxruntime:fp32", "openvino:fp32")


def test_each_backend_is_closed_before_the_next_one_loads(
    tiny_bert: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = RunContext(RunConfig(recipe="bert-base-cased-sst2", out=tmp_path / "run", checkpoint=str(tiny_bert),
                               data=(str(SST2_DEV),), limit=12, backends=BACKENDS, optimize=False,
                               bench=False, e2e_runs=1))
    prepare.run(ctx)
    ctx.store.get("onnx")
    open_when_loading: list[list[tuple[str, str]]] = []
    closed: list[Any] = []
    original_open, original_close = inference.open_run, OpenVinoBackend.close

    def spy_open(c: RunContext, run: Any) -> Any:
        if run not in c.backends:
            open_when_loading.append(sorted(c.backends))
        return original_open(c, run)

    def spy_close(self: OpenVinoBackend) -> None:
        original_close(self)
        closed.append(self)

    monkeypatch.setattr(inference, "open_run", spy_open)
    monkeypatch.setattr(OpenVinoBackend, "close", spy_close)
    infer.run(ctx)
    assert open_when_loading == [[]] * len(BACKENDS)  # nothing else open when a backend loads
    assert ctx.backends == {}
    # the pass's session, then the one encoderzoo.rebatch's check runs its single rows in (12 rows: one)
    assert len(closed) == 2 and all(c._compiled is None and c._queue is None for c in closed)


def test_nncf_calibrates_one_row_per_item(
    tiny_bert: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NNCF's peak grows with the size of a calibration item (base BERT on 384-token SQuAD windows:
    2.0 GB with single rows, 4.6 GB with batches of 8), not with their number."""
    ctx = RunContext(RunConfig(recipe="bert-base-cased-sst2", out=tmp_path / "run", checkpoint=str(tiny_bert),
                               data=(str(SST2_DEV),), limit=20, backends=("openvino:int8",),
                               calibration_size=10, optimize=False))
    prepare.run(ctx)
    ctx.store.get("onnx")
    seen: list[list[int]] = []
    original = quantize_lib.openvino_int8

    def spy(src: Path, dst: Path, **kw: Any) -> dict[str, Any]:
        seen.append([len(item["input_ids"]) for item in kw["calibration"]])
        return original(src, dst, **kw)

    kind = ARTIFACTS["openvino-int8"]
    monkeypatch.setitem(ARTIFACTS._entries, kind.name, dataclasses.replace(kind, build=quantized(spy)))
    ctx.store.build("openvino-int8")
    assert seen == [[1] * 10]


def test_the_report_records_the_runs_peak_memory(tiny_bert: Path, tmp_path: Path) -> None:
    ctx = RunContext(RunConfig(recipe="bert-base-cased-sst2", out=tmp_path / "run", checkpoint=str(tiny_bert),
                               data=(str(SST2_DEV),), limit=8, backends=("torch:fp32",), optimize=False,
                               bench=False))
    for stage in (prepare, infer, score, report):
        stage.run(ctx)
    peak = read_json(ctx.ws.report_json)["peak_memory"]
    assert 100 < peak["process_mib"] < 24 * 1024
    assert "peak resident memory" in ctx.ws.report_md.read_text()
