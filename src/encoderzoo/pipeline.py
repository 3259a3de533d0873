"""The chain: the stages in order, the `--dry-run` plan assembled from each stage's own lines,
and the run folder's life (lock, partial folder, publication).

Every stage reads its inputs from the run folder (through a RunContext) and writes its outputs
there, so that the stages also run one at a time from the CLI."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Protocol

from encoderzoo.config import RunConfig
from encoderzoo.console import step
from encoderzoo.context import RunContext
from encoderzoo.errors import CheckpointError, EncoderzooError, with_note
from encoderzoo.fileio import check_replaceable, mark, publish, read_json
from encoderzoo.stages import bench, infer, prepare, report, score, triage
from encoderzoo.workspace import (
    RUN,
    Workspace,
    check_inputs,
    check_out,
    check_run_folder,
    clean_temporary,
    clear,
    has_work,
    locked,
    partial_folder,
    recover,
    seed_from,
)

STAGES: tuple[Any, ...] = (prepare, infer, score, triage, bench, report)  # the chain, in order


class Stage(Protocol):
    """What a stage module declares: the RunConfig fields it reads (the CLI offers those), what it
    would do (--dry-run) and its run; `wanted(ctx)`, where present, says whether it runs."""

    OPTIONS: tuple[str, ...]

    def run(self, ctx: RunContext) -> dict[str, Any]: ...

    def plan(self, ctx: RunContext) -> list[tuple[str, str, str]]: ...


def wanted(stage: Any, ctx: RunContext) -> bool:
    return bool(getattr(stage, "wanted", lambda _: True)(ctx))


def plan(ctx: RunContext) -> list[tuple[str, str, str]]:
    """(stage, what it would do, build/reuse) for `run --dry-run`: nothing is built or downloaded.
    Artifacts appear where the stage that first needs them would build them."""
    stages = [("backends", note, "skip") for note in ctx.validate()]
    for stage in STAGES:
        stages += stage.plan(ctx)
    return stages


def run_all(ctx: RunContext) -> bool:
    """Every stage in order (the artifacts each needs are built on first use); returns whether
    all gates passed."""
    for note in ctx.validate():
        step(f"backends: {note}")
    for stage in STAGES:
        if wanted(stage, ctx):
            stage.run(ctx)
    return bool(read_json(ctx.ws.accuracy_json)["gate_passed"])


def run(config: RunConfig) -> tuple[bool, Path]:
    """The whole chain into `config.out`, built in a hidden partial folder and published in place
    of `out` (one atomic exchange) only when complete. The folder's lock, beside it, is held from
    before the partial folder is looked at until after the exchange. An interrupted run, or one
    that fails after prepare, leaves the partial folder for `--resume`; bad input found before
    anything was done removes it. Artifacts of an earlier run in `out` are reused where their
    keys match. Returns (all gates passed, report path)."""
    out = config.out_folder
    check_out(out, replaced=True)
    partial = partial_folder(out)
    with locked(out):
        recover(out)
        check_run_folder(out, overwrite=config.overwrite, inputs=config.protected_paths)
        if partial.exists():
            check_replaceable(partial, RUN, overwrite=config.overwrite, option="the partial run folder")
        ctx = RunContext(config, Workspace(partial))
        ctx.validate()  # nothing is written before the options are known to be runnable
        check_inputs(out, ctx.inputs())  # the hub snapshot, the cached data... as resolved
        resumable = partial.is_dir() and has_work(partial)
        if resumable and not config.resume:
            step(f"run: discarding the unfinished run in {partial} (pass --resume to continue it)")
            clear(partial)
            resumable = False
        elif config.resume:
            step(f"run: resuming the unfinished run in {partial}" if resumable
                 else "run: nothing to resume; starting afresh")
        partial.mkdir(parents=True, exist_ok=True)
        mark(partial, RUN)
        for leftover in clean_temporary(partial):
            step(f"run: removed {leftover.relative_to(partial)}, left by a stopped run")
        if out.is_dir():
            seed_from(out, partial)
        try:
            passed = run_all(ctx)
        except EncoderzooError as err:
            # bad input: found before anything was done, or a model that can never load
            if not resumable and (not ctx.ws.prepare_json.is_file() or isinstance(err, CheckpointError)):
                shutil.rmtree(partial, ignore_errors=True)
                raise
            raise with_note(err, f"the finished stages are kept in {partial}: fix the cause and rerun "
                                 "with --resume") from None
        check_inputs(out, ctx.inputs())  # with the data files prepare read
        publish(partial, out)
    return passed, Workspace(out).report_md
