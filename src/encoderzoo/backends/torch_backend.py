"""PyTorch eager: float32, the reference every other backend is compared with; bfloat16 through
autocast; float16 weights on a CUDA GPU. The model runs on the resolved device (CPU or CUDA)."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from encoderzoo.backends.base import BackendContext
from encoderzoo.checkpoints import load_weights


class TorchBackend:
    name = "torch"

    def __init__(self, context: BackendContext, precision: str) -> None:
        import torch

        torch.set_num_threads(context.threads)
        self.precision = precision
        self._torch = torch
        self._device = torch.device("cuda" if context.device == "cuda" else "cpu")
        self._output_names = context.output_names
        model = load_weights(context.checkpoint, context.auto_class,  # transformers picks SDPA where it can
                             trust_remote_code=context.trust_remote_code)
        if precision == "fp16":
            model = model.half()
        self._model = model.to(self._device)

    def _autocast(self) -> Any:
        if self.precision == "bf16":
            return self._torch.autocast(self._device.type, dtype=self._torch.bfloat16)
        return contextlib.nullcontext()

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self._torch
        inputs = {k: torch.from_numpy(v).to(self._device, non_blocking=True) for k, v in feeds.items()}
        with torch.inference_mode(), self._autocast():
            out = self._model(**inputs, return_dict=True)
        return {name: out[name].float().cpu().numpy() for name in self._output_names}

    def settings(self) -> dict[str, Any]:
        return {
            "threads": self._torch.get_num_threads(),
            "device": str(self._device),
            "attention": self._model.config._attn_implementation,
            "autocast": "bfloat16" if self.precision == "bf16" else None,
            "weights": "float16" if self.precision == "fp16" else "float32",
            "torch": self._torch.__version__,
        }


def create(context: BackendContext, precision: str) -> TorchBackend:
    return TorchBackend(context, precision)
