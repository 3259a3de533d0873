"""What differs between model families, declared once per family: the graph's inputs, the
tokenizer class that reads the family's vocabulary files, how to shrink the architecture for a
tiny random model, and the model type ONNX Runtime's optimizer is told."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from encoderzoo.errors import CheckpointError
from encoderzoo.registry import Registry

WITH_SEGMENTS = ("input_ids", "attention_mask", "token_type_ids")
WITHOUT_SEGMENTS = ("input_ids", "attention_mask")
TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}


@dataclass(frozen=True)
class Family:
    name: str
    model_types: tuple[str, ...]  # accepted `config.model_type` values
    tokenizer_class: str  # transformers class that reads `tokenizer_files`
    tokenizer_files: tuple[str, ...]  # what a --tokenizer folder holds for this family
    input_names: tuple[str, ...] = WITH_SEGMENTS
    ort_model_type: str = "bert"  # onnxruntime.transformers optimizer's model_type
    tiny: Mapping[str, Any] = field(default_factory=lambda: dict(TINY))  # config overrides
    # positions start after the padding index (RoBERTa's fairseq heritage): 514 positions hold
    # 512 tokens
    positions_after_padding: bool = False

    def max_tokens(self, config: Any) -> tuple[int | None, str]:
        """The longest sequence the model's position embeddings hold, and why (for messages)."""
        positions = getattr(config, "max_position_embeddings", None)
        if positions is None:
            return None, ""
        if self.positions_after_padding:
            pad = int(getattr(config, "pad_token_id", 1) or 0)
            return int(positions) - pad - 1, f" (max_position_embeddings {positions} - padding_idx {pad} - 1)"
        return int(positions), ""


FAMILIES: Registry[Family] = Registry("model family")


def register_family(family: Family) -> Family:
    return FAMILIES.register(family.name, family)


def get_family(name: str) -> Family:
    return FAMILIES[name]


def family_of(model_type: str, where: str) -> Family:
    """The family of a checkpoint, from its config's `model_type`."""
    for family in FAMILIES.values():
        if model_type in family.model_types:
            return family
    known = ", ".join(sorted(t for f in FAMILIES.values() for t in f.model_types))
    raise CheckpointError(f"{where}: a '{model_type}' model, which encoderzoo does not run (model "
                          f"types it runs: {known})")


register_family(Family(
    name="bert", model_types=("bert",), tokenizer_class="BertTokenizer",
    tokenizer_files=("vocab.txt",),
))
register_family(Family(
    name="roberta", model_types=("roberta",), tokenizer_class="RobertaTokenizer",
    tokenizer_files=("vocab.json", "merges.txt"), input_names=WITHOUT_SEGMENTS,
    positions_after_padding=True,
))
register_family(Family(
    name="albert", model_types=("albert",), tokenizer_class="AlbertTokenizer",
    tokenizer_files=("spiece.model",), tiny=TINY | {"embedding_size": 16},
))
register_family(Family(
    # DeBERTa-v2 and v3 share the architecture; v3 has no segment embeddings (type_vocab_size 0).
    name="deberta-v2", model_types=("deberta-v2",), tokenizer_class="DebertaV2Tokenizer",
    tokenizer_files=("spm.model",), input_names=WITHOUT_SEGMENTS,
    tiny=TINY | {"pooler_hidden_size": 32, "position_buckets": 16},
))
