"""albert_pytorch outputs (lonePatient/albert_pytorch: `pytorch_model.bin` + `config.json`,
parameters under `bert.encoder.transformer.group.*.inner_group.*`) →
AlbertForSequenceClassification."""

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

CONFIG_KEYS = ("vocab_size", "embedding_size", "hidden_size", "num_hidden_layers", "num_hidden_groups",
               "num_attention_heads", "intermediate_size", "inner_group_num", "hidden_act",
               "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings",
               "type_vocab_size", "initializer_range", "layer_norm_eps")
LAYER_MAP = {  # albert_pytorch inner-group layer parameter -> Hugging Face AlbertLayer parameter
    "attention.self.query": "attention.query",
    "attention.self.key": "attention.key",
    "attention.self.value": "attention.value",
    "attention.output.dense": "attention.dense",
    "LayerNorm": "attention.LayerNorm",
    "ffn.intermediate.dense": "ffn",
    "ffn.intermediate.output.dense": "ffn_output",
    "LayerNorm_1": "full_layer_layer_norm",
}


def convert(source: Path, *, config_path: Path | None = None, head: str | None = None) -> Converted:
    from transformers import AlbertConfig

    file = find_file(source, ("pytorch_model.bin", "*.bin"), "albert_pytorch state dict")
    config_file = config_path or find_file(file.parent, ("config.json",), "config.json beside the weights")
    loaded = safe_load(file)
    state = Keys(tensor_state(loaded.data, file, "state_dict", "model"))
    require(state, "bert.encoder.embedding_hidden_mapping_in.weight", file, "not an albert_pytorch model")
    require(state, "classifier.weight", file, "a backbone, not a fine-tuned classifier")
    out = {}
    for name in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
        out[f"albert.embeddings.{name}.weight"] = state[f"bert.embeddings.{name}.weight"]
    for p in ("weight", "bias"):
        out[f"albert.embeddings.LayerNorm.{p}"] = state[f"bert.embeddings.LayerNorm.{p}"]
        mapping = f"encoder.embedding_hidden_mapping_in.{p}"
        out[f"albert.{mapping}"] = state[f"bert.{mapping}"]
        out[f"albert.pooler.{p}"] = state[f"bert.pooler.dense.{p}"]
        out[f"classifier.{p}"] = state[f"classifier.{p}"]
    groups = sorted({int(k.split(".")[4]) for k in state if k.startswith("bert.encoder.transformer.group.")})
    for g in groups:
        src_group = f"bert.encoder.transformer.group.{g}.inner_group."
        inner = sorted({int(k[len(src_group):].split(".")[0]) for k in state if k.startswith(src_group)})
        for i in inner:
            for src, dst in LAYER_MAP.items():
                for p in ("weight", "bias"):
                    out[f"albert.encoder.albert_layer_groups.{g}.albert_layers.{i}.{dst}.{p}"] = \
                        state[f"{src_group}{i}.{src}.{p}"]
    settings = read_json_config(config_file)
    config = AlbertConfig(**{k: settings[k] for k in CONFIG_KEYS if k in settings},
                          num_labels=out["classifier.weight"].shape[0], classifier_dropout_prob=0.1)
    return Converted("AlbertForSequenceClassification", config, out, file, state.unused(), loaded.stubbed)
