"""The SpanBERT release (`pytorch_model.bin` with `bert.*` and `qa_outputs.*`, and a BERT
`config.json` without `model_type`) → BertForQuestionAnswering. Older pytorch-pretrained-bert
files name LayerNorm parameters gamma/beta."""

from __future__ import annotations

from pathlib import Path

from encoderzoo.convert.base import (
    Converted,
    Keys,
    find_file,
    read_json_config,
    require,
    safe_load,
    tensor_state,
)

CONFIG_KEYS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
               "hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob",
               "max_position_embeddings", "type_vocab_size", "initializer_range", "layer_norm_eps")


def convert(source: Path, *, config_path: Path | None = None, head: str | None = None) -> Converted:
    from transformers import BertConfig

    file = find_file(source, ("pytorch_model.bin", "*.bin"), "SpanBERT state dict")
    config_file = config_path or find_file(file.parent, ("config.json", "bert_config.json"),
                                           "config.json beside the weights")
    loaded = safe_load(file)
    original = tensor_state(loaded.data, file, "state_dict", "model")
    renamed = {_rename(k): v for k, v in original.items()}
    state = Keys(renamed)
    require(state, "qa_outputs.weight", file, "not a SpanBERT question-answering model")
    # BertForQuestionAnswering has no pooler; the MLM/NSP heads (cls.*) are not needed either
    out = {k: state[k] for k in renamed
           if k.startswith(("bert.", "qa_outputs.")) and not k.startswith("bert.pooler.")}
    settings = read_json_config(config_file)
    config = BertConfig(**{k: settings[k] for k in CONFIG_KEYS if k in settings})
    return Converted("BertForQuestionAnswering", config, out, file, state.unused(), loaded.stubbed)


def _rename(key: str) -> str:
    if ".LayerNorm." in key or key.endswith("LayerNorm.gamma") or key.endswith("LayerNorm.beta"):
        return key.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
    return key
