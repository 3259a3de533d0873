"""The command line: commands only. Their options come from RunConfig's fields (declared once,
see encoderzoo.cli_options); each command builds a RunConfig, makes one call and prints. Heavy
libraries are imported inside the commands, so `--help` answers at once."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from encoderzoo.cli_options import FIELDS, command, own
from encoderzoo.errors import ConfigError, EncoderzooError

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

MODEL = ("checkpoint", "random_weights", "family", "tokenizer", "onnx", "openvino", "input_map",
         "trust_remote_code")
DATA = ("data", "limit", "seq_len", "label_names")
BACKENDS = ("backends", "threads", "device", "providers", "backend_options")
BATCHING = ("batch_size", "padding", "order", "buckets", "max_tokens", "pad_multiple")
RAY = ("engine", "ray_address", "ray_actors")
GATE = ("gate", "min_agreement", "reference")
BENCH = ("batch_sizes", "seq_lens", "warmup", "min_runs", "min_seconds", "ceiling")
E2E = ("e2e_runs", "e2e_rows", "e2e_seconds", "ceiling")


def _stage(ctx: typer.Context, config: Any) -> Any:
    """A RunContext over the run folder, locked (and proven ours) until the command ends."""
    from encoderzoo.context import RunContext
    from encoderzoo.workspace import stage_folder

    return RunContext(config, ctx.with_resource(stage_folder(config.out, overwrite=config.overwrite)))


def _exit_on_gate(passed: bool, report: Path | None = None) -> None:
    if not passed:
        if report is not None:
            typer.echo(f"accuracy gate failed; see {report}", err=True)
        raise typer.Exit(GATE_FAILED_EXIT)


@app.callback()
def _root(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False) -> None:
    _state["debug"] = debug


@app.command()
def recipes() -> None:
    """List the built-in recipes: task presets (any checkpoint) and seed presets."""
    from encoderzoo.listings import print_table, recipes_table

    print_table(recipes_table())


@app.command()
def families() -> None:
    """List the model families encoderzoo runs: the config model types, graph inputs, tokenizer
    files and the base architecture `--random-weights --family` builds."""
    from encoderzoo.listings import families_table, print_table

    print_table(families_table())


@app.command()
def backends() -> None:
    """List the registered backends and their precisions."""
    from encoderzoo.backends import BACKENDS as REGISTERED

    for spec in REGISTERED.values():
        typer.echo(f"{spec.name:<12} {','.join(spec.precisions):<10} {spec.description}")


def _run(ctx: typer.Context, config: Any, dry_run: bool) -> None:
    """The whole chain: prepare → export → optimize → infer → score (→ triage) → bench → report."""
    if dry_run:
        _print_plan(config)
        return
    from encoderzoo.pipeline import run

    passed, report = run(config)
    typer.echo(report.read_text(encoding="utf-8"))
    typer.echo(f"report: {report}")
    _exit_on_gate(passed, report)


def _print_plan(config: Any) -> None:
    from encoderzoo.config_file import to_toml
    from encoderzoo.context import RunContext
    from encoderzoo.pipeline import plan
    from encoderzoo.workspace import Workspace, check_out, check_run_folder, partial_folder

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
    from encoderzoo.stages import interop, prepare

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


command(app, "prepare", (*DATA, *MODEL, "overwrite"), _prepare, extra=own("fmt", "bin_dtype"))


def _export(ctx: typer.Context, config: Any, triton: Path | None, triton_name: str | None,
            triton_precision: str, triton_kind: str | None, triton_max_batch: int | None) -> None:
    """Export to ONNX and check it against PyTorch on prepared inputs (reused when the run folder
    holds the export of these exact weights); with --triton, a serving repository."""
    from encoderzoo.stages import export
    from encoderzoo.stages import triton as triton_stage

    run_ctx = _stage(ctx, config)
    if run_ctx.ws.features.is_file() or triton is None:
        export.run(run_ctx)
    if triton is not None:
        info = triton_stage.run(run_ctx, triton, name=triton_name, precision=triton_precision,
                                kind=triton_kind, max_batch_size=triton_max_batch, overwrite=config.overwrite)
        typer.echo(f"wrote {info['config']}")


command(app, "export", (*MODEL, "device", "batch_sizes", "overwrite"), _export,
        extra=own("triton", "triton_name", "triton_precision", "triton_kind", "triton_max_batch"))


def _optimize(ctx: typer.Context, config: Any) -> None:
    """Fuse the exported graph (attention, LayerNorm, GELU) and check it again."""
    from encoderzoo.stages import optimize

    optimize.run(_stage(ctx, config))


command(app, "optimize", ("checkpoint", "trust_remote_code", "optimize_timeout"), _optimize)


def _infer(ctx: typer.Context, config: Any) -> None:
    """Run every prepared example through each backend; save outputs and predictions (finished
    runs with the same model, data and batching are reused)."""
    from encoderzoo.stages import infer

    infer.run(_stage(ctx, config))


command(app, "infer", ("checkpoint", "trust_remote_code", "null_threshold", "strict_entities", *BACKENDS,
                       *BATCHING, *RAY, *E2E, "resume",
                       "shard_size"), _infer)


def _score(ctx: typer.Context, make_config: Any, predictions: Path | None, na_probs: Path | None,
           outputs: Path | None, layout: str, output_dtype: str) -> None:
    """Score a run folder's outputs (exit 3 when a gate fails), a device runner's outputs, or a
    predictions file against the gold data, as the official evaluation scripts do."""
    from encoderzoo.stages import interop, score

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
        typer.echo(json.dumps(scores, indent=2))
        return
    _exit_on_gate(bool(score.run(run_ctx)["gate_passed"]))


command(app, "score", (*GATE, "label_names", "data", "null_threshold", "strict_entities"), _score, lazy=True,
        recipe_help="Recipe name; with --predictions also a task name (sst2, mnli, squad, ner, ...).",
        extra=own("predictions", "na_probs", "outputs", "layout", "output_dtype"))


def _triage(ctx: typer.Context, config: Any) -> None:
    """Re-quantize the scored int8 models that missed their gate; exit 3 if one still does."""
    from encoderzoo.fileio import read_json
    from encoderzoo.stages import score, triage

    run_ctx = _stage(ctx, config)
    score.run(run_ctx)  # with this command's gate
    triage.run(run_ctx)
    _exit_on_gate(bool(read_json(run_ctx.ws.accuracy_json)["gate_passed"]))


command(app, "triage", (*GATE, "calibration_size", "threads"), _triage)


def _bench(ctx: typer.Context, config: Any) -> None:
    """Sweep batch sizes x sequence lengths; latency percentiles and throughput. Exports (and
    optimizes) first when the run folder has no ONNX graph of this checkpoint yet."""
    from encoderzoo.stages import bench, report

    run_ctx = _stage(ctx, config)
    bench.run(run_ctx)
    report.run(run_ctx)
    typer.echo(run_ctx.ws.report_md.read_text(encoding="utf-8"))


command(app, "bench", (*MODEL, *BACKENDS, "seq_len", *BENCH, "optimize", "optimize_timeout"), _bench)


def _report(ctx: typer.Context, config: Any) -> None:
    """Write report.json, report.md and the throughput plot from the stages' results."""
    from encoderzoo.stages import report

    run_ctx = _stage(ctx, config)
    report.run(run_ctx)
    typer.echo(run_ctx.ws.report_md.read_text(encoding="utf-8"))


command(app, "report", ("checkpoint",), _report)


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
    from encoderzoo.convert import convert_checkpoint

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
