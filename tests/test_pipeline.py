"""Every seed recipe runs end to end on a tiny random model of its family, with every backend at
its default precisions (the task presets run with every family in test_families.py)."""

import json
from pathlib import Path

import pytest

from encoderzoo.config import RunConfig
from encoderzoo.context import RunContext
from encoderzoo.pipeline import run
from encoderzoo.recipes import RECIPES
from encoderzoo.stages import prepare
from encoderzoo.tasks import get_task
from tests.conftest import LOCAL_DATA, MNLI_MATCHED, SST2_DEV, build_tiny_bert


@pytest.mark.slow
@pytest.mark.parametrize("name", [r.name for r in RECIPES.values() if r.kind == "seed"])
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
    runs = RunContext(config).runs  # every backend at its default precisions on this machine
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
    tiny_bert: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = RunConfig(recipe="bert-base-cased-sst2", out=tmp_path / "run", checkpoint=str(tiny_bert),
                       data=(str(SST2_DEV),), limit=8, calibration_size=8)
    ctx = RunContext(config)
    onnx, fused = ctx.store.files("onnx")[0], ctx.store.files("onnx-fused")[0]
    prepare.run(ctx)
    int8 = ctx.store.get("onnx-int8")  # built with the graphs it is made from
    first = ctx.store.record("onnx")
    assert ctx.store.opened("onnx-fused") == fused and int8 is not None
    stamp = onnx.stat().st_mtime_ns, int8.stat().st_mtime_ns

    again = RunContext(config)  # same bytes, same options: nothing is rebuilt
    assert again.store.get("onnx") == onnx and again.store.record("onnx") == first
    assert again.store.get("onnx-fused") == fused
    assert again.store.recorded("onnx-fused", "key") == again.store.build_key("onnx-fused")
    assert again.store.get("onnx-int8") == int8
    assert (onnx.stat().st_mtime_ns, int8.stat().st_mtime_ns) == stamp

    # the same folder name with other weights (one value changed): every artifact is rebuilt
    other = build_tiny_bert(tmp_path / "other", seed=1)
    changed = RunContext(RunConfig(recipe="bert-base-cased-sst2", out=tmp_path / "run",
                                   checkpoint=str(other), data=(str(SST2_DEV),), limit=8, calibration_size=8))
    assert changed.store.build_key("onnx") != again.store.build_key("onnx")
    prepare.run(changed)  # the data prepared here belong to the first checkpoint: prepared again
    changed.store.get("onnx")
    assert onnx.stat().st_mtime_ns != stamp[0]
    assert changed.store.opened("onnx-fused") is None and not fused.exists()  # the old fusion is gone
    assert not int8.exists()  # nor what was quantized from it
    assert changed.store.get("onnx-int8") is not None
    assert int8.stat().st_mtime_ns != stamp[1]

    # an option that shapes the artifact (the optimizer's time limit) rebuilds only that one
    slower = RunContext(RunConfig(recipe="bert-base-cased-sst2", out=tmp_path / "run", checkpoint=str(other),
                                  data=(str(SST2_DEV),), limit=8, optimize_timeout=600))
    assert slower.store.build_key("onnx") == changed.store.build_key("onnx")
    assert slower.store.build_key("onnx-fused") != changed.store.build_key("onnx-fused")

    # a new way of building a kind (its revision) rebuilds what the old way built
    import dataclasses

    from encoderzoo.artifacts import ARTIFACTS

    kind = ARTIFACTS["onnx-int8"]
    before = changed.store.build_key("onnx-int8")
    newer = dataclasses.replace(kind, revision=kind.revision + 1)
    monkeypatch.setitem(ARTIFACTS._entries, "onnx-int8", newer)
    assert changed.store.build_key("onnx-int8") != before and not changed.store.current("onnx-int8")


