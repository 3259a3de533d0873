"""What differs between model families, declared once per family."""

from __future__ import annotations

from dataclasses import dataclass

from encoderzoo.registry import Registry


@dataclass(frozen=True)
class Family:
    name: str
    model_types: tuple[str, ...]  # accepted `config.model_type` values
    input_names: tuple[str, ...] = ("input_ids", "attention_mask", "token_type_ids")
    ort_model_type: str = "bert"  # onnxruntime.transformers optimizer's model_type


FAMILIES: Registry[Family] = Registry("model family")


def register_family(family: Family) -> Family:
    return FAMILIES.register(family.name, family)


def get_family(name: str) -> Family:
    return FAMILIES[name]


BERT = register_family(Family(name="bert", model_types=("bert",)))
