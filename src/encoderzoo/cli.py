"""The command line: commands only. Their options come from RunConfig's fields (declared once,
see encoderzoo.cli_options), and each command offers the fields its stages declare they read
(a stage module's OPTIONS; an artifact kind's for `export` and `optimize`); each command builds a
RunConfig, makes one call and prints. Heavy runtimes are imported where they are used, so
`--help` answers at once."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from encoderzoo.artifacts import ARTIFACTS
from encoderzoo.backends import BACKENDS as REGISTERED
from encoderzoo.cli_options import FIELDS, command, own
from encoderzoo.cli_serve import serve as serve_command
from encoderzoo.config_file import to_toml
from encoderzoo.context import RunContext
from encoderzoo.convert import convert_checkpoint
from encoderzoo.errors import ConfigError, EncoderzooError
from encoderzoo.fileio import read_json
from encoderzoo.listings import families_table, print_table, recipes_table
from encoderzoo.options import MODEL
from encoderzoo.pipeline import plan, run
from encoderzoo.stages import ascend as ascend_stage
from encoderzoo.stages import bench, infer, interop, prepare, report, score, triage
from encoderzoo.stages import triton as triton_stage
from encoderzoo.workspace import Workspace, check_out, check_run_folder, partial_folder, stage_folder

app = typer.Typer(
    name="encoderzoo",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Fine-tuned BERT-family checkpoint + task data in; a verified, optimized, benchmarked "
    "inference artifact out.",
)
_state = {"debug": False}
GATE_FAILED_EXIT = 3


def _stage(ctx: typer.Context, config: Any) -> RunContext:
    """A RunContext over the run folder, locked (and proven ours) until the command ends."""
    return RunContext(config, ctx.with_resource(stage_folder(config.out, overwrite=config.overwrite)))


def _exit_on_gate(passed: bool, report_md: Path | None = None) -> None:
    if not passed:
        if report_md is not None:
            typer.echo(f"accuracy gate failed; see {report_md}", err=True)
        raise typer.Exit(GATE_FAILED_EXIT)


def _options(*groups: tuple[str, ...]) -> tuple[str, ...]:
    """The fields of several declarations, each once, in order."""
    return tuple(dict.fromkeys(f for group in groups for f in group))


@app.callback()
def _root(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False) -> None:
    _state["debug"] = debug


@app.command()
def recipes() -> None:
    """List the built-in recipes: task presets (any checkpoint) and seed presets."""
    print_table(recipes_table())


@app.command()
def families() -> None:
    """List the model families encoderzoo runs: the config model types, graph inputs, tokenizer
    files and the base architecture `--random-weights --family` builds."""
    print_table(families_table())


@app.command()
def backends() -> None:
    """List the registered backends and their precisions."""
    for spec in REGISTERED.values():
        typer.echo(f"{spec.name:<12} {','.join(spec.precisions):<10} {spec.description}")


def _run(ctx: typer.Context, config: Any, dry_run: bool) -> None:
    """The whole chain: prepare → infer → score (→ triage) → bench → report, the artifacts
    (export, fused graph, int8 kinds) built where first needed."""
    if dry_run:
        _print_plan(config)
        return
    passed, report_md = run(config)
    typer.echo(report_md.read_text(encoding="utf-8"))
    typer.echo(f"report: {report_md}")
    _exit_on_gate(passed, report_md)


def _print_plan(config: Any) -> None:
    check_out(config.out, replaced=True)  # as `run` would
    check_run_folder(config.out, overwrite=config.overwrite, inputs=config.protected_paths)
    partial = partial_folder(config.out_folder)
    folder = partial if config.resume and partial.is_dir() else config.out
    typer.echo("# encoderzoo run --dry-run: the resolved configuration (a --config file)\n")
    typer.echo(to_toml(config.to_json()))
    typer.echo(f"# stages, in order (run folder {config.out}; artifacts checked in {folder}):")
    for stage, what, status in plan(RunContext(config, Workspace(folder))):
        typer.echo(f"#   {stage:<9} [{status}] {what}")


command(app, "run", tuple(FIELDS), _run, extra=own("dry_run"))


def _prepare(ctx: typer.Context, config: Any, fmt: str, bin_dtype: str) -> None:
    """Read the dataset and tokenize it with the checkpoint's tokenizer."""
    if fmt not in ("npz", "bin"):
        raise ConfigError(f"--format is npz or bin, not {fmt!r}")
    run_ctx = _stage(ctx, config)
    prepare.run(run_ctx)
    if fmt == "bin":
        info = interop.write_samples(run_ctx, bin_dtype, overwrite=config.overwrite)
        typer.echo(
            f"wrote {info['samples']} samples x {len(info['inputs'])} inputs ({', '.join(info['inputs'])}, "
            f"{info['dtype']}, {info['seq_len']} tokens) to {run_ctx.ws.bin_dir}"
        )


