"""fairseq RoBERTa (`checkpoint.pt` / `model.pt`, with a sentence-classification head) →
RobertaForSequenceClassification. fairseq's dictionary order is the one Hugging Face's
roberta-base vocab.json follows, so embeddings map row for row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from encoderzoo.convert.base import Converted, Inert, Keys, find_file, safe_load, tensor_state
from encoderzoo.errors import CheckpointError

CANDIDATES = ("model.pt", "checkpoint_best.pt", "checkpoint.pt", "checkpoint_last.pt", "*.pt")
PREFIXES = ("encoder.sentence_encoder.", "decoder.sentence_encoder.")  # fairseq >= 0.10, older
HEAD_PREFIX = "classification_heads."
LAYER_MAP = {  # fairseq layer parameter -> Hugging Face RobertaLayer parameter
    "self_attn.q_proj": "attention.self.query",
    "self_attn.k_proj": "attention.self.key",
    "self_attn.v_proj": "attention.self.value",
    "self_attn.out_proj": "attention.output.dense",
    "self_attn_layer_norm": "attention.output.LayerNorm",
    "fc1": "intermediate.dense",
    "fc2": "output.dense",
    "final_layer_norm": "output.LayerNorm",
}


def convert(source: Path, *, config_path: Path | None = None, head: str | None = None) -> Converted:
    import torch
    from transformers import RobertaConfig

    file = find_file(source, CANDIDATES, "fairseq checkpoint")
    loaded = safe_load(file)
    state = Keys(tensor_state(loaded.data, file, "model"))
    args = loaded.data.get("args") if isinstance(loaded.data, dict) else None
    options = args.fields() if isinstance(args, Inert) else {}
    prefix = next((p for p in PREFIXES if f"{p}embed_tokens.weight" in state), None)
    if prefix is None:
        raise CheckpointError(
            f"{file}: no '{PREFIXES[0]}embed_tokens.weight'; not a fairseq RoBERTa checkpoint")
    head_name = _head(state, file, head)
    layers = sum(1 for k in state if k.startswith(f"{prefix}layers.") and k.endswith(".fc1.weight"))
    vocab, hidden = state[f"{prefix}embed_tokens.weight"].shape
    out = {
        "roberta.embeddings.word_embeddings.weight": state[f"{prefix}embed_tokens.weight"],
        "roberta.embeddings.position_embeddings.weight": state[f"{prefix}embed_positions.weight"],
        "roberta.embeddings.token_type_embeddings.weight": torch.zeros(1, hidden),
    }
    norm = "emb_layer_norm" if f"{prefix}emb_layer_norm.weight" in state else "layernorm_embedding"
    for p in ("weight", "bias"):
        out[f"roberta.embeddings.LayerNorm.{p}"] = state[f"{prefix}{norm}.{p}"]
    for i in range(layers):
        out |= _layer(state, f"{prefix}layers.{i}.", f"roberta.encoder.layer.{i}.")
    head_keys = {"dense": "classifier.dense", "out_proj": "classifier.out_proj"}
    for src, dst in head_keys.items():
        for p in ("weight", "bias"):
            out[f"{dst}.{p}"] = state[f"{HEAD_PREFIX}{head_name}.{src}.{p}"]
    # without the training args, assume 64-wide heads, as every released RoBERTa has
    heads = int(options.get("encoder_attention_heads") or hidden // 64)
    if heads < 1 or hidden % heads:
        raise CheckpointError(f"{file}: cannot tell the number of attention heads (no args in the "
                              f"checkpoint, hidden size {hidden}); re-save it with its fairseq args")
    config = RobertaConfig(
        vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=state[f"{prefix}layers.0.fc1.weight"].shape[0],
        max_position_embeddings=state[f"{prefix}embed_positions.weight"].shape[0],
        type_vocab_size=1, layer_norm_eps=1e-5, hidden_act=str(options.get("activation_fn", "gelu")),
        pad_token_id=1, bos_token_id=0, eos_token_id=2,
        num_labels=state[f"{HEAD_PREFIX}{head_name}.out_proj.weight"].shape[0],
    )
    return Converted("RobertaForSequenceClassification", config, out, file, state.unused(), loaded.stubbed)


def _head(state: Keys, file: Path, wanted: str | None) -> str:
    heads = sorted({k[len(HEAD_PREFIX):].split(".")[0] for k in state if k.startswith(HEAD_PREFIX)})
    if not heads:
        raise CheckpointError(f"{file}: no classification head (classification_heads.*); "
                              "fine-tune one with fairseq first")
    if wanted is None and len(heads) == 1:
        return heads[0]
    if wanted is None and "sentence_classification_head" in heads:
        return "sentence_classification_head"
    if wanted in heads:
        return wanted
    raise CheckpointError(f"{file}: pick a classification head with --head ({', '.join(heads)})")


def _layer(state: Keys, src: str, dst: str) -> dict[str, Any]:
    out = {}
    if f"{src}self_attn.in_proj_weight" in state:  # older fairseq: q, k, v stacked
        weights = state[f"{src}self_attn.in_proj_weight"].chunk(3)
        biases = state[f"{src}self_attn.in_proj_bias"].chunk(3)
        for name, w, b in zip(("query", "key", "value"), weights, biases, strict=True):
            out[f"{dst}attention.self.{name}.weight"], out[f"{dst}attention.self.{name}.bias"] = w, b
    for fairseq_name, hf_name in LAYER_MAP.items():
        for p in ("weight", "bias"):
            key = f"{src}{fairseq_name}.{p}"
            if key in state:
                out[f"{dst}{hf_name}.{p}"] = state[key]
    return out
