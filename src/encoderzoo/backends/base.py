"""The backend protocol and what a backend is built from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from encoderzoo.errors import ConfigError

DEFAULT_PROVIDERS: tuple[str, ...] = ()  # empty: chosen by the device (see encoderzoo.devices)


@dataclass(frozen=True)
class BackendContext:
    """What a backend is built from, in plain values (it travels to Ray actors): the model and
    what to run it on, nothing of the task."""

    checkpoint: str  # the folder the PyTorch weights load from
    auto_class: str  # the transformers class that loads them, e.g. AutoModelForSequenceClassification
    output_names: tuple[str, ...]  # the model outputs to return, in order
    graph: Path | None  # the artifact this backend and precision run (None: the checkpoint)
    threads: int  # intra-op threads
    providers: tuple[str, ...] = DEFAULT_PROVIDERS  # ONNX Runtime execution providers, in order
    options: Mapping[str, str] = field(default_factory=dict)  # this backend's --backend-option values
    device: str = "cpu"  # "cpu" or "cuda", resolved from --device
    explicit_device: bool = False  # the user asked for this device (no silent fallback)
    batch_size: int = 32  # the largest batch it will see (TensorRT profiles)
    seq_len: int = 128  # the longest sequence it will see
    buckets: tuple[int, ...] = ()  # the sequence buckets, if any
    cache_dir: Path = Path(".")  # where engines (TensorRT) are cached
    input_names: tuple[str, ...] = ()  # the model's inputs (TensorRT profiles name them)
    row_shape: tuple[int, ...] = ()  # what a row holds before its tokens (multiple choice: choices)
    graph_hash: str | None = None  # the graph's SHA-256: TensorRT engines are cached per graph
    trust_remote_code: bool = False  # the checkpoint's own code may run (the user asked)
    batches_only: bool = False  # only single batches will be run, never a whole dataset at once


class Backend(Protocol):
    name: str
    precision: str

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Outputs for one batch: {output name: array with the batch on axis 0}."""
        ...

    def settings(self) -> dict[str, Any]:
        """What the numbers depend on (threads, providers, graph), recorded in reports."""
        ...

    # Optional: run_all(batches, sink) keeps several batches in flight and calls
    # sink(rows, outputs) as each finishes; run_inference uses it when a backend has it.
    # Optional: close() frees what the backend holds, now (the pipeline calls it on release).


def flag(options: Mapping[str, str], key: str, default: bool) -> bool:
    """A true/false backend option."""
    value = options.get(key)
    if value is None:
        return default
    if value.lower() not in ("true", "false", "1", "0", "yes", "no"):

        raise ConfigError(f"option {key}={value!r}: use true or false")
    return value.lower() in ("true", "1", "yes")