command(app, "prepare", prepare.OPTIONS, _prepare, extra=own("fmt", "bin_dtype"))


def _export(ctx: typer.Context, config: Any, triton: Path | None, triton_name: str | None,
            triton_precision: str, triton_kind: str | None, triton_max_batch: int | None, ascend: bool,
            soc_version: str, handoff_dtype: str | None) -> None:
    """Export to ONNX and check it against PyTorch on prepared inputs (reused when the run folder
    holds the export of these exact weights); with --triton, a serving repository; with --ascend,
    the Ascend hand-off (ATC, ais_bench, msame and score lines over the per-sample files)."""
    run_ctx = _stage(ctx, config)
    if ascend:
        ascend_stage.check_replaceable(run_ctx, overwrite=config.overwrite)
        _bin_samples(run_ctx, handoff_dtype, overwrite=config.overwrite)
    if run_ctx.ws.features.is_file() or triton is None:
        run_ctx.store.get("onnx")
    if triton is not None:
        info = triton_stage.run(run_ctx, triton, name=triton_name, precision=triton_precision,
                                kind=triton_kind, max_batch_size=triton_max_batch, overwrite=config.overwrite)
        typer.echo(f"wrote {info['config']}")
    if ascend:
        ascend_stage.run(run_ctx, soc_version=soc_version, overwrite=config.overwrite)
        typer.echo(f"wrote {run_ctx.ws.ascend_dir / 'run.sh'}")


def _bin_samples(run_ctx: RunContext, dtype: str | None, *, overwrite: bool) -> None:
    """The per-sample files the hand-off names: those in the run folder when they are this
    prepared data's, else prepared and written now."""
    recorded = interop.current_samples(run_ctx, dtype, overwrite=overwrite)
    if recorded is None:
        prepare.run(run_ctx)
        interop.write_samples(run_ctx, dtype or "int64", overwrite=overwrite)


command(app, "export", _options(MODEL, ARTIFACTS["onnx"].options, triton_stage.OPTIONS, prepare.OPTIONS),
        _export, extra=own("triton", "triton_name", "triton_precision", "triton_kind", "triton_max_batch",
                           "ascend", "soc_version", "handoff_dtype"))


def _optimize(ctx: typer.Context, config: Any) -> None:
    """Fuse the exported graph (attention, LayerNorm, GELU) and check it again."""
    _stage(ctx, config).store.get("onnx-fused")


command(app, "optimize", _options(("checkpoint", "trust_remote_code"), ARTIFACTS["onnx-fused"].options),
        _optimize)


def _infer(ctx: typer.Context, config: Any) -> None:
    """Run every prepared example through each backend; save outputs and predictions (finished
    runs with the same model, data and batching are reused)."""
    infer.run(_stage(ctx, config))


command(app, "infer", infer.OPTIONS, _infer)


def _score(ctx: typer.Context, make_config: Any, predictions: Path | None, na_probs: Path | None,
           outputs: Path | None, layout: str, output_dtype: str) -> None:
    """Score a run folder's outputs (exit 3 when a gate fails), a device runner's outputs, or a
    predictions file against the gold data, as the official evaluation scripts do."""
    if predictions is not None:  # a task's name or a recipe's, and the gold files: no run folder
        name, data = ctx.params["recipe"], tuple(ctx.params.get("data") or ())
        if not name:
            raise ConfigError("name the recipe or task whose gold data --predictions is scored against")
        typer.echo(json.dumps(score.score_predictions(name, predictions, data, na_probs=na_probs), indent=2))
        return
    if na_probs is not None:
        raise ConfigError("--na-probs goes with --predictions (`score squad2 --predictions P --na-probs F`)")
    if ctx.params.get("data"):  # a run folder is scored on the data it was prepared with
        raise ConfigError("--data goes with --predictions; a run folder's outputs are scored against the "
                          "data it was prepared with: to score other data, run `encoderzoo run` (or prepare, "
                          "infer and score) with --data on another --out")
    run_ctx = _stage(ctx, make_config())
    if outputs is not None:
        scores = interop.score_outputs(run_ctx, outputs, layout=layout, dtype=output_dtype)
        report.refresh(run_ctx.ws)  # the row beside the others
        typer.echo(json.dumps(scores, indent=2))
        _exit_on_gate(scores.get("gate_passed", True))
        return
    _exit_on_gate(bool(score.run(run_ctx)["gate_passed"]))


