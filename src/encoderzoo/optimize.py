"""Graph optimization with ONNX Runtime's transformer optimizer (attention, LayerNorm, GELU
fusion), recording which fused operators it produced."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from encoderzoo.fileio import atomic_path


@dataclass(frozen=True)
class OptimizeResult:
    fused_ops: dict[str, int]  # fused operator -> count (only those present)
    seconds: float


def optimize_onnx(src: Path, dst: Path, *, model_type: str, config: Any) -> OptimizeResult:
    """Fuse `src` into `dst` for ONNX Runtime (opt_level 0: Python fusions only, so the file
    stays portable across execution providers; sessions apply their own level at load)."""
    from onnxruntime.transformers.optimizer import optimize_model

    start = time.perf_counter()
    optimized = optimize_model(
        str(src), model_type=model_type, num_heads=int(config.num_attention_heads),
        hidden_size=int(config.hidden_size), opt_level=0,
    )
    stats = optimized.get_fused_operator_statistics()
    with atomic_path(dst) as tmp:
        optimized.save_model_to_file(str(tmp))
    fused = {op: int(count) for op, count in stats.items() if count}
    return OptimizeResult(fused_ops=fused, seconds=time.perf_counter() - start)
