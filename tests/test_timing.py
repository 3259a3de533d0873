"""Every figure measures what its label says: the end-to-end rate is a warm pass timed in the
process that ran inference (setup and first batch apart), never one copied from another run."""

from __future__ import annotations

from pathlib import Path

import pytest

from encoderzoo.config import RunConfig
from encoderzoo.context import RunContext
from encoderzoo.fileio import read_json
from encoderzoo.stages import infer, prepare, report
from tests.conftest import SST2_DEV


@pytest.mark.slow
def test_the_end_to_end_rate_is_a_warm_pass_with_setup_apart(tmp_path: Path) -> None:
    config = RunConfig(recipe="demo", out=tmp_path / "run", data=(str(SST2_DEV),), limit=48, batch_size=8,
                       backends=("torch:fp32", "onnxruntime:int8"), e2e_runs=2, e2e_rows=40, bench=False)
    ctx = RunContext(config)
    prepare.run(ctx)
    runs = {r["backend"]: r for r in infer.run(ctx)["runs"]}
    for run in runs.values():
        timing = run["timing"]
        assert timing["setup_s"] >= 0 and 0 < timing["first_batch_s"] <= timing["pass_s"]
        warm = timing["warm"]
        assert (warm["runs"], warm["rows"], len(warm["seconds"])) == (2, 40, 2)  # rows spread over 48
        assert warm["rows_per_s"] == warm["rows"] / warm["median_s"]
    assert runs["onnxruntime"]["timing"]["build_s"] > 0  # quantizing is not part of inference's figures
    report.run(ctx)
    text = ctx.ws.report_md.read_text()
    assert "| torch | fp32 | " in text and "| 2 × 40 |" in text

    again = RunContext(config)  # same model, data and batching: the outputs are reused, not timed again
    reused = infer.run(again)["runs"]
    assert all(r["reused"] for r in reused)
    report.run(again)
    assert "| onnxruntime | int8 | reused outputs: not timed in this run |" in again.ws.report_md.read_text()
    assert read_json(again.ws.infer_json)["runs"][0]["reused"] is True
