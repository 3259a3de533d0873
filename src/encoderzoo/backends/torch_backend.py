"""PyTorch eager: float32, the reference every other backend is compared with, and bfloat16
through CPU autocast."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from encoderzoo.backends.base import BackendContext
from encoderzoo.checkpoints import load_model


class TorchBackend:
    name = "torch"

    def __init__(self, context: BackendContext, precision: str) -> None:
        import torch

        torch.set_num_threads(context.threads)
        self.precision = precision
        self._torch = torch
        self._output_names = context.task.output_names
        self._model = load_model(context.checkpoint, context.task)  # transformers picks SDPA where it can

    def _autocast(self) -> Any:
        if self.precision == "bf16":
            return self._torch.autocast("cpu", dtype=self._torch.bfloat16)
        return contextlib.nullcontext()

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self._torch
        with torch.inference_mode(), self._autocast():
            out = self._model(**{k: torch.from_numpy(v) for k, v in feeds.items()}, return_dict=True)
        return {name: out[name].float().numpy() for name in self._output_names}

    def settings(self) -> dict[str, Any]:
        return {
            "threads": self._torch.get_num_threads(),
            "attention": self._model.config._attn_implementation,
            "autocast": "bfloat16" if self.precision == "bf16" else None,
            "torch": self._torch.__version__,
        }


def create(context: BackendContext, precision: str) -> TorchBackend:
    return TorchBackend(context, precision)
