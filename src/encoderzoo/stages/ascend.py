"""export --ascend: the run folder's Ascend hand-off (ascend/: the graph ATC gets, run.sh with
the atc, ais_bench, msame and score lines), made from the verified export and the samples of
`prepare --format bin`, so that names, order, dtype and shapes cannot disagree."""

from __future__ import annotations

from typing import Any

from encoderzoo.ascend import write_handoff
from encoderzoo.console import step
from encoderzoo.context import RunContext
from encoderzoo.errors import ArtifactError
from encoderzoo.fileio import read_json

OPTIONS = ("batch_sizes", "overwrite")  # what it reads of RunConfig (with the model's)
GRAPH = "onnx"  # the plain export: ATC reads the standard ONNX domain only


def check_replaceable(ctx: RunContext, *, overwrite: bool = False) -> None:
    """Refuse, before anything is written, to replace a hand-off holding what the device made."""
    ws = ctx.ws
    kept = [p for p in (ws.ascend_dir / "om", ws.ascend_dir / "outputs") if p.is_dir() and any(p.iterdir())]
    if kept and not overwrite:
        raise ArtifactError(f"{kept[0]}: holds what the device made for the current hand-off; score it "
                            "(`bash ascend/run.sh` does) and move it away, or pass --overwrite to replace it")


def run(ctx: RunContext, *, soc_version: str = "Ascend310P3", overwrite: bool = False) -> dict[str, Any]:
    """RUN/ascend from the exported graph and RUN/bin/bin.json (which must be this prepared data's)."""
    ws = ctx.ws
    check_replaceable(ctx, overwrite=overwrite)
    written = ws.bin_dir / "bin.json"
    if not written.is_file():
        raise ArtifactError(f"{written}: no per-sample files to hand off; run `encoderzoo prepare "
                            f"{ctx.recipe.name} --out {ws.root} --format bin` first (same model options)")
    bin_info = read_json(written)
    if bin_info.get("prepare_key") != ctx.prepared.get("key"):
        raise ArtifactError(f"{written}: the samples were written for other prepared data; run `encoderzoo "
                            f"prepare {ctx.recipe.name} --out {ws.root} --format bin --overwrite` again")
    graph = ctx.store.get(GRAPH)
    assert graph is not None  # the export is a graph
    ctx.store.verify(GRAPH)
    info = write_handoff(graph, ws.ascend_dir, bin_info, batch_sizes=ctx.config.bench_settings().batch_sizes,
                         soc_version=soc_version, recipe=ctx.recipe.name, overwrite=overwrite)
    unlisted = info["unlisted_operators"]
    step(f"ascend: {ws.ascend_dir / 'run.sh'} (atc for batch {', '.join(map(str, info['batch_sizes']))}; "
         f"opset {info['opset']}; {info['samples']} samples of {', '.join(info['inputs'])}, {info['dtype']})"
         + (f"; not in ATC's operator list: {', '.join(unlisted)}" if unlisted else ""))
    return info
