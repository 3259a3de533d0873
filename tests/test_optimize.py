"""The graph optimizer runs bounded in time and memory; when it overruns, the chain goes on
with the unfused graph and says so."""

from pathlib import Path

import pytest

from encoderzoo.config import RunConfig
from encoderzoo.context import RunContext
from encoderzoo.optimize import optimize_onnx
from encoderzoo.stages import infer, prepare, report, score
from tests.conftest import SST2_DEV


@pytest.fixture(scope="module")
def exported(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> RunContext:
    config = RunConfig(recipe="bert-base-cased-sst2", out=tmp_path_factory.mktemp("run"),
                       checkpoint=str(tiny_bert), data=(str(SST2_DEV),), limit=8)
    ctx = RunContext(config)
    prepare.run(ctx)
    ctx.store.get("onnx")
    return ctx


def test_overrun_falls_back_and_leaves_nothing_behind(exported: RunContext, tmp_path: Path) -> None:
    dst = tmp_path / "opt.onnx"
    result = optimize_onnx(exported.store.files("onnx")[0], dst, model_type="bert",
                           config=exported.source.config,
                           timeout_s=0.05)
    assert (result.fused, result.reason) == (False, "timed out after 0.05 s")
    assert list(tmp_path.iterdir()) == []


def test_memory_limit_failure_falls_back(exported: RunContext, tmp_path: Path) -> None:
    result = optimize_onnx(exported.store.files("onnx")[0], tmp_path / "opt.onnx", model_type="bert",
                           config=exported.source.config, memory_limit=64 << 20)
    assert not result.fused and "failed within 0.1 GiB of address space" in (result.reason or "")
    assert list(tmp_path.iterdir()) == []


def test_the_pipeline_runs_the_unfused_graph_and_reports_why(exported: RunContext) -> None:
    from dataclasses import replace

    ctx = RunContext(replace(exported.config, optimize_timeout=0.05), exported.ws)
    ctx.store.get("onnx-fused")
    info = ctx.store.record("onnx-fused")
    assert info["fused"] is False and info["file"] == "model.onnx"
    assert ctx.store.opened("onnx-fused") == ctx.store.files("onnx")[0]
    infer.run(ctx)
    score.run(ctx)
    made = report.run(ctx)
    assert made["optimize"]["reason"] == "timed out after 0.05 s"
    text = ctx.ws.report_md.read_text()
    expected = "ONNX Runtime's optimizer timed out after 0.05 s; the backends run the unfused `model.onnx`"
    assert expected in text
