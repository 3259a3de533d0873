"""quantize: the reduced-precision artifacts (see encoderzoo.artifacts), built on first use from
the graph each is declared to come from, calibrated on prepared rows spread over the data when
the kind is calibrated, and recorded with their key and SHA-256."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from encoderzoo import quantize
from encoderzoo.artifacts import ARTIFACTS, ArtifactKind
from encoderzoo.backends import get_backend
from encoderzoo.bench import synthetic_features
from encoderzoo.console import step
from encoderzoo.context import RunContext
from encoderzoo.environment import free_memory
from encoderzoo.fileio import read_json, write_json


def calibration_for(ctx: RunContext, kind: ArtifactKind) -> quantize.Calibration:
    """The calibration items of a calibrated kind (None for the others): rows spread over the
    prepared data, or synthetic inputs without any."""
    if not kind.calibrated:
        return None
    features = (ctx.features() if ctx.ws.features.is_file()
                else synthetic_features(ctx.input_names, int(ctx.checkpoint.config.vocab_size), 128))
    # one row per calibration item: NNCF's peak memory grows with the item's size (base BERT
    # on SQuAD windows: 2.0 GB with single rows, 4.6 GB with batches of 8), not their number
    return quantize.calibration_feeds(features, ctx.config.calibration_size, batch_size=1)


def build(ctx: RunContext, kind: ArtifactKind, exclude: Sequence[str] = ()) -> dict[str, Any]:
    """Build (or rebuild, leaving the `exclude` nodes in float) the artifact of `kind`."""
    store = ctx.store
    assert kind.built_from is not None
    source = store.opened(kind.built_from)
    assert source is not None  # the graphs are exported before anything is quantized
    store.verify(kind.built_from)
    path = store.files(kind.name)[0]
    calibration = calibration_for(ctx, kind)
    if calibration is not None:
        step(f"quantize: {kind.name} from {source.name}, calibrated on {len(calibration)} rows")
    else:
        step(f"quantize: {kind.name} from {source.name}")
    record = store.method(kind.name)(source, path, calibration=calibration, exclude=exclude)
    if calibration is not None:
        record["calibration"] = (
            "prepared examples spread over the data" if ctx.ws.features.is_file() else "synthetic inputs"
        )
    record |= {
        "bytes": sum(f.stat().st_size for f in store.files(kind.name) if f.is_file()),
        "key": store.build_key(kind.name),
        "sha256": store.sha256(kind.name),
    }
    entries = read_json(store.record_path(kind.name)) if store.record_path(kind.name).is_file() else {}
    write_json(store.record_path(kind.name), entries | {kind.name: record})
    free_memory()  # what the quantizer held (NNCF kept ~0.9 GB of a base model) before a runtime loads
    return record  # type: ignore[no-any-return]


def plan(ctx: RunContext) -> list[tuple[str, str, str]]:
    from encoderzoo.stages.export import current as exported

    kinds = dict.fromkeys(get_backend(n).artifact(p) for n, p in ctx.runs)
    stages = []
    for name in kinds:
        if ARTIFACTS[name].stage != "quantize":
            continue
        current = exported(ctx) and ctx.store.current(name)
        stages.append(
            ("quantize", f"{name} ({ctx.store.files(name)[0].name})", "reuse" if current else "build")
        )
    return stages
