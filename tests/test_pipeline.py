"""Every registered recipe runs end to end on a tiny random model of its family."""

import json
from pathlib import Path

import pytest

from encoderzoo.config import RunConfig
from encoderzoo.pipeline import Pipeline, run
from encoderzoo.recipes import RECIPES
from encoderzoo.tasks import get_task
from tests.conftest import MNLI_MATCHED, SQUAD_DEV, SST2_DEV, build_tiny_bert

# each task's dev data in ../shared
LOCAL_DATA = {"sst2": SST2_DEV, "mnli": MNLI_MATCHED.parent, "squad": SQUAD_DEV}


@pytest.mark.parametrize("name", list(RECIPES))
def test_recipe_runs_end_to_end_on_a_tiny_model(
    name: str, family_tokenizers: dict[str, Path], tmp_path: Path
) -> None:
    recipe = RECIPES[name]
    assert recipe.family in family_tokenizers, f"no test tokenizer for family {recipe.family!r}"
    assert recipe.task in LOCAL_DATA, f"no local data for task {recipe.task!r}"
    config = RunConfig(
        recipe=name, out=tmp_path / "run", random_weights="tiny",
        tokenizer=str(family_tokenizers[recipe.family]), data=(str(LOCAL_DATA[recipe.task]),),
        limit=24, batch_size=5, batch_sizes=(1, 3), seq_lens=(16,), warmup=0, min_runs=1,
        min_seconds=0, calibration_size=16,  # the recipe's own gate
    )
    runs = Pipeline(config).runs  # every backend at its default precisions on this machine
    passed, report_md = run(config)
    assert passed and report_md.is_file()
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["recipe"]["name"] == name and report["checkpoint"]["random_weights"] == "tiny"
    assert report["data"]["examples"] == 24 * len(recipe.data)
    rows = {(r["backend"], r["precision"]): r for r in report["accuracy"]}
    assert set(rows) == set(runs)
    assert rows[("torch", "fp32")]["baseline"] == "none"
    for key in (("onnxruntime", "fp32"), ("openvino", "fp32")):  # gated: they must agree with torch
        assert set(recipe.reference) <= set(rows[key]["metrics"])  # every split is scored
        assert rows[key]["baseline"] == "torch_fp32" and rows[key]["vs_torch"]["agreement"] == 1.0
        assert rows[key]["gated"] and rows[key]["min_agreement"] == get_task(recipe.task).agreement_floor
    # random weights have no margins for a reduced precision to keep: shown, not gated
    assert all(not r["gated"] for key, r in rows.items() if key[1] != "fp32")
    assert len(report["benchmark"]) == 2 * len(runs)
    assert "Random weights (tiny)" in report_md.read_text()


def test_artifacts_are_reused_for_the_same_weights_and_rebuilt_for_others(
    tiny_bert: Path, tmp_path: Path
) -> None:
    config = RunConfig(recipe="bert-base-cased-sst2", out=tmp_path / "run", checkpoint=str(tiny_bert),
                       data=(str(SST2_DEV),), limit=8, calibration_size=8)
    pipeline = Pipeline(config)
    pipeline.prepare()
    first = pipeline.export()
    pipeline.optimize()
    int8 = pipeline.artifact("onnx-int8")
    assert pipeline.graph() == pipeline.ws.onnx_optimized and int8 is not None
    stamp = pipeline.ws.onnx.stat().st_mtime_ns, int8.stat().st_mtime_ns

    again = Pipeline(config)  # same bytes, same options: nothing is rebuilt
    assert again.export() == first
    assert again.optimize()["key"] == again.optimize_key
    assert again.artifact("onnx-int8") == int8
    assert (again.ws.onnx.stat().st_mtime_ns, int8.stat().st_mtime_ns) == stamp

    # the same folder name with other weights (one value changed): every artifact is rebuilt
    other = build_tiny_bert(tmp_path / "other", seed=1)
    changed = Pipeline(RunConfig(recipe="bert-base-cased-sst2", out=tmp_path / "run",
                                 checkpoint=str(other), data=(str(SST2_DEV),), limit=8, calibration_size=8))
    assert changed.export_key != again.export_key
    changed.prepare()  # the data prepared here belong to the first checkpoint: prepared again
    changed.export()
    assert changed.ws.onnx.stat().st_mtime_ns != stamp[0]
    assert changed.graph() == changed.ws.onnx  # the fused graph of the old export is gone
    changed.optimize()
    assert changed.artifact("onnx-int8") is not None
    assert int8.stat().st_mtime_ns != stamp[1]

    # an option that shapes the artifact (the optimizer's time limit) rebuilds only that one
    slower = Pipeline(RunConfig(recipe="bert-base-cased-sst2", out=tmp_path / "run", checkpoint=str(other),
                                data=(str(SST2_DEV),), limit=8, optimize_timeout=600))
    assert slower.export_key == changed.export_key and slower.optimize_key != changed.optimize_key
