"""What differs between model families, declared once per family."""

from __future__ import annotations

from dataclasses import dataclass

from encoderzoo.errors import ConfigError


@dataclass(frozen=True)
class Family:
    name: str
    model_types: tuple[str, ...]  # accepted `config.model_type` values
    input_names: tuple[str, ...] = ("input_ids", "attention_mask", "token_type_ids")
    ort_model_type: str = "bert"  # onnxruntime.transformers optimizer's model_type


FAMILIES: dict[str, Family] = {}


def register_family(family: Family) -> Family:
    if family.name in FAMILIES:
        raise ValueError(f"family {family.name!r} is already registered")
    FAMILIES[family.name] = family
    return family


def get_family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise ConfigError(f"unknown model family {name!r}; known: {', '.join(FAMILIES)}") from None


BERT = register_family(Family(name="bert", model_types=("bert",)))
