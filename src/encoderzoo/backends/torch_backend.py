"""PyTorch eager in float32: the reference every other backend is compared with."""

from __future__ import annotations

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

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self._torch
        with torch.inference_mode():
            out = self._model(**{k: torch.from_numpy(v) for k, v in feeds.items()}, return_dict=True)
        return {name: out[name].float().numpy() for name in self._output_names}

    def settings(self) -> dict[str, Any]:
        return {
            "threads": self._torch.get_num_threads(),
            "attention": self._model.config._attn_implementation,
            "torch": self._torch.__version__,
        }


def create(context: BackendContext, precision: str) -> TorchBackend:
    return TorchBackend(context, precision)
