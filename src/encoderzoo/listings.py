"""The tables `encoderzoo recipes` and `encoderzoo families` print."""

from __future__ import annotations

import sys
from typing import Any

from encoderzoo.families import FAMILIES, WITHOUT_SEGMENTS
from encoderzoo.recipes import RECIPES


def print_table(table: Any) -> None:
    from rich.console import Console

    Console(width=None if sys.stdout.isatty() else 200).print(table)


def recipes_table() -> Any:
    from rich.table import Table

    table = Table("recipe", "kind", "task", "family", "seq", "batch sizes", "reference", "checkpoint")
    for r in sorted(RECIPES.values(), key=lambda r: r.kind != "task"):
        reference = ", ".join(f"{k} {100 * v:.2f}" for k, v in r.reference.items()) or "-"
        if r.kind == "task":
            family, source = "any (the checkpoint's)", "--checkpoint"
        else:
            family, source = r.family, r.checkpoint.hub_id or f"(embedded) {r.checkpoint.packaged}"
        sizes = ",".join(map(str, r.batch_sizes))
        table.add_row(r.name, r.kind, r.task, family, str(r.seq_len), sizes, reference, source)
    return table


def families_table() -> Any:
    from rich.table import Table

    table = Table("family", "model_type", "inputs", "tokenizer files", "random weights build")
    for f in FAMILIES.values():
        inputs = ", ".join(f.input_names)
        if f.segments_from_config:
            inputs = ", ".join(WITHOUT_SEGMENTS) + " (+ token_type_ids when type_vocab_size > 0)"
        table.add_row(f.name, ", ".join(f.model_types), inputs, ", ".join(f.tokenizer_files), f.architecture)
    return table
