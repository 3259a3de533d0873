"""Original research checkpoint formats → Hugging Face folders. One module per format."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from encoderzoo.checkpoints import quiet_transformers
from encoderzoo.convert.base import write_folder
from encoderzoo.fileio import check_replaceable
from encoderzoo.registry import Registry


@dataclass(frozen=True)
class Format:
    name: str
    description: str
    module: str  # has convert(source, *, config_path, head) -> Converted
    family: str  # the model family the result belongs to


FORMATS: Registry[Format] = Registry("checkpoint format")
for _format in (
    Format("fairseq-roberta", "fairseq RoBERTa checkpoint.pt/model.pt with a classification head",
           "encoderzoo.convert.fairseq_roberta", "roberta"),
    Format("deberta", "microsoft/DeBERTa v2/v3 state dict (pytorch.model-*.bin) + model_config.json",
           "encoderzoo.convert.deberta", "deberta-v2"),
    Format("albert-pytorch", "albert_pytorch (lonePatient) pytorch_model.bin + config.json",
           "encoderzoo.convert.albert_pytorch", "albert"),
    Format("spanbert", "SpanBERT release pytorch_model.bin (bert.*, qa_outputs.*) + config.json",
           "encoderzoo.convert.spanbert", "bert"),
):
    FORMATS.register(_format.name, _format)


def convert_checkpoint(
    fmt: str, source: Path, out: Path, *, config: Path | None = None, tokenizer: Path | None = None,
    labels: tuple[str, ...] | None = None, head: str | None = None, overwrite: bool = False,
) -> dict[str, Any]:
    """Convert `source` into the Hugging Face folder `out`; returns what was done."""

    check_replaceable(out, "converted-checkpoint", overwrite=overwrite)  # before reading anything
    quiet_transformers()
    spec = FORMATS[fmt]
    converted = importlib.import_module(spec.module).convert(source, config_path=config, head=head)
    return write_folder(converted, out, fmt=fmt, tokenizer=tokenizer, labels=labels, overwrite=overwrite)