command(app, "score", _options(score.OPTIONS, ("data",)), _score, lazy=True,  # --data: for --predictions
        recipe_help="Recipe name; with --predictions also a task name (sst2, mnli, squad, ner, ...).",
        extra=own("predictions", "na_probs", "outputs", "layout", "output_dtype"))


def _triage(ctx: typer.Context, config: Any) -> None:
    """Re-quantize the scored int8 models that missed their gate; exit 3 if one still does."""
    run_ctx = _stage(ctx, config)
    score.run(run_ctx)  # with this command's gate
    triage.run(run_ctx)
    _exit_on_gate(bool(read_json(run_ctx.ws.accuracy_json)["gate_passed"]))


command(app, "triage", _options(score.OPTIONS, triage.OPTIONS), _triage)


def _bench(ctx: typer.Context, config: Any) -> None:
    """Sweep batch sizes x sequence lengths; latency percentiles and throughput. The graphs are
    built first when the run folder has none of this checkpoint yet."""
    run_ctx = _stage(ctx, config)
    bench.run(run_ctx)
    report.run(run_ctx)
    typer.echo(run_ctx.ws.report_md.read_text(encoding="utf-8"))


command(app, "bench", _options(bench.OPTIONS, report.OPTIONS), _bench)


def _report(ctx: typer.Context, config: Any) -> None:
    """Write report.json, report.md and the throughput plot from the stages' results."""
    run_ctx = _stage(ctx, config)
    report.run(run_ctx)
    typer.echo(run_ctx.ws.report_md.read_text(encoding="utf-8"))


command(app, "report", report.OPTIONS, _report)


app.command()(serve_command)


@app.command()
def convert(
    fmt: Annotated[str, typer.Argument(metavar="FORMAT", help="fairseq-roberta | deberta | albert-pytorch | "
                                                              "spanbert")],
    source: Annotated[Path, typer.Argument(help="The original checkpoint file or its folder.")],
    out: Annotated[Path, typer.Option("--out", help="The Hugging Face folder to write.")],
    config: Annotated[Path | None, typer.Option("--config", help=escape(
        "The original config JSON [default: found beside the weights]."))] = None,
    tokenizer: Annotated[Path | None, typer.Option(
        "--tokenizer", help="A folder whose tokenizer files are copied into the result.")] = None,
    labels: Annotated[str | None, typer.Option("--labels", help="The class names in class order.")] = None,
    head: Annotated[str | None, typer.Option("--head", help=escape(
        "fairseq: which classification head [default: the only one]."))] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help=FIELDS["overwrite"][1].help)] = False,
) -> None:
    """Convert an original research checkpoint into a Hugging Face folder (weights_only loading;
    objects other than tensors in the file are replaced by inert records, never run)."""
    names = tuple(n.strip() for n in labels.split(",") if n.strip()) if labels else None
    info = convert_checkpoint(fmt, source, out, config=config, tokenizer=tokenizer, labels=names, head=head,
                              overwrite=overwrite)
    typer.echo(f"wrote {out} ({info['model_class']})")
    if info["ignored_keys"]:
        shown = ", ".join(info["ignored_keys"][:5]) + (" ..." if len(info["ignored_keys"]) > 5 else "")
        typer.echo(f"left out {len(info['ignored_keys'])} source parameters: {shown}")
    if info["replaced_objects"]:
        typer.echo(f"not unpickled (replaced by inert records): {', '.join(info['replaced_objects'])}")
    if tokenizer is None:
        typer.echo("no tokenizer copied: add the tokenizer files (or pass --tokenizer) before running")


def main() -> None:
    try:
        app()
    except EncoderzooError as err:
        if _state["debug"]:
            raise
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)  # one line, whatever it held
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as err:  # a bug, not bad input: still one line, the traceback on request
        if _state["debug"]:
            raise
        message = " ".join(f"{type(err).__name__}: {err}".split())
        print(f"error: internal error ({message}); rerun with --debug for the traceback and report it",
              file=sys.stderr)
        sys.exit(1)
