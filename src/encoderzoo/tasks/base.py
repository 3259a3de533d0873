"""The task protocol: everything the pipeline needs to know about a dataset and its metric."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np

from encoderzoo.features import Features


class Task(Protocol):
    name: str
    model_kind: str  # which Hugging Face auto class loads the model, e.g. "sequence-classification"
    # model outputs in ONNX order, each with its dynamic axes, e.g. {"logits": {0: "batch"}}
    output_axes: dict[str, dict[int, str]]
    metric_names: tuple[str, ...]  # e.g. ("accuracy",)

    @property
    def output_names(self) -> tuple[str, ...]: ...

    def read(self, path: Path, *, limit: int | None = None) -> list[Any]:
        """Examples from a dataset file; a malformed file raises DataError naming file and row."""
        ...

    def encode(
        self, examples: list[Any], tokenizer: Any, *, seq_len: int, input_names: tuple[str, ...]
    ) -> Features:
        """Tokenize examples into features, keeping each example's id."""
        ...

    def check_model_config(self, config: Any, source: str) -> None:
        """Raise CheckpointError when the checkpoint cannot serve this task (e.g. label count)."""
        ...

    def save_examples(self, examples: list[Any], path: Path) -> None: ...

    def load_examples(self, path: Path) -> list[Any]: ...

    def score(self, examples: list[Any], outputs: dict[str, np.ndarray]) -> dict[str, float]:
        """Metrics (fractions in [0, 1]) from outputs aligned with `examples`."""
        ...

    def agreement(self, outputs: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> float:
        """Fraction of examples whose prediction is the same under both sets of outputs."""
        ...

    def write_predictions(
        self, examples: list[Any], outputs: dict[str, np.ndarray], path: Path
    ) -> None:
        """One prediction per example, next to its id."""
        ...
