"""microsoft/DeBERTa release state dicts (`pytorch.model-*.bin`, `pytorch_model.bin`, with
`model_config.json`) → DebertaV2ForSequenceClassification. The v2/v3 module names match the
Hugging Face port; the work is in the prefixes and the config (`pos_att_type: "p2c|c2p"`)."""

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
from encoderzoo.errors import CheckpointError

CANDIDATES = ("pytorch.model*.bin", "pytorch_model.bin", "*.bin")
CONFIGS = ("model_config.json", "config.json")
KEPT = ("deberta.", "pooler.", "classifier.")
CONFIG_KEYS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
               "intermediate_size", "hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob",
               "max_position_embeddings", "type_vocab_size", "initializer_range", "layer_norm_eps",
               "relative_attention", "max_relative_positions", "position_buckets", "norm_rel_ebd",
               "share_att_key", "position_biased_input", "pad_token_id", "embedding_size")


def convert(source: Path, *, config_path: Path | None = None, head: str | None = None) -> Converted:
    from transformers import DebertaV2Config

    file = find_file(source, CANDIDATES, "DeBERTa state dict")
    config_file = config_path or find_file(file.parent, CONFIGS, "model_config.json beside the weights")
    loaded = safe_load(file)
    original = tensor_state(loaded.data, file, "state_dict", "model")
    if any(k.endswith("attention.self.in_proj.weight") for k in original):
        raise CheckpointError(f"{file}: a DeBERTa v1 checkpoint (in_proj); only v2/v3 layouts are supported")
    renamed = {_rename(k): v for k, v in original.items()}
    state = Keys(renamed)
    require(state, "classifier.weight", file, "a backbone, not a fine-tuned classifier")
    out = {k: state[k] for k in renamed if k.startswith(KEPT)}
    settings = read_json_config(config_file)
    pos_att_type = settings.get("pos_att_type", [])
    if isinstance(pos_att_type, str):
        pos_att_type = [p.strip() for p in pos_att_type.lower().split("|") if p.strip()]
    pooler = out.get("pooler.dense.weight")
    config = DebertaV2Config(
        **{k: settings[k] for k in CONFIG_KEYS if k in settings},
        pos_att_type=pos_att_type,
        num_labels=out["classifier.weight"].shape[0],
        pooler_hidden_size=pooler.shape[0] if pooler is not None else settings["hidden_size"],
        pooler_hidden_act=settings.get("pooling", {}).get("hidden_act", "gelu"),
        pooler_dropout=0.0,
    )
    config.vocab_size = out["deberta.embeddings.word_embeddings.weight"].shape[0]
    return Converted("DebertaV2ForSequenceClassification", config, out, file, state.unused(), loaded.stubbed)


def _rename(key: str) -> str:
    """Release files name the backbone `bert.` or leave it unprefixed; Hugging Face says `deberta.`."""
    if key.startswith("bert."):
        return "deberta." + key[len("bert."):]
    if key.startswith(("embeddings.", "encoder.")):
        return "deberta." + key
    return key
