"""What differs between model families, declared once per family: the graph's inputs, the
tokenizer class that reads the family's vocabulary files, the base architecture random weights
are built from and how to shrink it for a tiny model, and the model type ONNX Runtime's
optimizer is told.

Adding a family means one `register_family(Family(...))` below, its base config under
assets/configs, and a test tokenizer in tests/tokenizers.py (the end-to-end test asks for it)."""

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
    architecture: str  # assets/configs/<name>.json: the base model `--family` random weights build
    hub_tokenizer: str  # that model's tokenizer on the hub (random weights without --tokenizer)
    input_names: tuple[str, ...] = WITH_SEGMENTS
    # segment embeddings present only when the config has some (type_vocab_size > 0): DeBERTa's
    # v1/v2 have them, v3 does not, and the architecture is the same
    segments_from_config: bool = False
    ort_model_type: str = "bert"  # onnxruntime.transformers optimizer's model_type
    tiny: Mapping[str, Any] = field(default_factory=lambda: dict(TINY))  # config overrides
    # positions start after the padding index (RoBERTa's fairseq heritage): 514 positions hold
    # 512 tokens
    positions_after_padding: bool = False
    # why PyTorch cannot run this family under bfloat16 autocast (None: it can)
    torch_bf16_fails: str | None = None

    def inputs(self, config: Any) -> tuple[str, ...]:
        """The graph's inputs for a model of this family with this config."""
        if self.segments_from_config:
            return WITH_SEGMENTS if int(getattr(config, "type_vocab_size", 0) or 0) > 0 else WITHOUT_SEGMENTS
        return self.input_names

    def position_limit(self, config: Any) -> tuple[int | None, str]:
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


ROBERTA_LIKE = {"input_names": WITHOUT_SEGMENTS, "positions_after_padding": True}
SENTENCEPIECE_BPE = ("sentencepiece.bpe.model",)

register_family(Family(
    name="bert", model_types=("bert",), tokenizer_class="BertTokenizer", tokenizer_files=("vocab.txt",),
    architecture="bert-base-cased", hub_tokenizer="bert-base-cased",
))
register_family(Family(
    name="roberta", model_types=("roberta",), tokenizer_class="RobertaTokenizer",
    tokenizer_files=("vocab.json", "merges.txt"), architecture="roberta-base", hub_tokenizer="roberta-base",
    **ROBERTA_LIKE,
))
register_family(Family(
    name="albert", model_types=("albert",), tokenizer_class="AlbertTokenizer",
    tokenizer_files=("spiece.model",), architecture="albert-base-v2", hub_tokenizer="albert-base-v2",
    tiny=TINY | {"embedding_size": 16},
))
register_family(Family(
    # DeBERTa-v2 and v3 share the architecture; v3 has no segment embeddings (type_vocab_size 0).
    name="deberta-v2", model_types=("deberta-v2",), tokenizer_class="DebertaV2Tokenizer",
    tokenizer_files=("spm.model",), architecture="deberta-v3-base", hub_tokenizer="microsoft/deberta-v3-base",
    segments_from_config=True, tiny=TINY | {"pooler_hidden_size": 32, "position_buckets": 16},
))
register_family(Family(
    name="deberta", model_types=("deberta",), tokenizer_class="DebertaTokenizer",
    tokenizer_files=("vocab.json", "merges.txt"), architecture="deberta-base",
    hub_tokenizer="microsoft/deberta-base", segments_from_config=True,
    tiny=TINY | {"pooler_hidden_size": 32},
    torch_bf16_fails="transformers' DeBERTa (v1) fills its attention mask with float32's minimum, which "
                     "overflows bfloat16 under autocast",
))
register_family(Family(
    name="distilbert", model_types=("distilbert",), tokenizer_class="DistilBertTokenizer",
    tokenizer_files=("vocab.txt",), input_names=WITHOUT_SEGMENTS, architecture="distilbert-base-uncased",
    hub_tokenizer="distilbert-base-uncased",
    tiny={"dim": 32, "n_layers": 2, "n_heads": 2, "hidden_dim": 64},
))
register_family(Family(
    name="electra", model_types=("electra",), tokenizer_class="ElectraTokenizer",
    tokenizer_files=("vocab.txt",), architecture="electra-base-discriminator",
    hub_tokenizer="google/electra-base-discriminator", tiny=TINY | {"embedding_size": 16},
))
register_family(Family(
    name="xlm-roberta", model_types=("xlm-roberta",), tokenizer_class="XLMRobertaTokenizer",
    tokenizer_files=SENTENCEPIECE_BPE, architecture="xlm-roberta-base", hub_tokenizer="xlm-roberta-base",
    tiny=TINY | {"vocab_size": 1000},  # the base vocabulary (250k rows) is most of a tiny model
    **ROBERTA_LIKE,
))
register_family(Family(
    name="camembert", model_types=("camembert",), tokenizer_class="CamembertTokenizer",
    tokenizer_files=SENTENCEPIECE_BPE, architecture="camembert-base", hub_tokenizer="camembert-base",
    **ROBERTA_LIKE,
))
register_family(Family(
    name="mpnet", model_types=("mpnet",), tokenizer_class="MPNetTokenizer", tokenizer_files=("vocab.txt",),
    architecture="mpnet-base", hub_tokenizer="microsoft/mpnet-base", **ROBERTA_LIKE,
))
register_family(Family(
    # rotary positions, alternating local (128-token window) and global attention; nothing of it
    # fuses in ONNX Runtime's optimizer beyond layer norms and GELU
    name="modernbert", model_types=("modernbert",), tokenizer_class="PreTrainedTokenizerFast",
    tokenizer_files=("tokenizer.json",), input_names=WITHOUT_SEGMENTS, architecture="modernbert-base",
    hub_tokenizer="answerdotai/ModernBERT-base",
    tiny={"hidden_size": 32, "num_hidden_layers": 3, "num_attention_heads": 2, "intermediate_size": 64,
          "local_attention": 16},
))