def test_every_artifact_kind_is_opened_by_a_backend_precision_and_built_by_one_method() -> None:
    """Adding a kind is one registration plus its builder: the registry holds all it needs."""
    from encoderzoo.artifacts import ARTIFACTS
    from encoderzoo.backends import BACKENDS
    from encoderzoo.precision import PRECISIONS

    opened = {spec.artifact(p) for spec in BACKENDS.values() for p in spec.precisions}
    for kind in ARTIFACTS.values():
        assert kind.name in opened, f"no backend opens {kind.name}"
        assert kind.precision in PRECISIONS
        if kind.made_from is not None:
            assert callable(kind.build) and kind.files and kind.made_from in ARTIFACTS


@pytest.mark.slow
def test_a_checkpoint_of_another_family_runs_through_a_task_preset_and_a_seed_preset(
    family_tokenizers: dict[str, Path], tmp_path: Path
) -> None:
    """The family comes from the checkpoint: a RoBERTa model runs through the `sst2` task preset
    and through the BERT seed recipe, where the seed's published score does not apply."""
    import onnx

    from encoderzoo.checkpoints import RANDOM_WEIGHTS_MARKER
    from encoderzoo.families import get_family
    from encoderzoo.random_weights import build_random_checkpoint

    folder = build_random_checkpoint(tmp_path / "roberta", recipe=RECIPES["roberta-base-sst2"],
                                     family=get_family("roberta"), task=get_task("sst2"), size="tiny",
                                     tokenizer=str(family_tokenizers["roberta"]))
    (folder / RANDOM_WEIGHTS_MARKER).unlink()  # a user's checkpoint, as far as encoderzoo can tell
    for name in ("sst2", "bert-base-cased-sst2"):
        out = tmp_path / name
        passed, report_md = run(RunConfig(
            recipe=name, out=out, checkpoint=str(folder), data=(str(SST2_DEV),), limit=16,
            backends=("torch:fp32", "onnxruntime:fp32"), bench=False, e2e_runs=0))
        report = json.loads((out / "report.json").read_text())
        assert passed and report["recipe"]["family"] == "roberta"
        graph = onnx.load(str(out / "model" / "model.onnx"), load_external_data=False)
        assert [i.name for i in graph.graph.input] == ["input_ids", "attention_mask"]  # RoBERTa's
        rows = {r["backend"]: r for r in report["accuracy"]}
        assert rows["torch"]["baseline"] == "none" and rows["onnxruntime"]["vs_torch"]["agreement"] == 1.0
        assert "torch fp32 is the reference" in report_md.read_text()


@pytest.mark.slow
def test_a_bert_mnli_checkpoint_runs_through_the_mnli_preset_and_the_deberta_recipe(tmp_path: Path) -> None:
    """A BERT-type MNLI checkpoint (labels by name) scores matched and mismatched through `mnli`,
    and through the DeBERTa seed recipe with the note that its published score does not apply."""
    folder = build_tiny_bert(tmp_path / "bert-mnli", num_labels=3)
    config = json.loads((folder / "config.json").read_text())
    names = ["contradiction", "neutral", "entailment"]
    config["id2label"] = dict(enumerate(names))
    config["label2id"] = {name: i for i, name in enumerate(names)}
    (folder / "config.json").write_text(json.dumps(config))
    for name in ("mnli", "deberta-v3-base-mnli"):
        out = tmp_path / name
        passed, report_md = run(RunConfig(
            recipe=name, out=out, checkpoint=str(folder), data=(str(MNLI_MATCHED.parent),), limit=12,
            backends=("torch:fp32", "onnxruntime:fp32"), bench=False, e2e_runs=0))
        report = json.loads((out / "report.json").read_text())
        assert passed and report["recipe"]["family"] == "bert"
        rows = {r["backend"]: r for r in report["accuracy"]}
        assert set(rows["onnxruntime"]["metrics"]) >= {"matched.accuracy", "mismatched.accuracy"}
        assert rows["onnxruntime"]["metrics"] == rows["torch"]["metrics"]
        assert rows["onnxruntime"]["vs_torch"]["agreement"] == 1.0 and rows["torch"]["baseline"] == "none"
        assert "No published or recorded reference applies to this checkpoint" in report_md.read_text()
