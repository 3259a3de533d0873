"""Precisions, declared once: what a backend runs at and an artifact holds, and the GEMM ceiling
a run of it is held against (see encoderzoo.ceiling). Adding a precision: one `register_precision`."""

from __future__ import annotations

from dataclasses import dataclass

from encoderzoo.registry import Registry


@dataclass(frozen=True)
class Precision:
    name: str
    description: str
    ceiling: str | None  # the GEMM rate it is held against (fp32, bf16, int8); None: not rated


PRECISIONS: Registry[Precision] = Registry("precision")


def register_precision(precision: Precision) -> Precision:
    return PRECISIONS.register(precision.name, precision)


def ceiling_kind(name: str) -> str | None:
    """The ceiling a run at precision `name` is held against (an unknown precision: none, rather
    than a wrong one)."""
    return PRECISIONS[name].ceiling if name in PRECISIONS else None


def ceiling_kinds() -> set[str]:
    """Every ceiling some precision is held against."""
    return {p.ceiling for p in PRECISIONS.values() if p.ceiling}


register_precision(Precision("fp32", "float32 weights and compute (the reference)", "fp32"))
register_precision(Precision("bf16", "bfloat16 compute", "bf16"))
register_precision(Precision("fp16", "float16 weights and compute (GPUs)", "fp32"))
register_precision(Precision("int8", "int8 weights, activations quantized at run time", "int8"))
register_precision(Precision("int8-block", "int8 weights and activations per block of 128 channels",
                             "int8"))
register_precision(Precision("int8-token", "int8 weights per channel, activations quantized per token (or "
                             "per group of a token's channels) at run time", "int8"))
register_precision(Precision("int8-static", "int8 weights and activations, ranges calibrated ahead",
                             "int8"))
