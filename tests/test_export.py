from pathlib import Path

import numpy as np
import onnx
import pytest

from encoderzoo.assets import asset_path
from encoderzoo.checkpoints import load_model, load_tokenizer, resolve_checkpoint
from encoderzoo.errors import ExportParityError
from encoderzoo.export import check_parity, export_onnx, parity_cases, torch_outputs
from encoderzoo.families import get_family
from encoderzoo.optimize import optimize_onnx
from encoderzoo.recipes import get_recipe
from encoderzoo.tasks import get_task
from tests.conftest import TINY_BERT

SST2, BERT = get_task("sst2"), get_family("bert")
DEMO_DEV = asset_path("demo/data/sst2-dev.tsv")


@pytest.fixture(scope="module")
def exported(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    checkpoint = resolve_checkpoint(str(tiny_bert), get_recipe("bert-base-cased-sst2"))
    examples = SST2.read(DEMO_DEV, limit=10).examples
    features = SST2.encode(examples, load_tokenizer(checkpoint), seq_len=48, input_names=BERT.input_names)
    model = load_model(checkpoint, SST2, attn_implementation="eager")
    path = tmp_path_factory.mktemp("export") / "model.onnx"
    export_onnx(model, features, path, output_axes=SST2.output_axes)
    cases = parity_cases(features)
    expected = [torch_outputs(model, c.feeds, SST2.output_names) for c in cases]
    return checkpoint, path, cases, expected


def test_graph_has_named_dynamic_axes(exported) -> None:  # type: ignore[no-untyped-def]
    _, path, _, _ = exported
    graph = onnx.load(str(path)).graph
    dims = {i.name: [d.dim_param for d in i.type.tensor_type.shape.dim] for i in graph.input}
    assert dims == {name: ["batch", "sequence"] for name in BERT.input_names}
    assert [o.name for o in graph.output] == ["logits"]


def test_parity_on_real_padded_batches_of_other_shapes(exported) -> None:  # type: ignore[no-untyped-def]
    _, path, cases, expected = exported
    shapes = [next(iter(c.feeds.values())).shape for c in cases]
    assert shapes[0][0] == 8 and shapes[1] == (3, 48) and shapes[2][0] == 1
    assert any((c.feeds["attention_mask"] == 0).any() for c in cases)  # padding is exercised
    results = check_parity(path, cases, expected, atol=1e-4)
    assert len(results) == 3 and all(r.passed and r.max_abs_diff < 1e-5 for r in results)


def test_mismatch_is_a_typed_error_naming_output_shape_and_difference(exported) -> None:  # type: ignore[no-untyped-def]
    _, path, cases, expected = exported
    wrong = [{k: v + 0.5 for k, v in e.items()} for e in expected]
    with pytest.raises(ExportParityError) as caught:
        check_parity(path, cases, wrong, atol=1e-4)
    err = caught.value
    assert err.output == "logits" and err.max_abs_diff == pytest.approx(0.5, abs=1e-4)
    assert "output 'logits' [8, 2]" in str(err) and "batch 8 x seq" in str(err)


def test_optimizer_fuses_one_attention_per_layer(exported, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    checkpoint, path, cases, expected = exported
    result = optimize_onnx(path, tmp_path / "opt.onnx", model_type="bert", config=checkpoint.config)
    assert result.fused_ops["Attention"] == TINY_BERT["num_hidden_layers"]
    assert result.fused_ops["SkipLayerNormalization"] == 2 * TINY_BERT["num_hidden_layers"]
    assert all(r.passed for r in check_parity(tmp_path / "opt.onnx", cases, expected, atol=1e-4))
    ops = {n.op_type for n in onnx.load(str(tmp_path / "opt.onnx")).graph.node}
    assert "Attention" in ops and "Softmax" not in ops
    assert np.isfinite(expected[0]["logits"]).all()


def test_parity_cases_round_trip(exported, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from encoderzoo.export import load_parity_cases, save_parity_cases

    _, _, cases, expected = exported
    save_parity_cases(tmp_path / "parity.npz", cases, expected)
    loaded_cases, loaded_expected = load_parity_cases(tmp_path / "parity.npz")
    assert [c.description for c in loaded_cases] == [c.description for c in cases]
    for a, b in zip(loaded_cases, cases, strict=True):
        assert a.feeds.keys() == b.feeds.keys() and all((a.feeds[k] == b.feeds[k]).all() for k in a.feeds)
    assert all((a["logits"] == b["logits"]).all() for a, b in zip(loaded_expected, expected, strict=True))
