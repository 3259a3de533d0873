"""The device runners' side of a run (Ascend's ais_bench and msame): `prepare --format bin`
writes the prepared rows as per-sample files with their gold labels, recording which prepared
data they are; `score --outputs` scores what a runner wrote back for exactly those samples."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from encoderzoo.context import RunContext
from encoderzoo.errors import ArtifactError, ConfigError
from encoderzoo.evaluation import DEVICE, evaluate
from encoderzoo.fileio import read_json, write_json
from encoderzoo.infer import save_outputs
from encoderzoo.interop import detect_layout, read_outputs, write_bin


def write_samples(ctx: RunContext, dtype: str = "int64", *, overwrite: bool = False) -> dict[str, Any]:
    features, examples = ctx.features(), ctx.examples()
    by_id = {e.id: e for e in examples}
    labels = [ctx.task.gold_label(by_id[i]) for i in features.example_ids]
    return write_bin(
        features, ctx.ws.bin_dir, dtype, labels, prepare_key=ctx.prepared["key"], overwrite=overwrite
    )


def current_samples(ctx: RunContext, dtype: str | None, *, overwrite: bool = False) -> dict[str, Any] | None:
    """bin.json when the run folder's samples are this prepared data's (and of `dtype`, when
    given), else None: they are to be written (again). A `dtype` other than theirs is an error
    without `overwrite`."""
    written = ctx.ws.bin_dir / "bin.json"
    recorded = read_json(written) if written.is_file() else None
    if recorded is None or overwrite:
        return None
    if dtype is not None and recorded.get("dtype") != dtype:
        raise ConfigError(f"{written}: the samples are {recorded.get('dtype')}, not {dtype}; leave out "
                          "--bin-dtype to hand them off, or add --overwrite to write them again")
    current = ctx.ws.features.is_file() and recorded.get("prepare_key") == ctx.prepared.get("key")
    return recorded if current else None


def score_outputs(
    ctx: RunContext, folder: Path, *, layout: str = "auto", dtype: str = "float32"
) -> dict[str, Any]:
    """Metrics in percent of the outputs a runner wrote for the samples of `prepare --format
    bin`, beside torch fp32's when the run folder has them. The outputs are kept in the run
    folder (device/NAME.npz) and scored as a row of it: accuracy.json, gated like every other."""
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
    name = device_name(layout, folder)
    save_outputs(ws.device_outputs(name), features.example_ids, outputs)
    write_json(ws.device_outputs(name).with_suffix(".json"),
               {"name": name, "layout": layout, "folder": str(folder), "samples": len(features),
                "prepare_key": ctx.prepared["key"], "scored": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    path = ws.predictions(DEVICE, name, ctx.task.predictions_suffix)
    result: dict[str, Any] = {"layout": layout, "row": f"{DEVICE} {name}", "samples": len(features),
                              "examples": len(examples)}
    if not ws.infer_json.is_file():  # no run to be a row of: these outputs alone, scored
        predictions = ctx.task.predict(examples, features, outputs)
        ctx.task.write_predictions(examples, predictions, outputs, path)
        metrics = ctx.task.score(examples, predictions).metrics
        return result | {k: 100 * v for k, v in metrics.items()} | {"predictions": str(path)}
    rows = {(r["backend"], r["precision"]): r for r in evaluate(ctx)["rows"]}  # gated like every row
    row = rows[(DEVICE, name)]
    result |= {k: 100 * v for k, v in row["metrics"].items()} | {"predictions": str(path)}
    if ctx.reference_run in rows:
        result["torch_fp32"] = {k: 100 * v for k, v in rows[ctx.reference_run]["metrics"].items()}
    result |= {"gate_passed": row["gate_passed"], "failures": row["failures"],
               "vs_reference": row["vs_torch"]}
    return result


def device_name(layout: str, folder: Path) -> str:
    """The row's name: the output folder's (ais_bench_bs8), else the runner's layout."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", folder.resolve().name).strip("._")
    return name or layout
