"""The backend protocol and what a backend is built from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from encoderzoo.checkpoints import Checkpoint
from encoderzoo.tasks.base import Task

DEFAULT_PROVIDERS = ("CPUExecutionProvider",)


@dataclass(frozen=True)
class BackendContext:
    checkpoint: Checkpoint
    task: Task
    graph: Path | None  # the artifact this backend and precision run (None: the checkpoint)
    threads: int  # intra-op threads
    providers: tuple[str, ...] = DEFAULT_PROVIDERS  # ONNX Runtime execution providers, in order


class Backend(Protocol):
    name: str
    precision: str

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Outputs for one batch: {output name: array with the batch on axis 0}."""
        ...

    def settings(self) -> dict[str, Any]:
        """What the numbers depend on (threads, providers, graph), recorded in reports."""
        ...
