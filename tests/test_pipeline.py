"""Every registered recipe runs end to end on a tiny random model of its family."""

import json
from pathlib import Path

import pytest

from encoderzoo.config import RunConfig
from encoderzoo.pipeline import run
from encoderzoo.recipes import RECIPES
from encoderzoo.sources import resolve_data
from tests.conftest import SST2_DEV, build_tiny_bert

TINY_BUILDERS = {"bert": build_tiny_bert}  # one per family: a new family must add its builder
LOCAL_DATA = {"sst2": SST2_DEV}  # a copy of each task's dev data in ../shared


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_runs_end_to_end_on_a_tiny_model(name: str, tmp_path: Path) -> None:
    recipe = RECIPES[name]
    assert recipe.family in TINY_BUILDERS, f"no tiny model for family {recipe.family!r}"
    checkpoint = TINY_BUILDERS[recipe.family](tmp_path / "ckpt")
    data = resolve_data(recipe, None, tmp_path) if recipe.data.packaged else LOCAL_DATA[recipe.task]
    if not Path(data).exists():
        pytest.skip(f"{data} is not available")
    config = RunConfig(
        recipe=name, out=tmp_path / "run", checkpoint=str(checkpoint), data=str(data), limit=24,
        batch_size=5, batch_sizes=(1, 3), seq_lens=(16,), warmup=0, min_runs=1, min_seconds=0,
        gate=0.0,
    )
    passed, report_md = run(config)
    assert passed and report_md.is_file()
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["recipe"]["name"] == name and report["data"]["examples"] == 24
    ort = next(r for r in report["accuracy"] if r["backend"] == "onnxruntime")
    assert ort["vs_torch"]["agreement"] == 1.0
    assert len(report["benchmark"]) == 4


def test_a_new_export_drops_the_graph_optimized_from_the_old_one(tiny_bert: Path, tmp_path: Path) -> None:
    from encoderzoo.pipeline import Pipeline

    config = RunConfig(recipe="bert-base-cased-sst2", out=tmp_path, checkpoint=str(tiny_bert),
                       data=str(SST2_DEV), limit=8)
    pipeline = Pipeline(config)
    pipeline.prepare()
    pipeline.export()
    pipeline.optimize()
    assert pipeline.ws.graph() == pipeline.ws.onnx_optimized
    pipeline.export()
    assert pipeline.ws.graph() == pipeline.ws.onnx and not pipeline.ws.optimize_json.exists()
