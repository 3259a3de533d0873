"""Every registered recipe runs end to end on a tiny random model of its family."""

import json
from pathlib import Path

import pytest

from encoderzoo.config import RunConfig
from encoderzoo.pipeline import Pipeline, run
from encoderzoo.recipes import RECIPES
from tests.conftest import MNLI_MATCHED, SQUAD_DEV, SST2_DEV

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
        min_seconds=0, calibration_size=16,
        gate=0.0,  # random tiny models: reduced precisions may flip a few near-ties
    )
    passed, report_md = run(config)  # every backend at its default precisions
    assert passed and report_md.is_file()
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["recipe"]["name"] == name and report["checkpoint"]["random_weights"] == "tiny"
    assert report["data"]["examples"] == 24 * len(recipe.data)
    rows = {(r["backend"], r["precision"]): r for r in report["accuracy"]}
    assert set(rows) == set(config.backend_runs)
    assert rows[("torch", "fp32")]["baseline"] == "none"
    for key in (("onnxruntime", "fp32"), ("openvino", "fp32")):
        assert set(recipe.reference) <= set(rows[key]["metrics"])  # every split is scored
        assert rows[key]["baseline"] == "torch_fp32" and rows[key]["vs_torch"]["agreement"] == 1.0
    assert len(report["benchmark"]) == 2 * len(config.backend_runs)
    assert "Random weights (tiny)" in report_md.read_text()


def test_a_new_export_drops_the_graph_optimized_from_the_old_one(tiny_bert: Path, tmp_path: Path) -> None:
    config = RunConfig(recipe="bert-base-cased-sst2", out=tmp_path, checkpoint=str(tiny_bert),
                       data=(str(SST2_DEV),), limit=8)
    pipeline = Pipeline(config)
    pipeline.prepare()
    pipeline.export()
    pipeline.optimize()
    assert pipeline.ws.graph() == pipeline.ws.onnx_optimized
    pipeline.export()
    assert pipeline.ws.graph() == pipeline.ws.onnx and not pipeline.ws.optimize_json.exists()
