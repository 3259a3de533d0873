"""Forward passes written against the original checkpoints' own parameter layouts, so that the
converters can be checked against "the original module": fairseq RoBERTa and albert_pytorch,
re-implemented from their architectures (the packages themselves do not install here). Each
builder returns random weights in the original key layout for a tiny config."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def _linear(state: dict[str, Tensor], key: str, x: Tensor) -> Tensor:
    return F.linear(x, state[f"{key}.weight"], state[f"{key}.bias"])


def _norm(state: dict[str, Tensor], key: str, x: Tensor, eps: float) -> Tensor:
    return F.layer_norm(x, (x.shape[-1],), state[f"{key}.weight"], state[f"{key}.bias"], eps)


def _attention(q: Tensor, k: Tensor, v: Tensor, heads: int, mask_add: Tensor) -> Tensor:
    b, t, h = q.shape
    split = [x.view(b, t, heads, h // heads).transpose(1, 2) for x in (q, k, v)]
    scores = split[0] @ split[1].transpose(-1, -2) / math.sqrt(h // heads) + mask_add
    return (scores.softmax(-1) @ split[2]).transpose(1, 2).reshape(b, t, h)


def _random_linear(state: dict[str, Tensor], key: str, fan_in: int, fan_out: int) -> None:
    state[f"{key}.weight"] = torch.randn(fan_out, fan_in) * 0.05
    state[f"{key}.bias"] = torch.randn(fan_out) * 0.05


def _random_norm(state: dict[str, Tensor], key: str, width: int) -> None:
    state[f"{key}.weight"] = 1 + torch.randn(width) * 0.05
    state[f"{key}.bias"] = torch.randn(width) * 0.05


# -- fairseq RoBERTa --------------------------------------------------------------------------

def fairseq_roberta_state(vocab: int = 300, hidden: int = 32, layers: int = 2, ffn: int = 64,
                          positions: int = 66, labels: int = 2) -> dict[str, Tensor]:
    p = "encoder.sentence_encoder."
    state = {f"{p}embed_tokens.weight": torch.randn(vocab, hidden) * 0.1,
             f"{p}embed_positions.weight": torch.randn(positions, hidden) * 0.1}
    _random_norm(state, f"{p}emb_layer_norm", hidden)
    for i in range(layers):
        layer = f"{p}layers.{i}."
        for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
            _random_linear(state, f"{layer}self_attn.{name}", hidden, hidden)
        _random_norm(state, f"{layer}self_attn_layer_norm", hidden)
        _random_linear(state, f"{layer}fc1", hidden, ffn)
        _random_linear(state, f"{layer}fc2", ffn, hidden)
        _random_norm(state, f"{layer}final_layer_norm", hidden)
    _random_linear(state, "encoder.lm_head.dense", hidden, hidden)  # the MLM head: not converted
    state["encoder.lm_head.bias"] = torch.zeros(vocab)
    _random_linear(state, "classification_heads.sentence_classification_head.dense", hidden, hidden)
    _random_linear(state, "classification_heads.sentence_classification_head.out_proj", hidden, labels)
    return state


def fairseq_roberta_logits(state: dict[str, Tensor], tokens: Tensor, heads: int, pad: int = 1) -> Tensor:
    """fairseq's RoBERTa: learned positions offset past the padding index, post-LayerNorm
    layers with GELU, the head on the <s> token (dense, tanh, out_proj)."""
    p = "encoder.sentence_encoder."
    keep = tokens.ne(pad)
    positions = torch.cumsum(keep, dim=1) * keep + pad
    x = state[f"{p}embed_tokens.weight"][tokens] + state[f"{p}embed_positions.weight"][positions]
    x = _norm(state, f"{p}emb_layer_norm", x, 1e-5)
    mask_add = (~keep)[:, None, None, :] * torch.finfo(x.dtype).min
    layers = sum(1 for k in state if k.startswith(f"{p}layers.") and k.endswith("fc1.weight"))
    for i in range(layers):
        layer = f"{p}layers.{i}."
        qkv = [_linear(state, f"{layer}self_attn.{n}_proj", x) for n in "qkv"]
        attended = _linear(state, f"{layer}self_attn.out_proj", _attention(*qkv, heads, mask_add))
        x = _norm(state, f"{layer}self_attn_layer_norm", x + attended, 1e-5)
        hidden = _linear(state, f"{layer}fc2", F.gelu(_linear(state, f"{layer}fc1", x)))
        x = _norm(state, f"{layer}final_layer_norm", x + hidden, 1e-5)
    head = "classification_heads.sentence_classification_head"
    return _linear(state, f"{head}.out_proj", torch.tanh(_linear(state, f"{head}.dense", x[:, 0])))


# -- albert_pytorch -----------------------------------------------------------------------------

ALBERT_CONFIG = {"vocab_size": 300, "embedding_size": 16, "hidden_size": 32, "num_hidden_layers": 3,
                 "num_hidden_groups": 1, "inner_group_num": 1, "num_attention_heads": 2,
                 "intermediate_size": 64, "hidden_act": "gelu_new", "max_position_embeddings": 64,
                 "type_vocab_size": 2, "layer_norm_eps": 1e-12, "hidden_dropout_prob": 0.0,
                 "attention_probs_dropout_prob": 0.0, "initializer_range": 0.02}


def albert_pytorch_state(config: dict = ALBERT_CONFIG, labels: int = 2) -> dict[str, Tensor]:  # type: ignore[type-arg]
    e, h, f = config["embedding_size"], config["hidden_size"], config["intermediate_size"]
    rows = {"word": config["vocab_size"], "position": config["max_position_embeddings"],
            "token_type": config["type_vocab_size"]}
    state = {f"bert.embeddings.{name}_embeddings.weight": torch.randn(n, e) * 0.1 for name, n in rows.items()}
    _random_norm(state, "bert.embeddings.LayerNorm", e)
    _random_linear(state, "bert.encoder.embedding_hidden_mapping_in", e, h)
    layer = "bert.encoder.transformer.group.0.inner_group.0."
    for name in ("query", "key", "value"):
        _random_linear(state, f"{layer}attention.self.{name}", h, h)
    _random_linear(state, f"{layer}attention.output.dense", h, h)
    _random_norm(state, f"{layer}LayerNorm", h)
    _random_linear(state, f"{layer}ffn.intermediate.dense", h, f)
    _random_linear(state, f"{layer}ffn.intermediate.output.dense", f, h)
    _random_norm(state, f"{layer}LayerNorm_1", h)
    _random_linear(state, "bert.pooler.dense", h, h)
    _random_linear(state, "classifier", h, labels)
    return state


def albert_pytorch_logits(state: dict[str, Tensor], config: dict, ids: Tensor, types: Tensor,  # type: ignore[type-arg]
                          mask: Tensor) -> Tensor:
    """albert_pytorch's AlbertForSequenceClassification: factorized embeddings, one shared
    layer applied num_hidden_layers times (LayerNorm after attention, LayerNorm_1 after the
    FFN), a tanh pooler on the first token, then the classifier."""
    eps = config["layer_norm_eps"]
    act = F.gelu if config["hidden_act"] == "gelu" else (lambda t: F.gelu(t, approximate="tanh"))
    positions = torch.arange(ids.shape[1])[None, :]
    e = "bert.embeddings."
    x = (state[f"{e}word_embeddings.weight"][ids] + state[f"{e}position_embeddings.weight"][positions]
         + state[f"{e}token_type_embeddings.weight"][types])
    x = _linear(state, "bert.encoder.embedding_hidden_mapping_in", _norm(state, f"{e}LayerNorm", x, eps))
    mask_add = (1.0 - mask[:, None, None, :].float()) * -10000.0
    layer = "bert.encoder.transformer.group.0.inner_group.0."
    for _ in range(config["num_hidden_layers"]):
        qkv = [_linear(state, f"{layer}attention.self.{n}", x) for n in ("query", "key", "value")]
        attended = _linear(state, f"{layer}attention.output.dense",
                           _attention(*qkv, config["num_attention_heads"], mask_add))
        x1 = _norm(state, f"{layer}LayerNorm", attended + x, eps)
        ffn = _linear(state, f"{layer}ffn.intermediate.output.dense",
                      act(_linear(state, f"{layer}ffn.intermediate.dense", x1)))
        x = _norm(state, f"{layer}LayerNorm_1", ffn + x1, eps)
    return _linear(state, "classifier", torch.tanh(_linear(state, "bert.pooler.dense", x[:, 0])))
