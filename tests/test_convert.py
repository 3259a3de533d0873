"""Each converter, on a synthetic checkpoint in the original key layout built from a tiny
config: the converted Hugging Face model's outputs must match the original module's."""

import argparse
import json
import os
import sys
import types
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from encoderzoo.checkpoints import load_model, resolve_checkpoint
from encoderzoo.convert import convert_checkpoint
from encoderzoo.errors import CheckpointError
from encoderzoo.recipes import get_recipe
from encoderzoo.tasks import get_task
from tests.reference_models import (
    ALBERT_CONFIG,
    albert_pytorch_logits,
    albert_pytorch_state,
    fairseq_roberta_logits,
    fairseq_roberta_state,
)


def converted_model(folder: Path, recipe_name: str):  # type: ignore[no-untyped-def]
    """Load the result through encoderzoo's own safe loading path."""
    recipe = get_recipe(recipe_name)
    checkpoint = resolve_checkpoint(str(folder), recipe)
    return checkpoint, load_model(checkpoint, get_task(recipe.task))


def padded_ids(vocab: int, pad: int, first: int | None = None) -> torch.Tensor:
    ids = torch.randint(5, vocab, (3, 12))
    ids[1, 7:] = pad
    ids[2, 3:] = pad
    if first is not None:
        ids[:, 0] = first
    return ids


class FakeMeter:
    """Pickled under fairseq's name, as fairseq stores its training meters in checkpoints."""

    def __init__(self) -> None:
        self.avg = 0.3


def save_with_fairseq_classes(obj: object, path: Path) -> None:
    names = ("fairseq", "fairseq.logging", "fairseq.logging.meters")
    for name in names:
        sys.modules[name] = types.ModuleType(name)
    FakeMeter.__module__, FakeMeter.__qualname__ = "fairseq.logging.meters", "AverageMeter"
    sys.modules["fairseq.logging.meters"].AverageMeter = FakeMeter  # type: ignore[attr-defined]
    try:
        torch.save(obj, path)
    finally:
        for name in names:
            del sys.modules[name]


@pytest.mark.parametrize("stacked", [False, True], ids=["q-k-v", "in_proj"])
def test_fairseq_roberta(tmp_path: Path, stacked: bool) -> None:
    torch.manual_seed(0)
    state = fairseq_roberta_state()
    if stacked:  # older fairseq releases stack q, k, v into in_proj
        for i in range(2):
            layer = f"encoder.sentence_encoder.layers.{i}.self_attn."
            for p in ("weight", "bias"):
                state[f"{layer}in_proj_{p}"] = torch.cat([state.pop(f"{layer}{n}_proj.{p}") for n in "qkv"])
    checkpoint = {"args": argparse.Namespace(encoder_attention_heads=2, activation_fn="gelu"),
                  "model": state, "extra_state": {"metrics": OrderedDict(loss=FakeMeter())}}
    save_with_fairseq_classes(checkpoint, tmp_path / "checkpoint.pt")
    if stacked:  # the reference forward reads q, k, v separately
        for i in range(2):
            layer = f"encoder.sentence_encoder.layers.{i}.self_attn."
            for p in ("weight", "bias"):
                for name, part in zip("qkv", state[f"{layer}in_proj_{p}"].chunk(3), strict=True):
                    state[f"{layer}{name}_proj.{p}"] = part

    info = convert_checkpoint("fairseq-roberta", tmp_path, tmp_path / "hf", labels=("negative", "positive"))

    tokens = padded_ids(300, pad=1, first=0)
    tokens[1, 6], tokens[2, 2] = 2, 2  # </s> before the padding
    expected = fairseq_roberta_logits(state, tokens, heads=2)
    checkpoint_, model = converted_model(tmp_path / "hf", "roberta-base-sst2")
    with torch.inference_mode():
        got = model(input_ids=tokens, attention_mask=tokens.ne(1)).logits
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    assert checkpoint_.config.id2label == {0: "negative", 1: "positive"}
    assert "encoder.lm_head.dense.weight" in info["ignored_keys"]
    assert set(info["replaced_objects"]) == {"argparse.Namespace", "fairseq.logging.meters.AverageMeter"}


class Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.makedirs, (str(self.marker),))


