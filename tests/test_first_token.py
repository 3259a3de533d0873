"""The last layer for the first token only (encoderzoo.first_token): exact where it applies,
refused where the head or the layer would make it inexact, and counted as the work it does."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from encoderzoo import first_token
from encoderzoo.export import torch_outputs
from encoderzoo.first_token import first_token_swap
from encoderzoo.roofline import EncoderShape

TINY = {"hidden_size": 32, "num_hidden_layers": 3, "num_attention_heads": 4, "intermediate_size": 64,
        "vocab_size": 100, "max_position_embeddings": 64}


def tiny(name: str) -> Any:
    import torch
    import transformers

    torch.manual_seed(0)
    config_class, model_class = {
        "bert": ("BertConfig", "BertForSequenceClassification"),
        "bert-mc": ("BertConfig", "BertForMultipleChoice"),
        "bert-ner": ("BertConfig", "BertForTokenClassification"),
        "roberta": ("RobertaConfig", "RobertaForSequenceClassification"),
        "xlm-roberta": ("XLMRobertaConfig", "XLMRobertaForSequenceClassification"),
        "electra": ("ElectraConfig", "ElectraForSequenceClassification"),
        "albert": ("AlbertConfig", "AlbertForSequenceClassification"),
        "distilbert": ("DistilBertConfig", "DistilBertForSequenceClassification"),
    }[name]
    sizes = ({"dim": 32, "n_layers": 3, "n_heads": 4, "hidden_dim": 64, "vocab_size": 100}
             if name == "distilbert" else TINY | ({"embedding_size": 16} if name == "albert" else {}))
    config = getattr(transformers, config_class)(num_labels=3, attn_implementation="eager", **sizes)
    return getattr(transformers, model_class)(config).eval()


def feeds(rng: np.random.Generator, batch: int, seq: int, choices: int = 0) -> dict[str, np.ndarray]:
    shape = (batch, choices, seq) if choices else (batch, seq)
    ids = rng.integers(5, 100, shape).astype(np.int64)
    lengths = 2 + np.arange(batch) * 7 % (seq - 1)  # real tokens: padding of many widths
    mask = (np.arange(seq) < lengths.reshape((batch,) + (1,) * (len(shape) - 1))).astype(np.int64)
    mask = np.broadcast_to(mask, shape).copy()
    return {"input_ids": ids, "attention_mask": mask}


def swap(model: Any, kind: str, choices: int = 0) -> tuple[Any, dict[str, Any], list[dict[str, Any]]]:
    rng = np.random.default_rng(0)
    cases = [feeds(rng, 6, 17, choices), feeds(rng, 1, 9, choices), feeds(rng, 3, 40, choices)]
    names = ("logits",)
    expected = [torch_outputs(model, c, names) for c in cases]
    done, record = first_token_swap(model, kind, cases, expected, 1e-5,
                                    lambda m, f: torch_outputs(m, f, names))
    return done, record, expected


@pytest.mark.parametrize("name", ["bert", "roberta", "xlm-roberta", "electra", "distilbert"])
def test_the_slimmed_last_layer_gives_the_same_outputs(name: str) -> None:
    model = tiny(name)
    done, record, _ = swap(model, "sequence-classification")
    assert done is not None and record["applied"] and record["max_abs_diff"] <= 1e-5, record
    assert type(done.layers[-1]).__name__ == "FirstTokenLayer"
    rng = np.random.default_rng(1)
    other = feeds(rng, 4, 23)  # inputs it was not checked on: still equal to the untouched model
    slim = torch_outputs(model, other, ("logits",))["logits"]
    done.undo()
    assert type(done.layers[-1]).__name__ != "FirstTokenLayer"
    np.testing.assert_allclose(slim, torch_outputs(model, other, ("logits",))["logits"], atol=1e-5)


def test_multiple_choice_heads_read_the_first_token_too() -> None:
    done, record, _ = swap(tiny("bert-mc"), "multiple-choice", choices=4)
    assert done is not None and record["applied"], record


def test_a_head_that_reads_every_token_keeps_the_whole_layer() -> None:
    done, record, _ = swap(tiny("bert-ner"), "token-classification")
    reason = "a token-classification head reads every token of the last layer"
    assert done is None and record == {"applied": False, "reason": reason}


def test_a_layer_of_another_structure_is_left_whole() -> None:
    done, record, _ = swap(tiny("albert"), "sequence-classification")  # layers shared across depth
    assert done is None and "structure" in record["reason"]


def test_a_swap_that_changes_the_outputs_is_undone(monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = first_token._bert_layer

    def off_by_a_little(layer: Any, hidden: Any, mask: Any) -> Any:
        return wrong(layer, hidden, mask) * 1.01

    monkeypatch.setattr(first_token, "_structure", lambda layer: off_by_a_little
                        if type(layer).__name__ == "BertLayer" else None)
    model = tiny("bert")
    done, record, _ = swap(model, "sequence-classification")
    assert done is None and not record["applied"] and "moved by" in record["reason"]
    assert type(model.bert.encoder.layer[-1]).__name__ == "BertLayer"  # the model is left as it was


def test_the_flop_count_is_the_work_the_slim_layer_does() -> None:
    minilm, base = EncoderShape(6, 384, 1536, 384), EncoderShape(12, 768, 3072, 768)
    assert minilm.saved(128) == pytest.approx(0.14, abs=0.005)  # the issue's ~14 % and ~7 %
    assert base.saved(128) == pytest.approx(0.07, abs=0.005)
    n, h, f = 128, 768, 3072
    full_layer = 2 * (4 * n * h * h + 2 * n * h * f + 2 * n * n * h)
    slim_layer = 2 * (2 * n * h * h + 2 * h * h + 2 * h * f + 2 * n * h)
    slim = EncoderShape(12, h, f, h, first_token=True)
    assert slim.flops_per_sequence(n) == pytest.approx(11 * full_layer + slim_layer)
    assert "first token" in slim.describe()


@pytest.mark.parametrize("mode", ["cls", "mean"])
def test_embeddings_pooled_by_cls_slim_the_last_layer_mean_pooled_keep_it(mode: str) -> None:
    from encoderzoo.sentence_embedding import _module_class

    encoder = tiny("bert").bert
    model = _module_class()(encoder, mode=mode, normalize=True).eval()
    rng = np.random.default_rng(0)
    cases = [feeds(rng, 5, 19), feeds(rng, 2, 7)]
    names = ("sentence_embedding",)
    expected = [torch_outputs(model, c, names) for c in cases]
    _, record = first_token_swap(model, "sentence-embedding", cases, expected, 1e-5,
                                 lambda m, f: torch_outputs(m, f, names))
    assert record["applied"] is (mode == "cls"), record
    if mode == "mean":
        assert record["reason"] == ("a sentence-embedding head pooled by mean reads every token of the "
                                    "last layer")


def test_the_tolerance_that_keeps_the_slim_layer_is_part_of_the_graphs_key() -> None:
    """Whether the export keeps the first-token layer depends on --export-atol: a graph exported
    under a looser tolerance is not reused under a tighter one."""
    from types import SimpleNamespace

    from encoderzoo.artifacts import BuildOptions
    from encoderzoo.builders import graph_key

    model = SimpleNamespace(graph=None, input_names=("input_ids", "attention_mask"))
    task = SimpleNamespace(model_kind="sequence-classification", output_axes={"logits": {0: "batch"}})
    loose, tight = BuildOptions(export_atol=1e-2), BuildOptions(export_atol=1e-5)
    assert graph_key(model, task, loose) != graph_key(model, task, tight)  # type: ignore[arg-type]
