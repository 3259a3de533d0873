"""Exact work saved in the last layer: a head that reads only the first token of the last layer
(sequence classification and regression, multiple choice, embeddings pooled by CLS) needs, of
that layer, the keys and values of every token but the query, the attention output, its
projection and the feed-forward block of the first token alone. The export traces the model
with its last layer swapped for one that computes just that, so every runtime running the graph
does that much less work.

Nothing is assumed: the swapped model is run beside the untouched one on the parity cases, and
is kept only when its outputs equal the untouched model's within the export tolerance (the
export's own parity check, against the untouched PyTorch model, proves the graph again). A
layer of another structure, a head that reads other tokens, or any difference beyond the
tolerance keeps the full last layer, and the export record says why."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

# the heads that read the first token only (transformers' *ForSequenceClassification poolers
# and classification heads, *ForMultipleChoice), and sentence embeddings pooled by CLS: the
# model kinds a task declares
READS_FIRST_TOKEN = frozenset({"sequence-classification", "multiple-choice"})

# transformers layer classes whose forward is exactly: attention.self (query/key/value, eager
# softmax attention), attention.output(context, input), intermediate, output(inner, attention)
BERT_LAYERS = frozenset({"BertLayer", "RobertaLayer", "XLMRobertaLayer", "CamembertLayer", "ElectraLayer"})
# ... and DistilBERT's block: attention (q_lin/k_lin/v_lin/out_lin), sa_layer_norm, ffn,
# output_layer_norm
DISTILBERT_LAYERS = frozenset({"TransformerBlock"})


def _attend(query: Any, key: Any, value: Any, mask: Any, heads: int) -> Any:
    """Softmax attention of one query row per sequence over every token: (B, 1, H) context."""
    import torch

    batch, hidden = query.shape[0], query.shape[-1]
    size = hidden // heads
    q = query.view(batch, 1, heads, size).transpose(1, 2)
    k = key.view(batch, -1, heads, size).transpose(1, 2)
    v = value.view(batch, -1, heads, size).transpose(1, 2)
    scores = torch.matmul(q, k.transpose(2, 3)) * size ** -0.5
    if mask is not None:
        if mask.dim() == 2:  # (batch, tokens) of ones and zeros
            mask = mask[:, None, None, :].bool()
        mask = mask[..., :1, :]
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        else:
            scores = scores + mask
    probs = torch.softmax(scores, dim=-1)
    return torch.matmul(probs, v).transpose(1, 2).reshape(batch, 1, hidden)


def _bert_layer(layer: Any, hidden: Any, mask: Any) -> Any:
    first = hidden[:, :1]
    attention = layer.attention.self
    context = _attend(attention.query(first), attention.key(hidden), attention.value(hidden), mask,
                      attention.num_attention_heads)
    attended = layer.attention.output(context, first)
    return layer.output(layer.intermediate(attended), attended)


def _distilbert_layer(layer: Any, hidden: Any, mask: Any) -> Any:
    first = hidden[:, :1]
    attention = layer.attention
    context = _attend(attention.q_lin(first), attention.k_lin(hidden), attention.v_lin(hidden), mask,
                      attention.n_heads)
    attended = layer.sa_layer_norm(attention.out_lin(context) + first)
    return layer.output_layer_norm(layer.ffn(attended) + attended)


def _structure(layer: Any) -> Callable[[Any, Any, Any], Any] | None:
    name = type(layer).__name__
    if name in BERT_LAYERS and not getattr(layer, "is_decoder", False):
        return _bert_layer
    if name in DISTILBERT_LAYERS:
        return _distilbert_layer
    return None


def _last_layer(model: Any) -> tuple[Any, int] | None:
    """The module list of the encoder's layers and the last one's index (None: none found)."""
    import torch

    lists = [m for m in model.modules() if isinstance(m, torch.nn.ModuleList) and len(m) > 0
             and _structure(m[-1]) is not None]
    return (lists[-1], len(lists[-1]) - 1) if lists else None


def make_first_token_layer(layer: Any, compute: Callable[[Any, Any, Any], Any]) -> Any:
    import torch

    class FirstTokenLayer(torch.nn.Module):
        """`layer` computing its output for the first token only (keys and values for all)."""

        def __init__(self) -> None:
            super().__init__()
            self.layer = layer

        def forward(self, hidden_states: Any, attention_mask: Any = None, *args: Any, **kwargs: Any) -> Any:
            return compute(self.layer, hidden_states, attention_mask)

    return FirstTokenLayer()


class Swap:
    """The last layer of `model` swapped for its first-token form, in place, until `undo()`."""

    def __init__(self, layers: Any, index: int) -> None:
        self.layers, self.index, self.original = layers, index, layers[index]
        layers[index] = make_first_token_layer(self.original, _structure(self.original))  # type: ignore[arg-type]

    def undo(self) -> None:
        self.layers[self.index] = self.original


def why_not(model: Any, model_kind: str) -> str | None:
    """Why the first-token form does not apply to this model and head (None: it may)."""
    cls_pooled = model_kind == "sentence-embedding" and getattr(model, "mode", "") == "cls"
    if model_kind not in READS_FIRST_TOKEN and not cls_pooled:
        pooled = f" pooled by {getattr(model, 'mode', '?')}" if model_kind == "sentence-embedding" else ""
        return f"a {model_kind} head{pooled} reads every token of the last layer"
    config = getattr(model, "config", None)
    if getattr(config, "position_embedding_type", "absolute") not in (None, "absolute"):
        return "relative position embeddings add a term per query position"
    if _last_layer(model) is None:
        return "its last layer is of a structure encoderzoo does not slim"
    return None


Arrays = dict[str, np.ndarray]


def first_token_swap(model: Any, model_kind: str, cases: Sequence[Arrays], expected: Sequence[Arrays],
                     atol: float, run: Callable[[Any, Arrays], Arrays]) -> tuple[Swap | None, dict[str, Any]]:
    """Swap the last layer when that is proven exact on `cases` (outputs within `atol` of
    `expected`, the untouched model's); returns the swap (None: kept whole) and what to record."""
    reason = why_not(model, model_kind)
    if reason is not None:
        return None, {"applied": False, "reason": reason}
    found = _last_layer(model)
    assert found is not None
    swap = Swap(*found)
    worst = 0.0
    for feeds, want in zip(cases, expected, strict=True):
        got = run(model, feeds)
        worst = max(worst, *(float(np.max(np.abs(got[k] - v), initial=0.0)) for k, v in want.items()))
    if not np.isfinite(worst) or worst > atol:
        swap.undo()
        return None, {"applied": False, "reason": f"its outputs moved by {worst:.2g} > {atol:g}"}
    return swap, {"applied": True, "layer": type(swap.original).__name__, "max_abs_diff": worst}