def test_a_checkpoint_that_runs_code_when_unpickled_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "payload-ran"
    torch.save({"model": fairseq_roberta_state(), "extra": Payload(marker)}, tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError, match=r"refused to unpickle: .*os\.makedirs"):
        convert_checkpoint("fairseq-roberta", tmp_path / "checkpoint.pt", tmp_path / "hf")
    assert not marker.exists() and not (tmp_path / "hf").exists()


def test_fairseq_heads_cannot_be_guessed_for_odd_widths(tmp_path: Path) -> None:
    torch.save({"model": fairseq_roberta_state(hidden=32)}, tmp_path / "model.pt")
    with pytest.raises(CheckpointError, match="cannot tell the number of attention heads"):
        convert_checkpoint("fairseq-roberta", tmp_path, tmp_path / "hf")


def test_fairseq_without_a_classification_head(tmp_path: Path) -> None:
    state = {k: v for k, v in fairseq_roberta_state().items() if not k.startswith("classification_heads")}
    torch.save({"model": state}, tmp_path / "model.pt")
    with pytest.raises(CheckpointError, match="no classification head"):
        convert_checkpoint("fairseq-roberta", tmp_path, tmp_path / "hf")


def test_albert_pytorch(tmp_path: Path) -> None:
    torch.manual_seed(0)
    state = albert_pytorch_state()
    source = tmp_path / "outputs"
    source.mkdir()
    torch.save(state, source / "pytorch_model.bin")
    (source / "config.json").write_text(json.dumps(ALBERT_CONFIG))

    convert_checkpoint("albert-pytorch", source, tmp_path / "hf")

    ids = padded_ids(300, pad=0)
    mask = ids.ne(0).long()
    types_ = torch.zeros_like(ids)
    types_[0, 6:] = 1
    expected = albert_pytorch_logits(state, ALBERT_CONFIG, ids, types_, mask)
    _, model = converted_model(tmp_path / "hf", "albert-base-v2-sst2")
    with torch.inference_mode():
        got = model(input_ids=ids, attention_mask=mask, token_type_ids=types_).logits
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)


TINY_DEBERTA = {"vocab_size": 300, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                "intermediate_size": 64, "hidden_act": "gelu", "max_position_embeddings": 64,
                "relative_attention": True, "position_buckets": 16, "norm_rel_ebd": "layer_norm",
                "share_att_key": True, "max_relative_positions": -1, "position_biased_input": False,
                "type_vocab_size": 0, "layer_norm_eps": 1e-7, "hidden_dropout_prob": 0.0,
                "attention_probs_dropout_prob": 0.0, "pad_token_id": 0}


def test_microsoft_deberta_release(tmp_path: Path) -> None:
    from transformers import DebertaV2Config, DebertaV2ForSequenceClassification

    torch.manual_seed(0)
    original = DebertaV2ForSequenceClassification(DebertaV2Config(
        **TINY_DEBERTA, pos_att_type=["p2c", "c2p"], num_labels=3, pooler_hidden_size=32,
        pooler_hidden_act="gelu", pooler_dropout=0.0)).eval()
    # the release layout: backbone under "bert.", an RTD/MLM head beside, microsoft's config format
    release = {("bert." + k.removeprefix("deberta.")) if k.startswith("deberta.") else k: v
               for k, v in original.state_dict().items()}
    release["lm_predictions.lm_head.bias"] = torch.zeros(300)
    source = tmp_path / "deberta-v3-tiny"
    source.mkdir()
    torch.save(release, source / "pytorch.model-mnli.bin")
    (source / "model_config.json").write_text(json.dumps(TINY_DEBERTA | {"pos_att_type": "p2c|c2p"}))

    labels = ("contradiction", "neutral", "entailment")  # microsoft's MNLI order
    info = convert_checkpoint("deberta", source, tmp_path / "hf", labels=labels)

    ids = padded_ids(300, pad=0)
    with torch.inference_mode():
        expected = original(input_ids=ids, attention_mask=ids.ne(0)).logits
        checkpoint, model = converted_model(tmp_path / "hf", "deberta-v3-base-mnli")
        got = model(input_ids=ids, attention_mask=ids.ne(0)).logits
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    assert checkpoint.config.pos_att_type == ["p2c", "c2p"]
    assert get_task("mnli").for_model(checkpoint.config, "hf").model_labels == labels
    assert info["ignored_keys"] == ["lm_predictions.lm_head.bias"]


