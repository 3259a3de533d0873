"""export --triton: a Triton Inference Server model repository holding one of ONNX Runtime's
verified artifacts and its config.pbtxt, checked against Triton's own model-config schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from encoderzoo.backends import get_backend
from encoderzoo.console import step
from encoderzoo.context import RunContext
from encoderzoo.errors import ConfigError
from encoderzoo.fileio import check_replaceable
from encoderzoo.triton import model_name, write_repository

OPTIONS = ("device", "batch_sizes", "overwrite")  # what it reads of RunConfig (with the model's)


def run(
    ctx: RunContext,
    repository: Path,
    *,
    name: str | None = None,
    precision: str = "fp32",
    kind: str | None = None,
    max_batch_size: int | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """REPOSITORY/NAME with ONNX Runtime's artifact at `precision` (the fused fp32 graph by default)."""
    spec = get_backend("onnxruntime")
    if precision not in spec.precisions:
        raise ConfigError(f"--triton-precision is one of {', '.join(spec.precisions)}, not {precision!r}")
    name = model_name(name or ctx.recipe.name)
    check_replaceable(repository / name, "triton-model", overwrite=overwrite, option="--triton")
    artifact = spec.artifact(precision)
    graph = ctx.store.get(artifact)  # built on first use (with the graph it is made from)
    assert graph is not None  # every ONNX Runtime artifact is a graph
    ctx.store.verify(artifact)
    sizes = ctx.config.bench_settings().batch_sizes
    kind = kind or ("KIND_GPU" if ctx.device == "cuda" else "KIND_CPU")
    largest = max_batch_size or max(sizes)
    info = write_repository(
        graph,
        repository,
        name,
        max_batch_size=largest,
        kind=kind,
        preferred=sizes,
        tensorrt_fp16=precision == "fp16",
        overwrite=overwrite,
    )
    step(f"triton: {info['config']} ({kind}, max batch {largest}), checked with {info['validated_with']}")
    return info
