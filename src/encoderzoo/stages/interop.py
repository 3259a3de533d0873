"""The device runners' side of a run (Ascend's ais_bench and msame): `prepare --format bin`
writes the prepared rows as per-sample files with their gold labels, recording which prepared
data they are; `score --outputs` scores what a runner wrote back for exactly those samples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from encoderzoo.context import RunContext
from encoderzoo.errors import ArtifactError
from encoderzoo.fileio import read_json
from encoderzoo.interop import detect_layout, read_outputs, write_bin


def write_samples(ctx: RunContext, dtype: str = "int64", *, overwrite: bool = False) -> dict[str, Any]:
    features, examples = ctx.features(), ctx.examples()
    by_id = {e.id: e for e in examples}
    labels = [ctx.task.gold_label(by_id[i]) for i in features.example_ids]
    return write_bin(
        features, ctx.ws.bin_dir, dtype, labels, prepare_key=ctx.prepared["key"], overwrite=overwrite
    )


def score_outputs(
    ctx: RunContext, folder: Path, *, layout: str = "auto", dtype: str = "float32"
) -> dict[str, Any]:
    """Metrics in percent of the outputs a runner wrote for the samples of `prepare --format
    bin`, beside torch fp32's when the run folder has them."""
    features, examples, ws = ctx.features(), ctx.examples(), ctx.ws
    written = ws.bin_dir / "bin.json"
    if not written.is_file():
        raise ArtifactError(
            f"{written}: no samples were written here; run `encoderzoo prepare --format "
            "bin` first, then the device runner on them"
        )
    if read_json(written).get("prepare_key") != ctx.prepared["key"]:
        raise ArtifactError(
            f"{written}: the samples in {ws.bin_dir} were written for other prepared data "
            "(another checkpoint, dataset or options); run `encoderzoo prepare --format bin` "
            "again and the device runner on its samples"
        )
    shapes = ctx.task.output_shapes(ctx.source.checkpoint().config, features.seq_len)
    layout = detect_layout(folder) if layout == "auto" else layout
    outputs = read_outputs(
        folder, len(features), shapes, layout=layout, dtype=dtype, not_before=written.stat().st_mtime
    )
    predictions = ctx.task.predict(examples, features, outputs)
    path = ws.predictions("device", layout, ctx.task.predictions_suffix)
    ctx.task.write_predictions(examples, predictions, outputs, path)
    metrics = ctx.task.score(examples, predictions).metrics
    result: dict[str, Any] = {
        "layout": layout,
        "samples": len(features),
        "examples": len(examples),
        **{k: 100 * v for k, v in metrics.items()},
        "predictions": str(path),
    }
    if ws.accuracy_json.is_file():
        for row in read_json(ws.accuracy_json)["rows"]:
            if (row["backend"], row["precision"]) == ctx.reference_run:
                result["torch_fp32"] = {k: 100 * v for k, v in row["metrics"].items()}
    return result