def test_deberta_v1_layout_is_named(tmp_path: Path) -> None:
    torch.save({"deberta.encoder.layer.0.attention.self.in_proj.weight": torch.zeros(6, 2)},
               tmp_path / "pytorch_model.bin")
    (tmp_path / "model_config.json").write_text("{}")
    with pytest.raises(CheckpointError, match="DeBERTa v1 checkpoint"):
        convert_checkpoint("deberta", tmp_path, tmp_path / "hf")


def test_spanbert_release(tmp_path: Path) -> None:
    from transformers import BertConfig, BertForQuestionAnswering

    torch.manual_seed(0)
    config = {"vocab_size": 300, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
              "intermediate_size": 64, "hidden_act": "gelu", "max_position_embeddings": 64,
              "type_vocab_size": 2, "initializer_range": 0.02, "hidden_dropout_prob": 0.1,
              "attention_probs_dropout_prob": 0.1}
    original = BertForQuestionAnswering(BertConfig(**config)).eval()
    # pytorch-pretrained-bert names: LayerNorm gamma/beta; the release also carries a pooler
    release = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
               for k, v in original.state_dict().items()}
    release["bert.pooler.dense.weight"] = torch.randn(32, 32)
    release["bert.pooler.dense.bias"] = torch.zeros(32)
    source = tmp_path / "spanbert_hf_base"
    source.mkdir()
    torch.save(release, source / "pytorch_model.bin")
    (source / "config.json").write_text(json.dumps(config))  # no model_type, as released

    info = convert_checkpoint("spanbert", source, tmp_path / "hf")

    ids = padded_ids(300, pad=0)
    converted = BertForQuestionAnswering.from_pretrained(tmp_path / "hf").eval()
    with torch.inference_mode():
        want = original(input_ids=ids, attention_mask=ids.ne(0))
        got = converted(input_ids=ids, attention_mask=ids.ne(0))
    torch.testing.assert_close(got.start_logits, want.start_logits, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(got.end_logits, want.end_logits, atol=1e-5, rtol=1e-4)
    assert info["ignored_keys"] == ["bert.pooler.dense.bias", "bert.pooler.dense.weight"]
    assert json.loads((tmp_path / "hf" / "config.json").read_text())["model_type"] == "bert"


@pytest.mark.slow
def test_a_converted_checkpoint_runs_through_the_chain(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from encoderzoo.cli import app
    from tests.conftest import ROBERTA_VOCAB, SST2_DEV, cli

    if not ROBERTA_VOCAB.exists():
        pytest.skip(f"{ROBERTA_VOCAB} is not available")
    torch.manual_seed(0)
    torch.save({"args": argparse.Namespace(encoder_attention_heads=2),
                "model": fairseq_roberta_state(vocab=50265, positions=514)}, tmp_path / "model.pt")
    result = cli("convert", "fairseq-roberta", str(tmp_path / "model.pt"), "--out", str(tmp_path / "hf"),
                 "--tokenizer", str(ROBERTA_VOCAB), "--labels", "negative,positive")
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stdout and "left out 3 source parameters" in result.stdout
    run = CliRunner().invoke(app, [
        "run", "roberta-base-sst2", "--checkpoint", str(tmp_path / "hf"), "--data", str(SST2_DEV),
        "--limit", "16", "--no-bench", "--out", str(tmp_path / "run"),
        "--backends", "torch:fp32,onnxruntime:fp32,openvino:fp32"])  # a random model: fp32 must agree
    assert run.exit_code == 0, (run.output, run.exception)
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert all(r["vs_torch"]["agreement"] == 1.0 and r["gate_passed"] for r in report["accuracy"][1:])


def test_unknown_format_is_one_line(tmp_path: Path) -> None:
    from tests.conftest import cli

    result = cli("convert", "tensorflow", str(tmp_path), "--out", str(tmp_path / "hf"))
    assert result.returncode == 2
    expected = ("error: unknown checkpoint format 'tensorflow'; known checkpoint formats: "
                "fairseq-roberta, deberta, albert-pytorch, spanbert")
    assert result.stderr.strip() == expected
